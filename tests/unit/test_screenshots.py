"""A pull request's screenshots section: the captions are the agent's, so they stay plain text."""

from inspect_app.control.screenshots import MAX_IN_PULL, markdown


def shot(n: int, caption: str) -> dict:
    return {"url": f"https://inspect.example/media/{n}.png", "meta": {"caption": caption}}


def test_captions_cannot_break_out_of_the_image() -> None:
    text = markdown([shot(1, "After](https://evil.example)\n\n<img src=x onerror=alert(1)> @everyone ![x]")])
    lines = [line for line in text.splitlines() if line]
    assert lines[0] == "## Screenshots"
    assert lines[1].startswith("![After (https://evil.example) img src=x onerror=alert(1) everyone x](")
    assert lines[1].endswith("(https://inspect.example/media/1.png)") and len(lines) == 2
    assert "<" not in text and "@" not in text


def test_the_newest_few_and_none_without_any() -> None:
    assert markdown([]) == ""
    text = markdown([shot(n, f"S{n}") for n in range(10)])
    assert text.count("![") == MAX_IN_PULL and "![S9]" in text and "![S3]" not in text
    assert "![Screenshot](" in markdown([shot(1, "  ")])

"""An agent's answer in Slack is text: Slack's markup in it (mentions, disguised links) stays text."""

from __future__ import annotations

import json

from bots.slack import views


def test_slack_markup_in_an_answer_stays_text_and_only_http_links_are_links() -> None:
    answer = "<!channel> ping <@U123> & <https://evil.example|Sign in again> [ok](https://x/pr/1) [no](javascript:x)"
    assert views.to_mrkdwn(answer) == (
        "&lt;!channel&gt; ping &lt;@U123&gt; &amp; &lt;https://evil.example|Sign in again&gt; "
        "<https://x/pr/1|ok> [no](javascript:x)"
    )
    assert views.to_mrkdwn("[a|b](https://x/y)") == "[a|b](https://x/y)"  # a | would split Slack's link


def test_status_lines_and_errors_are_escaped_too() -> None:
    working = json.dumps(views.working("widgets", "http://inspect/s/1", ["ran <!here>"]))
    assert "<!here>" not in working and "&lt;!here&gt;" in working
    done = json.dumps(
        views.finished(
            answer="",
            success=False,
            error="<!everyone> failed",
            artifacts=[{"kind": "branch", "url": "", "meta": {"branch": "<!here>"}}],
            session_url="http://inspect/s/1",
            model="",
            repository="widgets",
        )
    )
    assert "<!everyone>" not in done and "<!here>" not in done


def test_the_answer_attaches_its_screenshots_as_images() -> None:
    def shot(n: int, url: str = "") -> dict:
        return {
            "kind": "screenshot",
            "url": url or f"https://inspect.example/media/{n}.png",
            "meta": {"caption": f"S{n}"},
        }

    shots = [shot(1), shot(2), shot(3), shot(4), shot(5, "javascript:alert(1)")]
    blocks = views.finished(
        answer="Done",
        success=True,
        error="",
        artifacts=[{"kind": "pr", "url": "https://github.com/o/r/pull/1", "state": "open", "meta": {}}, *shots],
        session_url="http://inspect/s/1",
        model="",
        repository="widgets",
    )
    images = [b for b in blocks if b["type"] == "image"]
    assert [i["image_url"] for i in images] == [f"https://inspect.example/media/{n}.png" for n in (2, 3, 4)]
    assert images[0]["alt_text"] == "S2" and images[0]["title"] == {"type": "plain_text", "text": "S2"}
    text = json.dumps(blocks)
    assert "Pull request" in text and "javascript:" not in text and "Artifact" not in text

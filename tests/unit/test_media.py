"""The media store on local files: only real PNGs and JPEGs go in, under new unguessable keys, as
private files written whole; only well-formed keys come out, never a path outside the directory."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from inspect_app.control.media import KEY, MAX_MEDIA_BYTES, LocalMedia, MediaStore
from inspect_app.errors import InvalidInput

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256))
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "data" / "media"


@pytest.fixture
def store(root: Path) -> MediaStore:
    return MediaStore(backend=LocalMedia(root), public_url="https://inspect.example/")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def names(root: Path) -> list[str]:
    """What the media directory holds ([] when it was never made)."""
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


async def test_an_image_comes_back_under_a_new_key_from_a_private_file(store: MediaStore, root: Path) -> None:
    key = await store.put(PNG, "image/png")
    again = await store.put(PNG, "image/png")
    assert KEY.fullmatch(key) and key.endswith(".png") and again != key  # every put a new key
    assert await store.get(key) == (PNG, "image/png")
    assert names(root) == sorted([key, again])  # no temporary file left behind
    assert (root / key).read_bytes() == PNG
    assert mode(root) == 0o700 and mode(root / key) == 0o600
    assert store.url(key) == f"https://inspect.example/media/{key}"


async def test_a_jpeg_is_stored_and_served_as_a_jpeg(store: MediaStore) -> None:
    key = await store.put(JPEG, "image/jpeg")
    assert key.endswith(".jpg")
    assert await store.get(key) == (JPEG, "image/jpeg")


@pytest.mark.parametrize("content_type", ["image/gif", "image/svg+xml", "text/html", "image/PNG", ""])
async def test_only_png_and_jpeg_are_accepted(store: MediaStore, root: Path, content_type: str) -> None:
    with pytest.raises(InvalidInput, match="media must be one of image/png, image/jpeg") as raised:
        await store.put(PNG, content_type)
    assert raised.value.code == "media_type"
    assert names(root) == []  # nothing written


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"<html><script>alert(1)</script>", "image/png"),  # a page labelled as an image
        (JPEG, "image/png"),
        (PNG, "image/jpeg"),
        (PNG[:7], "image/png"),  # the signature cut short
        (b"", "image/jpeg"),
    ],
)
async def test_the_bytes_must_be_what_the_content_type_says(
    store: MediaStore, root: Path, data: bytes, content_type: str
) -> None:
    with pytest.raises(InvalidInput, match=f"not a {content_type} image"):
        await store.put(data, content_type)
    assert names(root) == []


async def test_an_image_over_the_limit_is_refused_and_one_at_the_limit_is_not(store: MediaStore, root: Path) -> None:
    at_limit = PNG + bytes(MAX_MEDIA_BYTES - len(PNG))
    with pytest.raises(InvalidInput, match="over the limit") as raised:
        await store.put(at_limit + b"\x00", "image/png")
    assert raised.value.code == "media_too_large"
    assert names(root) == []
    key = await store.put(at_limit, "image/png")
    assert (root / key).stat().st_size == MAX_MEDIA_BYTES


async def test_only_well_formed_keys_are_looked_up(store: MediaStore, root: Path) -> None:
    key = await store.put(PNG, "image/png")
    name = key.removesuffix(".png")
    outside = root.parent / "outside.png"  # a file a traversing key would reach
    outside.write_bytes(PNG)
    (root / "plain.png").write_bytes(PNG)  # a file in the directory under a name we never make
    refused = [
        "../outside.png",
        f"../media/{key}",
        f"{name[:-3]}/../outside.png",
        str(outside),
        "plain.png",
        key + "\n",  # ``$`` in a regex would let this through
        key.upper(),
        f"{name}.gif",
        f"{name}png",
        "",
    ]
    for bad in refused:
        assert await store.get(bad) is None, bad
    assert await store.get(key) == (PNG, "image/png")  # the same store still serves a real key


async def test_an_unknown_well_formed_key_is_none(store: MediaStore) -> None:
    assert await store.get("A" * 43 + ".png") is None  # the directory does not even exist yet
    await store.put(PNG, "image/png")
    assert await store.get("B" * 43 + ".jpg") is None


def test_a_url_is_only_made_for_a_media_key(store: MediaStore) -> None:
    with pytest.raises(InvalidInput, match="is not a media key"):
        store.url("../secret.key")

"""``GET /media/{key}`` through the API and the guards the app wraps it in: a stored screenshot is
answered to anyone, without signing in, as an image that cannot act as a page; any other key is the
usual JSON 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from inspect_app import services
from inspect_app.api.app import build_api
from inspect_app.api.framing import FrameGuard
from inspect_app.api.session_guard import SessionGuard
from tests.integration.local_api import local_instance

pytestmark = pytest.mark.timeout(60)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
BROWSER = {"Accept": "text/html,application/xhtml+xml,image/avif,image/webp,*/*;q=0.8"}  # a tab opening the URL


@pytest.fixture
async def anyone(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no credentials, in front of the API wrapped as ``inspect_app.py`` wraps it."""
    async with local_instance(tmp_path / "data", public_url="https://inspect.example"):
        app = FrameGuard(SessionGuard(build_api()))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            yield client


async def test_a_stored_image_is_served_to_anyone_as_an_image_only(anyone: httpx.AsyncClient, tmp_path: Path) -> None:
    media = services.current().media
    key = await media.put(PNG, "image/png")
    assert media.url(key) == f"https://inspect.example/media/{key}"
    assert (tmp_path / "data" / "media" / key).read_bytes() == PNG  # no bucket configured: the data directory

    answer = await anyone.get(f"/media/{key}", headers=BROWSER)
    assert answer.status_code == 200, answer.text
    assert answer.content == PNG
    assert answer.headers["content-type"] == "image/png"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    # the route's sandboxing policy, with the frame guard's frame-ancestors (one header)
    assert answer.headers.get_list("content-security-policy") == ["default-src 'none'; sandbox; frame-ancestors 'none'"]


@pytest.mark.parametrize(
    "path",
    [
        "/media/" + "A" * 43 + ".png",  # well-formed, never stored
        "/media/plain.png",
        "/media/..%2Fsecret.key",
        "/media/%2e%2e%2flocal-token",
    ],
)
async def test_any_other_key_is_a_json_404(anyone: httpx.AsyncClient, path: str) -> None:
    answer = await anyone.get(path, headers=BROWSER)
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["code"] == "not_found"
    assert "image" not in answer.headers["content-type"]

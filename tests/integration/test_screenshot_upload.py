"""The screenshot tool's upload, attacked from the sandbox's side: only its own tool token keeps a
picture, only a real PNG within the limit is kept, and nothing else is stored."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from inspect_app.api.app import build_api
from inspect_app.control.media import MAX_MEDIA_BYTES
from inspect_app.control.screenshots import of_session
from tests.integration.local_api import asgi
from tests.integration.test_plane_core import Core

pytestmark = pytest.mark.timeout(60)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def test_only_the_sandboxs_own_token_keeps_a_real_png(core: Core) -> None:
    await core.prompt("Take a picture")
    await core.until(lambda: core.provider.sandboxes, "its sandbox", 20)
    token = next(s.spec.tool_token for s in core.provider.sandboxes.values() if s.spec.session_id == core.session_id)
    path = "/api/sandbox/screenshots?caption=After"

    assert (await asgi("POST", path, token="not-a-token", content=PNG)).status_code == 401
    html = b"<script>alert(document.cookie)</script>"
    labelled = await asgi("POST", path, token=token, content=html)  # kept as a PNG, were it one
    assert labelled.status_code == 422 and labelled.json()["error"]["code"] == "media_type"
    huge = await asgi("POST", path, token=token, content=PNG + b"\x00" * MAX_MEDIA_BYTES)
    assert huge.status_code == 413
    assert of_session(core.services.engine, core.session_id) == []  # nothing kept of any of those

    kept = await asgi("POST", path, token=token, content=PNG)
    assert kept.status_code == 201, kept.text
    url = kept.json()["url"]
    (shot,) = of_session(core.services.engine, core.session_id)
    assert shot["url"] == url and shot["meta"]["caption"] == "After"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_api()), base_url="http://t") as anyone:
        served = await anyone.get(urlsplit(url).path)  # signed in nowhere, as GitHub's image proxy
    assert served.status_code == 200 and served.content == PNG and served.headers["content-type"] == "image/png"

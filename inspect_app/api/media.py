"""``GET /media/{key}``: a stored image, to anyone who has its URL.

Public on purpose: GitHub's image proxy and Slack fetch a pull request's screenshots without signing
in, so the unguessable key is the only secret. The answer can never act as a page: its content type
is fixed by the key (and the bytes were checked against it on the way in), browsers may not sniff
another, and the CSP sandboxes it and lets it load nothing. Keys never change what they name, so the
image may be cached for good.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from inspect_app.api.deps import ServicesDep
from inspect_app.errors import NotFound

router = APIRouter(tags=["media"])

MEDIA_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "public, max-age=31536000, immutable",
}


@router.get("/media/{key}")
async def media(key: str, services: ServicesDep) -> Response:
    found = await services.media.get(key)
    if found is None:
        raise NotFound("no such media")
    data, content_type = found
    return Response(data, media_type=content_type, headers=MEDIA_HEADERS)

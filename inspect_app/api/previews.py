"""``GET /api/sessions/{id}/previews/{port}``: into a session's live preview, as the signed-in person.

Answers with a redirect to the preview's own origin carrying a minute-long entry pass, which the
preview server trades for a cookie of that origin (``control/previews.py``). The app's own cookie
never goes there.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Path
from fastapi.responses import RedirectResponse

from inspect_app.api.deps import CurrentUser, ServicesDep
from inspect_app.api.preview_server import ENTER_PATH
from inspect_app.control.data import sessions
from inspect_app.control.previews import preview_host

router = APIRouter(tags=["sessions"])


@router.get("/api/sessions/{session_id}/previews/{port}", status_code=303)
async def open_preview(
    session_id: str, user: CurrentUser, services: ServicesDep, port: int = Path(ge=1, le=65535)
) -> RedirectResponse:
    # Only a look-up: any web page can make a browser follow this link, so it changes nothing (the
    # preview origin starts a sleeping sandbox once the person is there, with their pass).
    await asyncio.to_thread(sessions.get, services.engine, session_id)  # NotFound: no such session
    entry = services.preview_passes.issue("entry", session_id, port, user.id or 0)
    host = preview_host(session_id, port, services.settings.preview_domain)
    url = f"{services.settings.preview_url(host)}{ENTER_PATH}?pass={entry}"
    return RedirectResponse(
        url, status_code=303, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    )

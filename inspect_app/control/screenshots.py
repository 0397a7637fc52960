"""Screenshots as evidence: what the agent's ``screenshot`` tool took, kept and shown.

Each one is stored as media (``control/media.py``: an unguessable, public, long-lived URL), kept as
a ``screenshot`` artifact of its session (tagged with the prompt it was taken in) and announced as
an ``artifact`` event, which the timeline shows inline. The pull request the session opens embeds
its screenshots, and Slack's completion message attaches those of its prompt.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import func, select

from inspect_app.control.data import prompts
from inspect_app.control.event_data import ArtifactData
from inspect_app.control.media import MediaStore
from inspect_app.control.plane import ControlPlane, artifacts
from inspect_app.db import session_scope
from inspect_app.errors import Conflict
from inspect_app.models import Artifact

MAX_PER_SESSION = 100  # screenshots a session may keep (each up to the media limit)
MAX_IN_PULL = 6  # embedded in a pull request's body, newest first


@dataclass(frozen=True)
class Shot:
    png: bytes
    caption: str = ""
    page: str = ""  # the address it shows
    width: int = 0
    height: int = 0


class Screenshots:
    def __init__(self, plane: ControlPlane, media: MediaStore) -> None:
        self._plane = plane
        self._media = media

    async def record(self, session_id: str, shot: Shot) -> str:
        """Keep a screenshot of the session; its public URL."""
        engine = self._plane.engine
        kept = await asyncio.to_thread(_count, engine, session_id)
        if kept >= MAX_PER_SESSION:
            raise Conflict(f"this session has {kept} screenshots, the most it may keep", code="too_many_screenshots")
        key = await self._media.put(shot.png, "image/png")
        url = self._media.url(key)
        running = await asyncio.to_thread(prompts.processing, engine, session_id)
        meta: dict[str, Any] = {
            "key": key,
            "caption": shot.caption[:200],
            "page": shot.page[:500],
            "width": shot.width,
            "height": shot.height,
            "message_id": running.id if running else "",
        }
        await asyncio.to_thread(_store, engine, session_id, url, meta)
        data = ArtifactData(kind="screenshot", url=url, meta=meta)
        await self._plane.emit(session_id, "artifact", data, message_id=running.id if running else None)
        return url


def _count(engine: sa.Engine, session_id: str) -> int:
    with session_scope(engine) as db:
        query = select(func.count()).select_from(Artifact)
        return int(db.exec(query.where(Artifact.session_id == session_id, Artifact.type == "screenshot")).one())


def _store(engine: sa.Engine, session_id: str, url: str, meta: dict[str, Any]) -> None:
    with session_scope(engine) as db:
        db.add(Artifact(session_id=session_id, type="screenshot", url=url, meta=meta))


def of_session(engine: sa.Engine, session_id: str) -> list[dict[str, Any]]:
    """The session's screenshots (artifact dicts), oldest first."""
    return [a for a in artifacts(engine, session_id) if a["kind"] == "screenshot"]


def markdown(shots: list[dict[str, Any]]) -> str:
    """A pull request's screenshots section ("" with none): the newest few, as images."""
    if not shots:
        return ""
    lines = ["## Screenshots", ""]
    for shot in shots[-MAX_IN_PULL:]:
        caption = _plain(str(shot["meta"].get("caption") or "")) or "Screenshot"
        lines += [f"![{caption}]({shot['url']})", ""]
    return "\n".join(lines).rstrip()


def _plain(caption: str) -> str:
    """A caption as an image's alt text in Markdown: one line, no markup, no mention."""
    text = " ".join(caption.split())
    for markup in "[]<>`*_@!\\":
        text = text.replace(markup, " ")
    return " ".join(text.split())[:120]

"""Who is watching and who is typing: frames on the session's channel, never stored.

One shape for every client (the session page, the WebSocket API, the extension): a person is their
id and name, as on stored events' ``author``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from inspect_app.control.event_data import Person, person
from inspect_app.control.events import session_channel
from inspect_app.control.hub import Hub

__all__ = ["Person", "Presence", "Typing", "announce", "person"]


class Presence(BaseModel):
    type: Literal["presence"] = "presence"
    event: Literal["join", "here", "leave"]  # came; answers a join (so the newcomer sees who is here); went
    user: Person


class Typing(BaseModel):
    type: Literal["typing"] = "typing"
    user: Person


async def announce(hub: Hub, session_id: str, frame: Presence | Typing) -> None:
    await hub.publish(session_channel(session_id), frame.model_dump_json())

"""The base UI state: who is using the app. Feature states subclass it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from http.cookies import SimpleCookie

import reflex as rx

from inspect_app import services
from inspect_app.control.data import auth
from inspect_app.errors import InspectError, Unauthorized


def _resolve(session_token: str) -> tuple[int, str]:
    """(user id, name) for this browser's session cookie, in every mode; (0, "") without one.

    The cookie comes from the socket's handshake, which ``api/session_guard.py`` already refused
    without a live session or from a foreign Origin: this is the identity, not the gate."""
    if not session_token:
        return 0, ""
    try:
        user = auth.user_for_session(services.current().engine, session_token)
    except Unauthorized:
        return 0, ""
    return user.id or 0, user.name


class AppState(rx.State):
    """Identity only; everything else lives in per-page substates."""

    user_id: int = 0
    user_name: str = ""

    @rx.event
    async def load_identity(self) -> rx.event.EventSpec | None:
        cookies = SimpleCookie()
        cookies.load(self.router.headers.cookie or "")
        session = cookies[auth.SESSION_COOKIE].value if auth.SESSION_COOKIE in cookies else ""
        self.user_id, self.user_name = await asyncio.to_thread(_resolve, session)
        if not self.user_id:  # e.g. signed out in another tab: the server answers a reload with /login
            return rx.call_script("window.location.reload()")
        return None


_app: rx.App | None = None  # the running app, registered by the composition root (``use_app``)


def use_app(app: rx.App) -> None:
    """Let the UI's states ask the app about its browser tabs (``connected``) without importing it."""
    global _app
    _app = app


def connected(client_token: str) -> bool:
    """Whether this browser tab still has its socket open (background loops end when it closes)."""
    namespace = _app.event_namespace if _app is not None else None
    return namespace is None or client_token in namespace.token_to_sid


class Actions(rx.State, mixin=True):
    """A page's state that shows what it loads (``_load``, blocking) and runs a person's actions
    through the control functions (``_do``): what went wrong, or what was done, then a reload."""

    error: str = ""
    message: str = ""

    def _load(self) -> None:
        raise NotImplementedError

    @rx.event
    async def load(self) -> None:
        await asyncio.to_thread(self._load)

    async def _do(self, action: Callable[[], object], done: str) -> None:
        try:
            await asyncio.to_thread(action)
        except InspectError as exc:
            self.error, self.message = exc.message, ""
            return
        self.error, self.message = "", done
        await asyncio.to_thread(self._load)

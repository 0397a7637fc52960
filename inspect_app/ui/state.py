"""The base UI state: who is using the app. Feature states subclass it."""

from __future__ import annotations

import asyncio
from http.cookies import SimpleCookie

import reflex as rx

from inspect_app import services
from inspect_app.control import users
from inspect_app.control.auth import SESSION_COOKIE
from inspect_app.errors import Unauthorized


def _resolve(token: str, session_token: str) -> tuple[int, str, bool]:
    """(user id, name, token valid) for this browser: a token signed in at /login, the GitHub
    sign-in session cookie, else (local mode only) the local user."""
    engine = services.current().engine
    for candidate, is_token in ((token, True), (session_token, False)):
        if candidate:
            try:
                user = users.user_for_token(engine, candidate)
                return user.id or 0, user.name, is_token
            except Unauthorized:
                pass
    if services.current().settings.oauth_enabled:
        return 0, "", False
    user = users.local_user(engine)
    return (user.id or 0, user.name, False) if user else (0, "", False)


class AppState(rx.State):
    """Identity only; everything else lives in per-page substates."""

    user_id: int = 0
    user_name: str = ""
    # A personal API token this browser signed in with (/login); empty: the local user.
    token: str = rx.LocalStorage("", name="inspect_token", sync=True)

    oauth: bool = False

    @rx.event
    async def load_identity(self) -> rx.event.EventSpec | None:
        cookies = SimpleCookie()
        cookies.load(self.router.headers.cookie or "")
        session = cookies[SESSION_COOKIE].value if SESSION_COOKIE in cookies else ""
        user_id, name, valid = await asyncio.to_thread(_resolve, self.token, session)
        if self.token and not valid:
            self.token = ""
        self.user_id, self.user_name = user_id, name
        self.oauth = services.current().settings.oauth_enabled
        path = str(self.router.url.path)
        if not user_id and not path.startswith(("/login", "/denied")):
            return rx.redirect("/login")  # GitHub sign-in is required on this instance
        return None

    @rx.event
    def sign_out(self) -> rx.event.EventSpec:
        self.token = ""
        return rx.redirect("/api/auth/logout" if self.oauth else "/", is_external=True)


def connected(client_token: str) -> bool:
    """Whether this browser tab still has its socket open (background loops end when it closes)."""
    from inspect_app.inspect_app import app  # the running app; imported late to avoid a cycle

    namespace = app.event_namespace
    return namespace is None or client_token in namespace.token_to_sid

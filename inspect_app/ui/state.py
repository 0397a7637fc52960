"""The base UI state: who is using the app. Feature states subclass it."""

from __future__ import annotations

import asyncio

import reflex as rx

from inspect_app import services
from inspect_app.control import users
from inspect_app.errors import Unauthorized


def _resolve(token: str) -> tuple[int, str, bool]:
    """(user id, name, token valid) for this browser: a signed-in token, else the local user."""
    engine = services.current().engine
    if token:
        try:
            user = users.user_for_token(engine, token)
            return user.id or 0, user.name, True
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

    @rx.event
    async def load_identity(self) -> None:
        user_id, name, valid = await asyncio.to_thread(_resolve, self.token)
        if self.token and not valid:
            self.token = ""
        self.user_id, self.user_name = user_id, name

    @rx.event
    async def sign_out(self) -> rx.event.EventSpec:
        self.token = ""
        await self.load_identity()
        return rx.redirect("/")

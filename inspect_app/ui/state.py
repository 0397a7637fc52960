"""The base UI state: who is using the app. Feature states subclass it."""

from __future__ import annotations

import asyncio

import reflex as rx

from inspect_app import services
from inspect_app.control import users


class AppState(rx.State):
    """Identity only; everything else lives in per-page substates."""

    user_name: str = ""

    @rx.event
    async def load_identity(self) -> None:
        if self.user_name:
            return
        engine = services.current().engine
        user = await asyncio.to_thread(users.local_user, engine)
        self.user_name = user.name if user else ""

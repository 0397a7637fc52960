"""Home: the recent sessions."""

from __future__ import annotations

import reflex as rx

from inspect_app.ui.layout import page_frame
from inspect_app.ui.new_session import new_session
from inspect_app.ui.sessions_list import sessions_list


def home() -> rx.Component:
    return page_frame(
        rx.heading("Sessions", size="7"),
        rx.text("Background coding sessions on your repositories.", color_scheme="gray"),
        new_session(),
        sessions_list(),
    )

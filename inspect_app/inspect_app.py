"""Assembles the Reflex app: pages and the API router (the app's only composition of edges)."""

from __future__ import annotations

import reflex as rx

from inspect_app.api.app import build_api
from inspect_app.ui import routes
from inspect_app.ui.pages.home import home
from inspect_app.ui.sessions_list import SessionListState

app = rx.App(api_transformer=build_api())
app.add_page(
    home,
    route=routes.HOME,
    title="Inspect",
    on_load=[SessionListState.load_identity, SessionListState.load],
)

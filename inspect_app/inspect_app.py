"""Assembles the Reflex app: pages and the API router (the app's only composition of edges)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import reflex as rx

from inspect_app import services
from inspect_app.api.app import build_api
from inspect_app.api.framing import FrameGuard
from inspect_app.ui import routes
from inspect_app.ui.login import denied, login
from inspect_app.ui.new_session import NewSessionState
from inspect_app.ui.pages.extension import extension_home, extension_session
from inspect_app.ui.pages.home import home
from inspect_app.ui.pages.session import session_page
from inspect_app.ui.session_state import SessionPageState
from inspect_app.ui.sessions_list import SessionListState
from inspect_app.ui.settings_page import SettingsState, settings_page
from inspect_app.ui.stats_page import StatsState, stats_page

if TYPE_CHECKING:
    from bots.slack.socket_mode import SocketModeRunner

# the API first (its routes win), then the frame guard around everything, pages included
app = rx.App(api_transformer=[build_api(), FrameGuard])


@contextlib.asynccontextmanager
async def control_plane() -> AsyncIterator[None]:
    """Run the control plane (event writer, hub, watchdogs) and the prebuild schedule for the server's lifetime."""
    plane = services.current().plane
    await plane.start()
    prebuilds = services.current().prebuilds
    prebuilds.start()
    slack = await start_slack()
    try:
        yield
    finally:
        if slack is not None:
            await slack.close()
        if services.current().slack is not None:
            await services.current().slack.close()
        await prebuilds.close()
        await plane.close()


async def start_slack() -> SocketModeRunner | None:
    """The Slack bot (when configured), and its Socket Mode connection when an app token is set."""
    current = services.current()
    if current.slack is None:
        return None
    await current.slack.start()
    app_token = current.settings.slack_app_token.get_secret_value()
    if not app_token:
        return None  # Events API only: Slack posts to /api/slack/events
    from bots.slack.socket_mode import SocketModeRunner

    runner = SocketModeRunner(bot=current.slack, app_token=app_token, web_client=current.slack.client)
    await runner.start()
    return runner


app.register_lifespan_task(control_plane)
app.add_page(
    home,
    route=routes.HOME,
    title="Inspect",
    on_load=[SessionListState.load_identity, SessionListState.load, NewSessionState.load_repos],
)
app.add_page(
    session_page,
    route=routes.SESSION,
    title="Session · Inspect",
    on_load=[SessionPageState.load_identity, SessionListState.load, SessionPageState.open],
)
app.add_page(
    extension_home,
    route=routes.EXTENSION,
    title="Inspect",
    on_load=[SessionListState.load_identity, SessionListState.load, NewSessionState.load_repos],
)
app.add_page(
    extension_session,
    route=routes.EXTENSION_SESSION,
    title="Session · Inspect",
    on_load=[SessionPageState.load_identity, SessionPageState.open],
)
app.add_page(
    settings_page,
    route=routes.SETTINGS,
    title="Settings · Inspect",
    on_load=[SettingsState.load_identity, SessionListState.load, SettingsState.load],
)
app.add_page(
    stats_page,
    route=routes.STATS,
    title="Stats · Inspect",
    on_load=[StatsState.load_identity, SessionListState.load, StatsState.load],
)
app.add_page(denied, route="/denied", title="Access denied · Inspect")
app.add_page(login, route=routes.LOGIN, title="Sign in · Inspect", on_load=[SessionListState.load_identity])

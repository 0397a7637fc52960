"""Assembles the Reflex app: pages and the API router (the app's only composition of edges)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import reflex as rx
from reflex.event import EventType

from inspect_app import logs, services
from inspect_app.api.app import build_api
from inspect_app.api.framing import FrameGuard
from inspect_app.api.preview_server import PreviewServer
from inspect_app.api.session_guard import SessionGuard
from inspect_app.control.integrations import keep_watching, probe_model
from inspect_app.ui import routes
from inspect_app.ui.new_session import NewSessionState
from inspect_app.ui.pages.automations import AutomationsState, automations_page
from inspect_app.ui.pages.extension import extension_home, extension_session
from inspect_app.ui.pages.home import home
from inspect_app.ui.pages.session import session_page
from inspect_app.ui.pages.settings import SettingsState, settings_page
from inspect_app.ui.pages.settings_agents import AgentSettingsState
from inspect_app.ui.pages.stats import StatsState, stats_page
from inspect_app.ui.session_state import SessionPageState
from inspect_app.ui.sessions_list import SessionListState
from inspect_app.ui.state import AppState, use_app

if TYPE_CHECKING:
    from bots.slack.socket_mode import SocketModeRunner

# Older versions kept the API token in localStorage, where any script could read it; the cookie
# replaced it (a browser without the cookie moves the token at /login), so it is dropped here.
FORGET_STORED_KEY = "try { localStorage.removeItem('inspect_token') } catch (e) {}"

# the API first (its routes win), then the guards around everything, pages included: the session
# guard (who may use the socket and the cookie), and outermost the frame guard, so that every
# answer, a refusal too, carries its frame-ancestors policy
app = rx.App(
    api_transformer=[build_api(), SessionGuard, FrameGuard],
    head_components=[rx.script(FORGET_STORED_KEY)],
)
use_app(app)  # the states' background loops ask it which tabs are open (ui/state.py imports no app)


@contextlib.asynccontextmanager
async def control_plane() -> AsyncIterator[None]:
    """Run the control plane (event writer, hub, watchdogs) and the prebuild schedule for the server's lifetime."""
    settings = services.current().settings
    logs.configure(settings.resolved_replica_id, settings.log_level)
    plane = services.current().plane
    await plane.start()
    prebuilds = services.current().prebuilds
    prebuilds.start()
    automations = services.current().automations
    automations.start()
    services.current().spending.start()  # usage of prompts from before it was recorded
    connected: list[SocketModeRunner] = []
    watching = watch_outside_services(connected)
    watching.append(asyncio.create_task(services.current().loop_lag.run(), name="loop-lag"))
    https = settings.preview_url("x").startswith("https://")
    previews = PreviewServer(services.current().preview_passes, https=https)
    await previews.start(settings.host, settings.resolved_preview_port)
    try:
        yield
    finally:
        await previews.close()
        for task in watching:
            task.cancel()
        await asyncio.gather(*watching, return_exceptions=True)
        for runner in connected:
            await runner.close()
        slack_bot = services.current().slack
        if slack_bot is not None:
            await slack_bot.close()
        await automations.close()
        await prebuilds.close()
        await plane.close()


def watch_outside_services(connected: list[SocketModeRunner]) -> list[asyncio.Task[None]]:
    """Slack, GitHub and the model endpoint, each tried in the background until it answers (its
    status in /api/health): one being down at start degrades its feature, never the app."""
    current = services.current()
    every_s = current.settings.integration_check_s
    tasks = [asyncio.create_task(connect_slack(connected), name="slack-connect")]
    github = current.github_app
    if github is not None:
        probe = functools.partial(asyncio.to_thread, github.probe)
        watch = keep_watching("github", probe, current.integrations, every_s=every_s)
        tasks.append(asyncio.create_task(watch, name="github-probe"))
    settings = current.settings
    if settings.llm_base_url:
        model = functools.partial(probe_model, settings.llm_base_url, settings.llm_api_key.get_secret_value())
        watch = keep_watching("model", model, current.integrations, every_s=every_s)
        tasks.append(asyncio.create_task(watch, name="model-probe"))
    return tasks


async def connect_slack(connected: list[SocketModeRunner]) -> None:
    """The Slack bot (when configured), and its Socket Mode connection when an app token is set —
    in the background, tried again until Slack answers: Slack being unreachable (an outage, DNS, a
    firewall) degrades the bot and shows in /api/health; it never stops the app from starting."""
    current = services.current()
    bot = current.slack
    if bot is None:
        return
    app_token = current.settings.slack_app_token.get_secret_value()

    async def attempt() -> None:
        await bot.start()
        if app_token and not connected:  # Events API only without one: Slack posts to /api/slack/events
            from bots.slack.socket_mode import SocketModeRunner

            runner = SocketModeRunner(bot=bot, app_token=app_token, web_client=bot.client)
            await asyncio.wait_for(runner.start(), 30)
            connected.append(runner)

    # connected once, then checked like the others (Socket Mode reconnects by itself)
    await keep_watching(
        "slack", bot.start, current.integrations, every_s=current.settings.integration_check_s, connect=attempt
    )


app.register_lifespan_task(control_plane)


def page(component: Callable[[], rx.Component], route: str, title: str, *loads: EventType) -> None:
    """A page that knows who is looking first (identity), then loads what it shows."""
    app.add_page(component, route=route, title=title, on_load=[AppState.load_identity, *loads])


# every full page also fills the sidebar's session list; the extension's session view has none
page(home, routes.HOME, "Inspect", SessionListState.load, NewSessionState.load_repos)
page(session_page, routes.SESSION, "Session · Inspect", SessionListState.load, SessionPageState.open)
page(extension_home, routes.EXTENSION, "Inspect", SessionListState.load, NewSessionState.load_repos)
page(extension_session, routes.EXTENSION_SESSION, "Session · Inspect", SessionPageState.open)
page(
    settings_page,
    routes.SETTINGS,
    "Settings · Inspect",
    SessionListState.load,
    SettingsState.load,
    AgentSettingsState.load,
)
page(stats_page, routes.STATS, "Stats · Inspect", SessionListState.load, StatsState.load)
page(automations_page, routes.AUTOMATIONS, "Automations · Inspect", SessionListState.load, AutomationsState.load)

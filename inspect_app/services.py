"""The composition root: builds every long-lived collaborator once, from the settings.

Edges (API routes, Reflex states, bots) reach collaborators through ``current()``; nothing else
constructs engines, hubs, providers or the control plane. Building is lazy so that importing the
app (e.g. while Reflex compiles pages) touches no database.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from inspect_app.control.crypto import Cipher
from inspect_app.control.data import stats
from inspect_app.control.event_data import EventData
from inspect_app.control.events import EventStore
from inspect_app.control.hub import build_hub
from inspect_app.control.integrations import Integrations
from inspect_app.control.lifecycle import Lifecycle, LifecycleConfig
from inspect_app.control.links import Links
from inspect_app.control.media import LocalMedia, MediaBackend, MediaStore
from inspect_app.control.peers import Peers
from inspect_app.control.plane import ControlPlane
from inspect_app.control.previews import Passes
from inspect_app.control.screenshots import Screenshots
from inspect_app.db import PROJECT_ROOT, create_db_engine
from inspect_app.errors import ConfigError
from inspect_app.loop_lag import LoopLag
from inspect_app.metrics import Metrics
from inspect_app.settings import Settings, get_settings
from sandbox.protocol import RELAY_PORTS
from sandbox.providers.base import SandboxProvider

if TYPE_CHECKING:
    from bots.slack.bot import SlackBot
    from inspect_app.control.automations.github_bot import GitHubBot
    from inspect_app.control.automations.runner import Automations
    from inspect_app.control.children import Children
    from inspect_app.control.prebuild import PrebuildScheduler
    from inspect_app.control.pulls import Pulls
    from inspect_app.control.spending import Spending
    from inspect_app.scm.github_app import GitHubApp
    from inspect_app.scm.github_oauth import GitHubOAuth

TOOLS = PROJECT_ROOT / ".tools"


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: sa.Engine
    cipher: Cipher
    plane: ControlPlane
    github_oauth: GitHubOAuth | None  # None until GitHub sign-in is configured
    github_app: GitHubApp | None  # None until a GitHub App is configured
    pulls: Pulls
    children: Children  # sessions a session's agent started
    spending: Spending  # usage per prompt, budgets
    prebuilds: PrebuildScheduler
    automations: Automations  # scheduled and webhook-triggered runs
    github_bot: GitHubBot | None  # None until a GitHub App and its slug are configured
    slack: SlackBot | None  # None until a Slack bot token is configured
    integrations: Integrations  # how Slack, GitHub and the model endpoint are doing (for /api/health)
    loop_lag: LoopLag  # how late the event loop runs (for /api/health/loop)
    metrics: Metrics  # what /metrics reports
    preview_passes: Passes  # who may open a session's live preview (``control/previews.py``)
    media: MediaStore  # screenshots, served publicly at /media/<key>
    screenshots: Screenshots  # what the agent's screenshot tool took, kept as its session's artifacts


def build_provider(settings: Settings) -> SandboxProvider:
    if settings.sandbox_provider == "modal":
        if not settings.public_url:
            raise ConfigError("INSPECT_SANDBOX_PROVIDER=modal needs INSPECT_PUBLIC_URL (sandboxes connect back to it)")
        import modal

        from sandbox.providers.modal import ModalProvider

        return ModalProvider(
            sdk=modal,
            app_name=settings.modal_app_name,
            cpu=settings.modal_cpu,
            memory_mb=settings.modal_memory_mb,
            egress_allow=settings.egress_hosts,  # with each repository's own, bridge, git and model hosts
        )
    from sandbox.providers.limits import Limits
    from sandbox.providers.local import LocalProvider

    isolate = {"auto": None, "bwrap": True, "none": False}[settings.sandbox_isolation]
    return LocalProvider(
        data_dir=settings.data_dir,
        opencode_bin=settings.opencode_bin or str(TOOLS / "node_modules" / ".bin" / "opencode"),
        plugin_template=TOOLS / "opencode-plugin" if (TOOLS / "opencode-plugin").exists() else None,
        python=str(Path(PROJECT_ROOT / ".venv" / "bin" / "python")) if (PROJECT_ROOT / ".venv").exists() else "python3",
        isolate=isolate,
        park_capacity=settings.parked_sandboxes,
        park_ttl_s=settings.park_ttl_s,
        pool_limit=settings.warm_pool_limit,
        uid_range=(settings.sandbox_uid_base, settings.sandbox_uid_count),
        own_network=settings.sandbox_network == "own",
        egress_allow=settings.egress_hosts,
        control=("127.0.0.1", settings.port),
        outlive=settings.sandboxes_outlive_server,
        limits=Limits(
            memory_mb=settings.sandbox_memory_mb,
            max_processes=settings.sandbox_max_processes,
            cpu_weight=settings.sandbox_cpu_weight,
        ),
    )


def build_media(settings: Settings) -> MediaStore:
    """Media in the configured S3 bucket, else in DATA_DIR/media."""
    backend: MediaBackend = LocalMedia(settings.data_dir / "media")
    if settings.media_s3_bucket:
        # imported only when configured, like Modal: boto3 is slow to import and most instances store locally
        from inspect_app.control.media_s3 import S3Media, s3_client

        client = s3_client(
            endpoint_url=settings.media_s3_endpoint_url,
            region=settings.media_s3_region,
            access_key_id=settings.media_s3_access_key_id,
            secret_access_key=settings.media_s3_secret_access_key.get_secret_value(),
        )
        backend = S3Media(client=client, bucket=settings.media_s3_bucket)
    return MediaStore(backend=backend, public_url=settings.resolved_public_url)


def build_slack(settings: Settings, plane: ControlPlane, automations: Automations | None = None) -> SlackBot | None:
    token = settings.slack_bot_token.get_secret_value()
    if not token:
        return None
    from slack_sdk.web.async_client import AsyncWebClient

    from bots.slack.bot import SlackBot
    from bots.slack.classifier import Classifier

    return SlackBot(
        client=AsyncWebClient(token=token, base_url=settings.slack_api_url, timeout=15),
        plane=plane,
        classifier=Classifier(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key.get_secret_value(),
            model=settings.llm_model or "default",
        ),
        public_url=settings.resolved_public_url,
        automations=automations,
    )


def build_services(settings: Settings, *, provider: SandboxProvider | None = None) -> Services:
    """Everything, built once from ``settings`` (``provider``: another sandbox provider, for tests)."""
    engine = create_db_engine(settings.resolved_database_url)
    cipher = Cipher(settings.encryption_key())
    hub = build_hub(settings.redis_url, settings.hub_queue_limit)
    metrics = Metrics(settings.resolved_replica_id)
    metrics.watch(partial(stats.gauges, engine, settings.resolved_replica_id))
    links = Links()
    # a sandbox another replica took over: its stale link here ends (and the sandbox reconnects there)
    events = EventStore(engine=engine, hub=hub, metrics=metrics, on_stale=links.release)
    plane_ref: list[ControlPlane] = []

    async def emit(session_id: str, type_: str, data: EventData) -> None:
        await plane_ref[0].emit(session_id, type_, data)

    lifecycle = Lifecycle(
        engine=engine,
        cipher=cipher,
        settings=settings,
        provider=provider or build_provider(settings),
        config=LifecycleConfig(
            spawn_timeout_s=settings.spawn_timeout_s,
            setup_timeout_s=settings.setup_timeout_s,
            sweep_interval_s=min(5.0, settings.spawn_timeout_s / 3),  # a boot gone quiet is noticed in time
            heartbeat_timeout_s=settings.heartbeat_timeout_s,
            idle_timeout_s=settings.idle_timeout_s,
            execution_timeout_s=settings.execution_timeout_s,
            warm_pool_size=settings.warm_pool_size,
            keep_sandboxes=settings.sandboxes_outlive_server,
            replica_id=settings.resolved_replica_id,
            replica_timeout_s=settings.replica_timeout_s,
        ),
        bridge_url=settings.sandbox_bridge_url,
        emit=emit,
    )
    peers = None
    if settings.redis_url:  # several replicas share one Redis: each reaches its peers' sandboxes through it
        peers = Peers(
            engine=engine,
            hub=hub,
            links=links,
            replica_id=settings.resolved_replica_id,
            timeout_s=settings.replica_timeout_s,
            written=events.written,
        )
    plane = ControlPlane(
        engine=engine, hub=hub, events=events, lifecycle=lifecycle, links=links, peers=peers, metrics=metrics
    )
    plane_ref.append(plane)
    lifecycle.provider.on_egress_denied = plane.egress_denied
    github_oauth = None
    if settings.oauth_enabled:
        # imported only when configured: the CLI (serve, admin) must not pay for Authlib or print its warnings
        from inspect_app.scm.github_oauth import GitHubOAuth

        github_oauth = GitHubOAuth(settings)
    # imported here for the same reason: PyGithub is only needed by a running server
    from inspect_app.control.children import Children
    from inspect_app.control.pulls import Pulls
    from inspect_app.control.spending import Spending

    github_app = None
    if settings.github_app_enabled:
        from inspect_app.scm.github_app import GitHubApp

        github_app = GitHubApp(
            app_id=settings.github_app_id,
            private_key=settings.github_app_private_key.get_secret_value(),
            api_url=settings.github_api_url,
        )
    own_network = settings.sandbox_provider == "local" and settings.sandbox_network == "own"
    pulls = Pulls(
        plane=plane,
        cipher=cipher,
        github=github_app,
        web_url=settings.github_web_url,
        git_relay_host=f"127.0.0.1:{RELAY_PORTS['git']}" if own_network else None,
    )
    from inspect_app.control.prebuild import Prebuilder, PrebuildScheduler

    holder = f"{socket.gethostname()}:{os.getpid()}"
    prebuilder = Prebuilder(
        engine=engine,
        provider=lifecycle.provider,
        github=github_app,
        holder=holder,
        api_url=settings.sandbox_api_url,
        build_timeout_s=settings.build_timeout_s,
        setup_timeout_s=settings.setup_timeout_s,
        on_image=lifecycle.prewarm,
        metrics=metrics,
    )
    prebuilds = PrebuildScheduler(
        prebuilder=prebuilder, engine=engine, holder=holder, interval_min=settings.prebuild_interval_min
    )
    from inspect_app.control.automations.runner import Automations

    github_bot = None
    if github_app is not None and settings.github_app_slug:
        from inspect_app.control.automations.github_bot import GitHubBot

        github_bot = GitHubBot(
            plane=plane,
            github=github_app,
            slug=settings.github_app_slug,
            public_url=settings.resolved_public_url,
            answer_timeout_s=settings.execution_timeout_s + 600,
        )
    automations = Automations(
        engine=engine,
        plane=plane,
        tick_s=settings.automation_tick_s,
        grace_s=settings.automation_grace_s,
        github=github_app,
        public_url=settings.resolved_public_url,
        bot=github_bot,
    )
    media = build_media(settings)
    return Services(
        automations=automations,
        github_bot=github_bot,
        slack=build_slack(settings, plane, automations),
        settings=settings,
        engine=engine,
        cipher=cipher,
        plane=plane,
        github_oauth=github_oauth,
        github_app=github_app,
        pulls=pulls,
        children=Children(plane, public_url=settings.resolved_public_url),
        spending=Spending(plane, configured_model=settings.resolved_default_model),
        prebuilds=prebuilds,
        integrations=Integrations(),
        loop_lag=LoopLag(),
        metrics=metrics,
        preview_passes=Passes(settings.encryption_key()),
        media=media,
        screenshots=Screenshots(plane, media),
    )


_lock = threading.Lock()
_current: Services | None = None


def current() -> Services:
    """The process's services, built on first use from the environment's settings."""
    global _current
    with _lock:
        if _current is None:
            _current = build_services(get_settings())
        return _current


def install(services: Services | None) -> None:
    """Replace the process's services (used by tests)."""
    global _current
    with _lock:
        _current = services

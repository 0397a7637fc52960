"""Sandbox lifecycle: the spawn decision, spawning, snapshots, stopping, watchdogs and the breaker.

Spawn decision: restore the session's snapshot > start from the newest ready image > fresh. A
provider with a warm pool hands an image start a sandbox it booted from that image beforehand
(``prewarm``: kept filled for each repository with a ready image).
Watchdogs (``sweep``): a sandbox not ready within ``spawn_timeout_s`` fails; one silent for
``heartbeat_timeout_s`` goes stale; a prompt processing longer than ``execution_timeout_s`` is
stopped; a session idle for ``idle_timeout_s`` is snapshotted and stopped. The breaker: after
``breaker_failures`` failed spawns within ``breaker_window_s`` the session is ``failed`` with the
reason and is not respawned until a person asks (a new prompt or a retry).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, TypeGuard

import sqlalchemy as sa
from sqlmodel import col, select

from inspect_app.control import agent_extensions
from inspect_app.control.boot_watch import BootWatch
from inspect_app.control.crypto import Cipher
from inspect_app.control.data import agent_extensions as extensions
from inspect_app.control.data import instance, replicas, sandboxes, secrets
from inspect_app.control.data import sessions as sessions_ctl
from inspect_app.control.event_data import EventData, SandboxStatusData, WarningData
from inspect_app.db import session_scope
from inspect_app.models import (
    Image,
    ImageStatus,
    Message,
    MessageStatus,
    Repository,
    SandboxStatus,
    Session,
    SessionStatus,
    utcnow,
)
from inspect_app.settings import Settings
from sandbox.providers.base import Adoption, ProviderError, SandboxHandle, SandboxProvider, SandboxSpec, Survivor

log = logging.getLogger(__name__)

Emit = Callable[[str, str, EventData], Awaitable[None]]  # (session_id, event type, data)


@dataclass(frozen=True)
class LifecycleConfig:
    spawn_timeout_s: float = 180.0  # without progress (see boot_watch.py)
    setup_timeout_s: float = 600.0  # .inspect/setup.sh, in the sandbox
    start_timeout_s: float = 120.0  # .inspect/start.sh, in the sandbox
    heartbeat_timeout_s: float = 90.0
    idle_timeout_s: float = 600.0
    execution_timeout_s: float = 3600.0
    breaker_failures: int = 3
    breaker_window_s: float = 300.0
    sweep_interval_s: float = 5.0
    warm_pool_size: int = 0
    keep_sandboxes: bool = False  # sandboxes outlive the server's exit (the next one adopts them)
    replica_id: str = "local"  # this server among several on one database (data/replicas.py)
    replica_timeout_s: float = 30.0  # a peer silent this long is gone: its sandboxes are taken over


Ensured = Literal["live", "failed", "held"]


@dataclass(frozen=True)
class Planned:
    """A sandbox to start: its row exists, the session is spawning (``Lifecycle._decide``)."""

    session_id: str
    sandbox_id: str
    plan: SpawnPlan
    spec: SandboxSpec
    image: Image | None  # the newest ready image (the warm pool refills from it)
    refill: SandboxSpec | None  # started from an image: what the pool refills with
    left_out: tuple[str, ...] = ()  # MCP servers it does not get, and why (said in the session)


@dataclass(frozen=True)
class Tripped:
    """The breaker trips now: the session is failed with ``reason``."""

    reason: str


@dataclass(frozen=True)
class SpawnPlan:
    mode: Literal["fresh", "snapshot_restore", "image"]
    snapshot_ref: str | None = None
    image_ref: str | None = None


# Images built by an older sandbox runtime than this are not used (their workspace layout or tools
# may not match what the current runtime expects); raise it when the runtime changes incompatibly.
IMAGE_RUNTIME_FLOOR = "0.1.0"


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return ()


def image_usable(image: Image | None) -> TypeGuard[Image]:
    """A ready image, with something to start from, built by a runtime at least the floor."""
    return (
        image is not None
        and image.status == ImageStatus.READY
        and bool(image.provider_ref)
        and _version(image.runtime_version) >= _version(IMAGE_RUNTIME_FLOOR)
    )


def newest_ready_image(engine: sa.Engine, repository_id: int, branch: str, provider: str) -> Image | None:
    """The newest ready image of a repository's branch built by this provider (the spawn plan's
    candidate, and what a prebuild compares the branch tip with)."""
    with session_scope(engine) as db:
        return db.exec(
            select(Image)
            .where(
                Image.repository_id == repository_id,
                Image.branch == branch,
                Image.status == ImageStatus.READY,
                Image.provider == provider,
            )
            .order_by(col(Image.built_at).desc())
            .limit(1)
        ).first()


def plan_spawn(session: Session, newest_image: Image | None) -> SpawnPlan:
    """Pure: the session's own snapshot > the newest usable image > fresh."""
    if session.snapshot_ref:
        return SpawnPlan("snapshot_restore", snapshot_ref=session.snapshot_ref)
    if image_usable(newest_image):
        return SpawnPlan("image", image_ref=newest_image.provider_ref)
    return SpawnPlan("fresh")


class Lifecycle:
    def __init__(
        self,
        *,
        engine: sa.Engine,
        cipher: Cipher,
        settings: Settings,
        provider: SandboxProvider,
        config: LifecycleConfig,
        bridge_url: str,
        emit: Emit,
    ) -> None:
        self._engine = engine
        self._cipher = cipher
        self._settings = settings
        self.provider = provider
        self.config = config
        self._bridge_url = bridge_url
        self._emit = emit
        self.handles: dict[str, SandboxHandle] = {}  # sandbox id → provider handle
        # a whole boot: setup and start at their limits, plus a no-progress window for the rest
        cap = config.setup_timeout_s + config.start_timeout_s + 2 * config.spawn_timeout_s
        self.boots = BootWatch(no_progress_s=config.spawn_timeout_s, cap_s=cap)
        # sandbox id → the highest numbered bridge event handled from it (a reconnect re-sends the rest)
        self.bridge_received: dict[str, int] = {}
        # sandbox id → the owner's epoch this replica holds it in (``sandboxes.take``); one taken over
        # by another replica since is known by a different epoch, and what is above is stale then
        self.epochs: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def lock(self, session_id: str) -> asyncio.Lock:
        return self._locks.setdefault(session_id, asyncio.Lock())

    # --- spawning ----------------------------------------------------------------------------
    def breaker_reason(self, session_id: str) -> str | None:
        failures = sandboxes.recent_failures(self._engine, session_id, self.config.breaker_window_s)
        if len(failures) < self.config.breaker_failures:
            return None
        last = failures[-1].error or "unknown error"
        minutes = round(self.config.breaker_window_s / 60)
        return f"the sandbox failed to start {len(failures)} times in {minutes} minutes; last error: {last}"

    async def ensure(self, session_id: str, *, reset_breaker: bool = False) -> Ensured:
        """Make sure the session has a live sandbox (spawning or ready); start one if not. The
        decision and its rows are made off the event loop, in one go (``_decide``). ``live``: it has
        one now; ``failed``: the provider refused to start one; ``held``: none is wanted (archived,
        or the breaker waits for a person)."""
        async with self.lock(session_id):
            decided = await asyncio.to_thread(self._decide, session_id, reset_breaker)
            if isinstance(decided, Tripped):
                held = SandboxStatusData(status="failed", reason=decided.reason)
                await self._emit(session_id, "sandbox_status", held)
                return "held"
            if isinstance(decided, Planned):
                return "live" if await self._spawn(decided) else "failed"
            return decided

    def _decide(self, session_id: str, reset_breaker: bool) -> Planned | Tripped | Ensured:
        """Whether the session needs a sandbox and which (blocking: database work): ``live`` when it
        has one, ``held`` when archived or the breaker already said why; ``Tripped`` when the breaker
        trips now; else the sandbox's row is created, the session is spawning, and here is what to start."""
        if sandboxes.current(self._engine, session_id) is not None:
            return "live"
        session = sessions_ctl.get(self._engine, session_id)
        if session.archived:
            return "held"
        reason = None if reset_breaker else self.breaker_reason(session_id)
        if reason:
            if session.status_reason == reason:
                return "held"
            sessions_ctl.set_status(self._engine, session_id, SessionStatus.FAILED, reason)
            return Tripped(reason)
        newest_image = self._newest_image(session)
        plan = plan_spawn(session, newest_image)
        created = sandboxes.create(
            self._engine,
            session_id=session.id,
            provider=self.provider.name,
            boot_mode=plan.mode,
            replica_id=self.config.replica_id,
        )
        if created is None:  # another replica started one a moment ago
            return "live"
        row, token, tool_token = created
        sessions_ctl.set_status(self._engine, session.id, SessionStatus.SPAWNING)
        spec, left_out = self._spec(session, row.id, token, tool_token, plan)
        refill = dataclasses.replace(spec, model=self._default_model()) if plan.mode == "image" else None
        return Planned(session.id, row.id, plan, spec, newest_image, refill, tuple(left_out))

    def _newest_image(self, session: Session) -> Image | None:
        if session.fork_ref:  # a fork's code starts clean: an image holds what setup made with secrets
            return None
        return newest_ready_image(self._engine, session.repository_id, session.base_branch, self.provider.name)

    def _default_model(self) -> str:
        return instance.default_model(self._engine, self._settings.resolved_default_model)

    def _shared_spec(
        self, repo: Repository, branch: str, model: str, *, trusted: bool = True
    ) -> tuple[SandboxSpec, list[str]]:
        """What every session of ``repo`` on ``branch`` with ``model`` gets (no identity yet), and the
        MCP servers left out of it (a secret of theirs is missing); not ``trusted`` (a fork's code):
        none of the secrets, nor the MCP servers that need them."""
        s = self._settings
        found = secrets.for_sandbox(self._engine, self._cipher, repo.id or 0) if trusted else {}
        extra = agent_extensions.for_sandbox(extensions.for_repository(self._engine, repo.id or 0), found)
        keys = {
            k: v.get_secret_value()
            for k, v in (("ANTHROPIC_API_KEY", s.anthropic_api_key), ("OPENAI_API_KEY", s.openai_api_key))
            if v.get_secret_value()
        }
        spec = SandboxSpec(
            session_id="",
            sandbox_id="",
            repo_url=repo.url,
            branch=branch,
            bridge_url="",
            token="",
            api_url=s.sandbox_api_url,
            committer_name=s.git_committer_name,
            committer_email=s.git_committer_email,
            model=model or self._default_model(),
            llm_base_url=s.llm_base_url,
            llm_api_key=s.llm_api_key.get_secret_value(),
            llm_model=s.llm_model,
            setup_timeout_s=self.config.setup_timeout_s,
            start_timeout_s=self.config.start_timeout_s,
            provider_keys=keys,
            secrets={**found, **extra.env},  # an MCP server's secrets travel as the others do
            egress_hosts=tuple(dict.fromkeys([*(repo.egress_hosts or ()), *extra.hosts])),
            mcp=json.dumps(extra.mcp) if extra.mcp else "",
            skills=json.dumps(extra.skills) if extra.skills else "",
        )
        return spec, extra.left_out

    def _spec(
        self, session: Session, sandbox_id: str, token: str, tool_token: str, plan: SpawnPlan
    ) -> tuple[SandboxSpec, list[str]]:
        with session_scope(self._engine) as db:
            repo = db.get(Repository, session.repository_id)
            assert repo is not None
        # a fork's code: none of the repository's secrets (nor the global ones)
        shared, left_out = self._shared_spec(repo, session.base_branch, session.model, trusted=not session.fork_ref)
        if session.fork_ref:
            shared = dataclasses.replace(shared, fork_ref=session.fork_ref)
        return dataclasses.replace(
            shared,
            session_id=session.id,
            sandbox_id=sandbox_id,
            work_branch=session.branch,
            bridge_url=f"{self._bridge_url}?session={session.id}",
            token=token,
            tool_token=tool_token,
            boot_mode=plan.mode,
        ), left_out

    async def prewarm(self, repository_id: int) -> None:
        """Keep the provider's warm pool for this repository filled from its newest ready image, with
        today's settings and secrets (a change of either replaces the pooled sandboxes)."""
        found = await asyncio.to_thread(self._pool_for, repository_id)
        if found is not None:
            await self._prewarm(*found)

    def _pool_for(self, repository_id: int) -> tuple[Image | None, SandboxSpec] | None:
        with session_scope(self._engine) as db:
            repo = db.get(Repository, repository_id)
        if repo is None:
            return None
        image = newest_ready_image(self._engine, repository_id, repo.default_branch, self.provider.name)
        return image, self._shared_spec(repo, repo.default_branch, "")[0]

    async def _prewarm(self, image: Image | None, like: SandboxSpec) -> None:
        """Pool sandboxes for sessions ``like`` this one (its identity aside) from ``image``; none
        when the image is not usable (any more): the pool empties."""
        try:
            if image_usable(image):
                await self.provider.prewarm(image.provider_ref or "", like, self.config.warm_pool_size)
            else:
                await self.provider.prewarm("", like, 0)
        except ProviderError as exc:
            log.warning("warm pool for %s: %s", like.repo_url, exc)

    async def _spawn(self, planned: Planned) -> bool:
        session_id, sandbox_id, plan, spec = planned.session_id, planned.sandbox_id, planned.plan, planned.spec
        spawning = SandboxStatusData(status="spawning", boot_mode=plan.mode, sandbox_id=sandbox_id)
        await self._emit(session_id, "sandbox_status", spawning)
        try:
            if plan.mode == "snapshot_restore" and plan.snapshot_ref:
                handle = await self.provider.restore(plan.snapshot_ref, spec)
            elif plan.mode == "image" and plan.image_ref:
                try:
                    handle = await self.provider.start_from_image(plan.image_ref, spec)
                except ProviderError as exc:  # e.g. cleaned up meanwhile: a fresh start still works
                    unusable = WarningData(message=f"prebuilt image unusable ({exc}); fresh")
                    await self._emit(session_id, "warning", unusable)
                    handle = await self.provider.spawn(dataclasses.replace(spec, boot_mode="fresh"))
            else:
                handle = await self.provider.spawn(spec)
        except ProviderError as exc:
            await self.fail(session_id, sandbox_id, f"could not start the sandbox: {exc}")
            return False
        self.handles[sandbox_id] = handle
        # its provider id only: a pooled sandbox may have connected, even be ready, by now
        await asyncio.to_thread(sandboxes.set_provider_id, self._engine, sandbox_id, handle.provider_id)
        for warning in (*handle.warnings, *planned.left_out):
            await self._emit(session_id, "warning", WarningData(message=warning))
        if planned.refill is not None:  # refill the pool, with today's settings (they may have changed since)
            await self._prewarm(planned.image, planned.refill)
        return True

    # --- the session's status: every write of it is made here (rules: transitions.session_may) -----
    async def session_is(self, session_id: str, status: SessionStatus, reason: str = "") -> None:
        """Set a status that does not follow from the prompts: syncing, stopped, stale, failed
        (spawning is written with the sandbox's row, in ``_decide``)."""
        await asyncio.to_thread(sessions_ctl.set_status, self._engine, session_id, status, reason)

    async def settle(self, session_id: str, *, sandbox_up: bool) -> None:
        """The status that follows from the prompts (a prompt's start writes running with it):
        running while one is processing, else ready with a sandbox up, else stopped."""
        await asyncio.to_thread(sessions_ctl.settle, self._engine, session_id, sandbox_up=sandbox_up)

    async def fail(self, session_id: str, sandbox_id: str, reason: str) -> None:
        """A sandbox failed to boot (or died): record why, stop it, and let the breaker decide."""
        failed = await asyncio.to_thread(
            sandboxes.set_status, self._engine, sandbox_id, SandboxStatus.FAILED, error=reason
        )
        await self._stop_handle(sandbox_id)
        if not failed:  # it had ended already (stopped, say): its first account stands, the session's too
            return
        await self.session_is(session_id, SessionStatus.FAILED, reason)
        failure = SandboxStatusData(status="failed", reason=reason, sandbox_id=sandbox_id)
        await self._emit(session_id, "sandbox_status", failure)

    async def _stop_handle(self, sandbox_id: str) -> None:
        self.boots.forget(sandbox_id)  # every stop and failure passes here: no boot is watched after it
        self.bridge_received.pop(sandbox_id, None)
        self.epochs.pop(sandbox_id, None)
        handle = self.handles.pop(sandbox_id, None)
        if handle is None:
            return
        try:
            await asyncio.wait_for(self.provider.stop(handle), 30)
        except (ProviderError, TimeoutError) as exc:
            log.warning("stopping sandbox %s: %s", sandbox_id, exc)

    async def stop(
        self, session_id: str, sandbox_id: str, *, status: str = SandboxStatus.STOPPED, reason: str = ""
    ) -> None:
        await asyncio.to_thread(sandboxes.set_status, self._engine, sandbox_id, status, error=reason)
        await self._stop_handle(sandbox_id)

    async def park(self, sandbox_id: str, snapshot_ref: str) -> bool:
        """Ask the provider to keep an idle sandbox warm for its snapshot's restore (False: stop it)."""
        handle = self.handles.get(sandbox_id)
        if handle is None:
            return False
        try:
            return await self.provider.park(handle, snapshot_ref)
        except ProviderError as exc:
            log.warning("parking sandbox %s: %s", sandbox_id, exc)
            return False

    async def unpark(self, snapshot_ref: str) -> None:
        await self.provider.unpark(snapshot_ref)

    async def snapshot(self, session_id: str, sandbox_id: str) -> str | None:
        handle = self.handles.get(sandbox_id)
        if handle is None or not self.provider.capabilities.snapshots:
            return None
        try:
            ref = await asyncio.wait_for(self.provider.snapshot(handle), 300)
        except (ProviderError, TimeoutError) as exc:
            await self._emit(session_id, "warning", WarningData(message=f"snapshot failed: {exc}"))
            return None
        await asyncio.to_thread(self._keep_snapshot, session_id, sandbox_id, ref)
        return ref

    def _keep_snapshot(self, session_id: str, sandbox_id: str, ref: str) -> None:
        sandboxes.set_snapshot(self._engine, sandbox_id, ref)
        with session_scope(self._engine) as db:
            session = db.get(Session, session_id)
            if session is not None:
                session.snapshot_ref = ref

    # --- after a server restart ------------------------------------------------------------
    async def adopt_orphans(self, *, starting: bool = False) -> Adoption:
        """Take over the live sandboxes no living replica serves: this one's own from before a restart,
        and a peer's that stopped beating. Those the provider finds alive are ours again (they
        reconnect); the others are reported lost. What a living replica serves (this one's included)
        is left alone. At start the provider also ends what it finds that nobody claims."""
        c = self.config
        await asyncio.to_thread(replicas.beat, self._engine, c.replica_id, starting=starting)
        rows = await asyncio.to_thread(
            replicas.claim_orphans, self._engine, c.replica_id, c.replica_timeout_s, starting=starting
        )
        if not rows and not starting:
            return Adoption()
        served = await asyncio.to_thread(replicas.served, self._engine, c.replica_timeout_s)
        survivors = [Survivor(row.id, row.session_id, row.provider_id) for row in rows]
        adoption = await self.provider.adopt(survivors, leave=frozenset(served - {row.id for row in rows}))
        claimed = {row.id: row for row in rows}
        for handle in adoption.handles:
            self.handles[handle.sandbox_id] = handle
            row = claimed.get(handle.sandbox_id)
            if row is None:
                continue
            self.epochs[row.id] = row.owner_epoch  # the claim took it over: a new epoch
            if row.bridge_received:
                self.bridge_received[row.id] = row.bridge_received
        return adoption

    async def took_over(self, sandbox_id: str, session_id: str) -> None:
        """A sandbox another replica started (or served) connected here. Where the provider reaches
        its sandboxes from any server (Modal: by id), take its handle too, so that this replica's
        watchdogs and stops reach it; a local one only ever reaches the replica that adopted it."""
        if sandbox_id in self.handles or not self.provider.capabilities.outlives_server:
            return
        row = await asyncio.to_thread(sandboxes.get, self._engine, sandbox_id)
        if row is None:
            return
        adoption = await self.provider.adopt([Survivor(sandbox_id, session_id, row.provider_id)])
        for handle in adoption.handles:
            self.handles[handle.sandbox_id] = handle

    async def close(self) -> None:
        if self.config.keep_sandboxes and self.bridge_received:
            # the sandboxes go on: the next server's handshake tells each where to resume
            positions, epochs = dict(self.bridge_received), dict(self.epochs)
            await asyncio.to_thread(sandboxes.keep_positions, self._engine, positions, epochs)
        await self.provider.close(keep_running=self.config.keep_sandboxes)

    # --- watchdog queries ----------------------------------------------------------------------
    def overdue(self) -> dict[str, list]:
        """What the sweep must act on now (pure reads)."""
        now = utcnow()
        c = self.config
        out: dict[str, list] = {"spawn": [], "stale": [], "exec": [], "idle": []}
        # only what this replica serves: a peer watches its own (and a dead peer's are adopted first)
        mine = sandboxes.live(self._engine, replica_id=c.replica_id)
        for row in mine:
            if row.status in (SandboxStatus.SPAWNING, SandboxStatus.CONNECTED):
                reason = self.boots.overdue(row.id, row.created_at, now)
                if reason is not None:
                    out["spawn"].append((row, reason))
            elif row.last_heartbeat_at and now - row.last_heartbeat_at > timedelta(seconds=c.heartbeat_timeout_s):
                out["stale"].append(row)
        if not mine:
            return out
        served = {row.session_id for row in mine}
        with session_scope(self._engine) as db:
            late = now - timedelta(seconds=c.execution_timeout_s)
            out["exec"] = list(
                db.exec(
                    select(Message).where(
                        Message.status == MessageStatus.PROCESSING,
                        col(Message.started_at) < late,
                        col(Message.session_id).in_(served),
                    )
                ).all()
            )
            idle_since = now - timedelta(seconds=c.idle_timeout_s)
            out["idle"] = list(
                db.exec(
                    select(Session).where(
                        Session.status == SessionStatus.READY,
                        Session.last_activity_at < idle_since,
                        col(Session.id).in_(served),
                    )
                ).all()
            )
        return out

"""The control plane: sessions' prompts meet their sandboxes here.

It owns the event store, the hub, the lifecycle and the live sandbox links, and runs the sweep
(watchdogs). Edges (API routes, Reflex states, bots) call its methods; it calls ``control/`` modules
for data. Prompt flow: ``submit_prompt`` stores the prompt and an event, makes sure a sandbox exists,
then ``dispatch`` sends the oldest pending prompt once the sandbox is ready and nothing is running.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import BaseModel, ValidationError
from sqlmodel import col, select

from inspect_app import logs
from inspect_app.control import costs, presence
from inspect_app.control.agent_extensions import Extension
from inspect_app.control.data import agent_extensions, prompts, sandboxes, usage
from inspect_app.control.data import changes as changes_data
from inspect_app.control.data import sessions as sessions_ctl
from inspect_app.control.event_data import (
    ByData,
    CompleteData,
    EventData,
    Person,
    PromptData,
    SandboxStatusData,
    StartedData,
    WarningData,
    person,
)
from inspect_app.control.events import EventStore, StoredEvent, session_channel
from inspect_app.control.hub import Hub
from inspect_app.control.lifecycle import Lifecycle
from inspect_app.control.links import SNAPSHOT_REPLY, Links, NotLinked, SandboxLink
from inspect_app.control.peers import Peers
from inspect_app.control.previews import Tunnels
from inspect_app.control.terminals import Terminals
from inspect_app.db import session_scope
from inspect_app.errors import Conflict
from inspect_app.models import Artifact, Message, SandboxStatus, Session, SessionStatus, User, utcnow
from sandbox.protocol import (
    Author,
    ParkCommand,
    PromptCommand,
    ShutdownCommand,
    SnapshotCommand,
    StopCommand,
)
from sandbox.providers.base import ProviderError, SandboxHandle

if TYPE_CHECKING:
    from inspect_app.metrics import Metrics

log = logging.getLogger(__name__)

RESTART_REASON = "the server restarted while this prompt ran; send it again"
SNAPSHOT_WAIT_S = 60.0
# After a sandbox's socket closes: how long (and how often) to look whether its process is gone.
EXIT_WATCH_S = 8.0
EXIT_WATCH_EVERY_S = 0.25
START_RETRY_S = (1.0, 2.0, 4.0, 8.0)
AUTHORS_KEPT = 10_000  # pauses between starts the provider refused (the breaker stops them)
LIVE_SANDBOX = frozenset({SandboxStatus.SPAWNING, SandboxStatus.CONNECTED, SandboxStatus.READY})


def commit_author(user: User) -> Author:
    """Who a prompt's commits are authored by: the person, with the address they commit under."""
    return Author(name=user.name, email=user.commit_email or user.email or f"user-{user.id}@users.noreply.inspect")


def prompt_command(message: Message, author: User) -> PromptCommand:
    """What a sandbox is sent to run ``message``: built here alone, for a first delivery and for a
    re-send after a reconnect alike (its context included); ``author`` is the prompt's, as now."""
    return PromptCommand(
        message_id=message.id,
        content=prompts.delivered_text(message.content, message.context),
        model=message.model,
        mode="plan" if message.mode == "plan" else "build",
        author=commit_author(author),
    )


class Undeliverable(Exception):
    """A prompt that cannot be sent to any sandbox (it has been marked failed with ``reason``)."""

    def __init__(self, message: Message, reason: str) -> None:
        super().__init__(reason)
        self.message, self.reason = message, reason


class ControlPlane:
    def __init__(
        self,
        *,
        engine: sa.Engine,
        hub: Hub,
        events: EventStore,
        lifecycle: Lifecycle,
        links: Links | None = None,
        peers: Peers | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.engine = engine
        self.hub = hub
        self.events = events
        self.lifecycle = lifecycle
        self.links = links or Links()  # session id → live link, and request/reply over it
        self.peers = peers  # several replicas: sessions whose sandbox a peer serves are reached through it
        self.metrics = metrics
        self._sweeper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watchers: list[Callable[[str], Awaitable[None]]] = []
        # people's terminals in the sandboxes this replica serves (their bytes come back here)
        self.terminals = Terminals(send=self._send_here, emit=self.emit, touch=self._touch)
        # the streams of people's previews (``control/previews.py``), relayed the same way
        self.tunnels = Tunnels(send=self._send_here, touch=self._touch)
        # message id → author, for its events (tokens stream: one read per prompt, not per event);
        # bounded, so a server that runs for months does not keep every prompt's
        self._authors: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._oom_kills: dict[str, int] = {}  # sandbox id → memory-limit kills already reported
        self._denied_hosts: set[tuple[str, str]] = set()  # (session, host) refusals already reported
        self._joined: set[tuple[str, int]] = set()
        self.closing = False  # stopping: sandbox events are left for the next server (they re-send)

    # --- process lifetime ----------------------------------------------------------------------
    async def start(self) -> None:
        await self.hub.start()
        await self.events.start()
        if self.peers is not None:
            await self.peers.start()
        await self._adopt(starting=True)
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="control-sweep")

    async def close(self) -> None:
        self.closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*(t for t in [self._sweeper, *self._tasks] if t), return_exceptions=True)
        if self.peers is not None:
            await self.peers.close()
        await self.lifecycle.close()
        await self.events.close()
        await self.hub.close()

    async def _send_here(self, session_id: str, command: BaseModel) -> bool:
        """To the session's sandbox if this replica serves it (a terminal's answers come back here)."""
        link = self.links.get(session_id)
        return link is not None and await link.send(command)

    async def _touch(self, session_id: str) -> None:
        await asyncio.to_thread(sessions_ctl.touch, self.engine, session_id)

    def watch(self, watcher: Callable[[str], Awaitable[None]]) -> None:
        """Be told (with its id) when a session changed in a way others follow: a prompt ended, a
        pull request was recorded (child sessions tell their parent)."""
        self._watchers.append(watcher)

    async def changed(self, session_id: str) -> None:
        for watcher in self._watchers:
            await watcher(session_id)

    def spawn_task(self, coro: Awaitable[Any]) -> None:
        """Run work in the background, owned here (cancelled on close, errors logged)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background task failed", exc_info=t.exception())

        task.add_done_callback(done)

    async def emit(self, session_id: str, type_: str, data: EventData, *, message_id: str | None = None) -> None:
        await self.events.append(session_id, type_, data.stored(), message_id=message_id)

    async def _adopt(self, *, starting: bool = False) -> None:
        """Beat as a replica, and take over what no living replica serves: after a restart this one's
        own sandboxes, later a peer's that stopped beating. Those still running are ours — they
        reconnect, a prompt they were running goes on (its events were kept for the new connection)
        — and those that are gone are over, with their prompts. A living peer's are left alone."""
        adoption = await self.lifecycle.adopt_orphans(starting=starting)
        for handle in adoption.handles:
            # a fresh heartbeat window: the time the server was down is not the sandbox's silence
            await asyncio.to_thread(sandboxes.heartbeat, self.engine, handle.sandbox_id)
        for sandbox_id, reason in adoption.lost.items():
            row = await asyncio.to_thread(sandboxes.get, self.engine, sandbox_id)
            if row is None:
                continue
            self.lifecycle.handles.pop(sandbox_id, None)
            await self._lost(row.session_id, sandbox_id, reason, SandboxStatus.FAILED)

    # --- sessions and prompts (called by the edges) -------------------------------------------
    async def join(self, session_id: str, user: User) -> None:
        """Make the user a participant (first connect), remembering who already is."""
        key = (session_id, user.id or 0)
        if key not in self._joined:
            await asyncio.to_thread(sessions_ctl.join, self.engine, session_id, user.id or 0)
            self._joined.add(key)

    def warm(self, session_id: str) -> None:
        """Start the session's sandbox now (session created, someone typing), without waiting."""
        self.spawn_task(self.lifecycle.ensure(session_id))

    async def create_session(
        self,
        *,
        repository_id: int,
        creator_id: int,
        branch: str | None = None,
        model: str = "",
        title: str = "",
        source: str = "api",
        source_ref: dict[str, Any] | None = None,
        work_branch: str | None = None,
        fork_pull: int | None = None,
        parent_id: str | None = None,
    ) -> Session:
        """A new session whose sandbox starts booting at once, while the person writes their prompt.
        Every client creates sessions through here (the API, the web UI, Slack, automations)."""
        session = await asyncio.to_thread(
            sessions_ctl.create,
            self.engine,
            repository_id=repository_id,
            creator_id=creator_id,
            branch=branch,
            model=model,
            title=title,
            source=source,
            source_ref=source_ref,
            work_branch=work_branch,
            fork_pull=fork_pull,
            parent_id=parent_id,
        )
        self.warm(session.id)
        return session

    async def typing(self, session_id: str, who: presence.Person) -> None:
        """Someone is writing a prompt: the others see it, and the sandbox starts if it sleeps."""
        await presence.announce(self.hub, session_id, presence.Typing(user=who))
        self.warm(session_id)

    @logs.about_session
    async def submit_prompt(
        self,
        *,
        session_id: str,
        user: User,
        content: str,
        client_request_id: str | None = None,
        source: str = "api",
        context: dict[str, Any] | None = None,
        mode: str = "build",
        model: str = "",
    ) -> prompts.Enqueued:
        """Queue ``content`` as ``user``'s prompt (they join the session if new to it), and send it at
        once if the sandbox is ready and idle, else start one. Every client prompts through here.
        ``mode="plan"``: the agent plans and changes nothing; ``model``: this prompt's own."""
        await asyncio.to_thread(usage.check_budget, self.engine, user)  # refused, nothing queued, when spent
        await self.join(session_id, user)
        link = await self.links.reach(session_id)
        warm = link is not None
        queued = await asyncio.to_thread(
            prompts.enqueue,
            self.engine,
            start_if_idle=warm,
            session_id=session_id,
            author_id=user.id or 0,
            content=content,
            client_request_id=client_request_id,
            source=source,
            context=context,
            mode=mode,
            model=model,
        )
        if queued.created:
            author = person(user)
            self._remember_author(queued.message.id, author)
            # a context is kept once, on the message (prompts.contexts reads it)
            prompt = PromptData(content=content, author=author, source=source, position=queued.position)
            if mode != "build":
                prompt.mode = mode  # set only when a plan: a stored row names what was asked
            if context:
                prompt.has_context = True  # set only when true: a stored row names what was given
            data = prompt.stored()
            if queued.started and link is not None:
                # warm sandbox: delivered on the request's path. Its events are queued first (the
                # store writes in order), so whatever the sandbox answers is recorded after them.
                self.events.append_nowait(session_id, "prompt", data, message_id=queued.message.id)
                self._started(session_id, queued.message, author)
                try:
                    sent = await self._deliver(session_id, link, queued.message, author=user)
                except Undeliverable as exc:
                    await self._announce_failure(session_id, exc.message, exc.reason)
                    await self.lifecycle.settle(session_id, sandbox_up=True)
                    self.spawn_task(self.dispatch(session_id))
                    return queued
                if not sent:
                    self.spawn_task(self.dispatch(session_id))
                return queued
            self.events.append_nowait(session_id, "prompt", data, message_id=queued.message.id)
            if warm:
                await self.dispatch(session_id)
            else:
                session = await asyncio.to_thread(sessions_ctl.get, self.engine, session_id)
                reset = session.status == SessionStatus.FAILED  # a person asking again resets the breaker
                self.spawn_task(self._ensure_and_dispatch(session_id, reset_breaker=reset))
        return queued

    async def _ensure_and_dispatch(self, session_id: str, *, reset_breaker: bool = False) -> None:
        """A sandbox for the session's queue, then its next prompt. A start the provider refused at
        once (an API down, say) is tried again, after a pause, until the breaker says to wait."""
        for pause in START_RETRY_S:
            if await self.lifecycle.ensure(session_id, reset_breaker=reset_breaker) != "failed":
                break
            reset_breaker = False
            if not await asyncio.to_thread(prompts.has_pending, self.engine, session_id):
                return
            await asyncio.sleep(pause)
        await self.dispatch(session_id)

    async def cancel_prompt(self, *, session_id: str, message_id: str, user: User) -> Message:
        message = await asyncio.to_thread(prompts.cancel, self.engine, session_id=session_id, message_id=message_id)
        await self.emit(session_id, "prompt_cancelled", ByData(by=person(user)), message_id=message_id)
        return message

    @logs.about_session
    async def stop(self, *, session_id: str, user: User) -> None:
        running = await asyncio.to_thread(prompts.processing, self.engine, session_id)
        if running is None:
            raise Conflict("nothing is running in this session", code="not_running")
        await self.emit(session_id, "stop_requested", ByData(by=person(user)), message_id=running.id)
        if not await self.links.send(session_id, StopCommand(message_id=running.id)):
            # no sandbox to ask: the prompt cannot finish, so it fails now
            await self.fail_prompt(session_id, running, "stopped (the sandbox was not connected)")

    async def dispatch(self, session_id: str) -> None:
        """Send the next prompt if the sandbox is ready and none is running (one that cannot be sent
        at all has failed, and the next one is tried)."""
        while True:
            link = await self.links.reach(session_id)
            if link is None:
                return
            try:
                async with self.lifecycle.lock(session_id):
                    message = await asyncio.to_thread(prompts.start_next, self.engine, session_id)
                    if message is None:
                        return
                    user = await self.person(message.author_id)  # as now: for its events and its commits
                    self._remember_author(message.id, person(user))
                    self._started(session_id, message, person(user))  # queued before anything the sandbox answers
                    await self._deliver(session_id, link, message, author=user)
            except Undeliverable as exc:
                await self._announce_failure(session_id, exc.message, exc.reason)
                await self.lifecycle.settle(session_id, sandbox_up=True)
                continue
            return

    async def _deliver(self, session_id: str, link: SandboxLink, message: Message, author: User | None = None) -> bool:
        """Send a processing prompt to its sandbox; False: the link is gone, and it is pending again.
        Raises ``Undeliverable`` (the prompt has failed, with its reason; the caller announces it)
        when it cannot be sent at all: a prompt is never left processing with no sandbox on it."""
        try:
            if author is None:  # read now: a name or commit email changed since it was queued counts
                author = await self.person(message.author_id)
            command = prompt_command(message, author)
        except (ValidationError, ValueError) as exc:  # the checks at the edges should make this unreachable
            reason = f"the prompt could not be sent to the sandbox: {exc}"
            log.error("prompt %s of %s: %s", message.id, session_id, reason)
            await asyncio.to_thread(prompts.finish, self.engine, message.id, success=False, error=reason)
            raise Undeliverable(message, reason) from None
        if await link.send(command):
            if self.metrics is not None:
                self.metrics.prompt_delivery.observe((utcnow() - message.created_at).total_seconds())
            return True
        await asyncio.to_thread(prompts.requeue, self.engine, message.id)
        return False

    def _started(self, session_id: str, message: Message, author: Person) -> None:
        """Record that ``message`` starts (the session is running already: set with it). Queued in the
        store before the prompt is sent, so it is stored before anything the sandbox answers; a prompt
        whose sending failed is pending again and starts again later."""
        data = StartedData(author=author).stored()
        self.events.append_nowait(session_id, "prompt_started", data, message_id=message.id)

    async def complete(self, session_id: str, message_id: str, *, success: bool, error: str | None) -> None:
        finished = await asyncio.to_thread(prompts.finish, self.engine, message_id, success=success, error=error or "")
        if finished is None:
            return  # already finished (a re-sent completion)
        link = self.links.get(session_id)
        await self.lifecycle.settle(session_id, sandbox_up=link is not None)
        await self.changed(session_id)
        if link is not None:  # the prompt's changes kept (with a snapshot where the provider takes them)
            capable = self.lifecycle.provider.capabilities.snapshots
            self.spawn_task(self.snapshot(session_id) if capable else self.keep_changes(session_id))
        await self.dispatch(session_id)

    # --- snapshots and stopping ------------------------------------------------------------------
    async def snapshot(self, session_id: str) -> str | None:
        """Ask the sandbox to settle, then snapshot it through the provider."""
        link = self.links.get(session_id)
        if link is None:
            return None
        try:
            await self.links.request(session_id, SnapshotCommand(), reply=SNAPSHOT_REPLY, timeout=SNAPSHOT_WAIT_S)
        except (NotLinked, TimeoutError):
            await self.keep_changes(session_id)  # not settled: what it has now, rather than nothing
            return None
        await self.keep_changes(session_id)  # settled: what the prompt changed, kept for after the sandbox
        return await self.lifecycle.snapshot(session_id, link.sandbox_id)

    async def put_to_sleep(self, session_id: str, *, by: str) -> None:
        """Someone stops the session's sandbox now (it resumes at the next prompt)."""
        if await asyncio.to_thread(prompts.queue, self.engine, session_id):
            raise Conflict("prompts are running or waiting: stop or cancel them first", code="prompt_running")
        await asyncio.to_thread(sessions_ctl.get, self.engine, session_id)  # NotFound: no such session
        await self.sleep(session_id, f"stopped by {by}")

    async def sleep(self, session_id: str, reason: str) -> None:
        """Idle: snapshot, then stop the sandbox (or park it, where the provider keeps it warm for a
        while); the next prompt restores it."""
        link = self.links.get(session_id)
        row = await asyncio.to_thread(sandboxes.current, self.engine, session_id)
        if row is None:
            return
        if link is not None:
            ref = await self.snapshot(session_id)  # keeps the changes too
            parked = bool(ref) and await self.lifecycle.park(row.id, ref or "")
            told = await link.send(ParkCommand() if parked else ShutdownCommand())
            if parked and not told:  # it would wait for a claim it cannot take: stop it instead
                await self.lifecycle.unpark(ref or "")
        await self.lifecycle.stop(session_id, row.id)
        self.links.drop(session_id)
        await self.lifecycle.session_is(session_id, SessionStatus.STOPPED, reason)
        await self.emit(session_id, "sandbox_status", SandboxStatusData(status="stopped", reason=reason))

    async def changes(self, session_id: str) -> str | None:
        """The session's diff against its base: read inside its sandbox while it runs here, else
        the one kept last (after its last prompt, or before it slept); None if unknown."""
        if self.links.get(session_id) is not None:
            diff = await self._read_changes(session_id)
            if diff is not None:
                return diff
        kept = await asyncio.to_thread(changes_data.kept, self.engine, session_id)
        return kept if kept is not None else await self._read_changes(session_id)

    async def keep_changes(self, session_id: str) -> None:
        """Read and keep the session's diff while its sandbox still runs (nothing runs in a stopped
        sandbox's tree, and a Modal sandbox's is gone), and tell the pages showing it. Never raises:
        it runs on the way to a snapshot or a stop, which must go on."""
        try:
            diff = await self._read_changes(session_id)
            if diff is None:
                return
            await asyncio.to_thread(changes_data.keep, self.engine, session_id, diff)
            # not stored: open pages read the kept copy again (a database read, not a diff per tab)
            await self.hub.publish(session_channel(session_id), json.dumps({"type": CHANGES_KEPT}))
        except Exception:
            log.exception("could not keep the changes of %s", session_id)

    async def _read_changes(self, session_id: str) -> str | None:
        session = await asyncio.to_thread(sessions_ctl.get, self.engine, session_id)
        try:
            diff = await asyncio.wait_for(self.lifecycle.provider.diff(session_id, session.base_branch), 30)
        except (ProviderError, TimeoutError) as exc:
            log.info("could not read the changes of %s: %s", session_id, exc)
            return None
        return None if diff is None else diff[: changes_data.MAX_KEPT]

    # --- watchdogs -----------------------------------------------------------------------------
    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lifecycle.config.sweep_interval_s)
            try:
                await self.sweep()
            except Exception:
                log.exception("sweep failed")

    async def sweep(self) -> None:
        await self._adopt()
        due = await asyncio.to_thread(self.lifecycle.overdue)
        limit = self.lifecycle.config
        for row, reason in due["spawn"]:
            await self.lifecycle.fail(row.session_id, row.id, reason)
            await self.after_failure(row.session_id)
        for row in due["stale"]:
            await self._lost(
                row.session_id, row.id, f"no heartbeat for {limit.heartbeat_timeout_s:.0f}s", SandboxStatus.STALE
            )
        for message in due["exec"]:
            reason = f"the prompt ran longer than {limit.execution_timeout_s:.0f}s and was stopped"
            await self.links.send(message.session_id, StopCommand(message_id=message.id))
            await self.fail_prompt(message.session_id, message, reason)
        for session in due["idle"]:
            # someone at its terminal, or using its preview, is not idle
            if not (self.terminals.open_in(session.id) or self.tunnels.active_in(session.id, limit.idle_timeout_s)):
                await self.sleep(session.id, f"idle for {limit.idle_timeout_s:.0f}s")
        for session_id, link in list(self.links.items()):
            handle = self.lifecycle.handles.get(link.sandbox_id)
            if handle is None:
                continue
            if await self.lifecycle.provider.status(handle) == "exited":
                await self._lost(session_id, link.sandbox_id, self._exit_reason(handle), SandboxStatus.FAILED)
            else:
                await self._report_oom(session_id, handle)

    def egress_denied(self, session_id: str, host: str, reason: str) -> None:
        """A sandbox was refused a host: one warning per host and session, saying how to allow it."""
        if (session_id, host) in self._denied_hosts:
            return
        self._denied_hosts.add((session_id, host))
        message = f"the sandbox was refused {host}: {reason}"
        detail = (
            "The sandbox reaches out only through its egress proxy. An admin can allow the host for this repository "
            "in Settings (its egress hosts; new sandboxes get it), or for every repository with INSPECT_EGRESS_ALLOW."
        )
        self.spawn_task(self.emit(session_id, "warning", WarningData(message=message, detail=detail)))

    def _exit_reason(self, handle: SandboxHandle) -> str:
        """Why a sandbox's process is gone, as far as we can tell (read before it is cleaned up)."""
        if self.lifecycle.provider.oom_kills(handle) > self._oom_kills.get(handle.sandbox_id, 0):
            return "the sandbox process exited after it went over its memory limit"
        return "the sandbox process exited"

    async def _report_oom(self, session_id: str, handle: SandboxHandle) -> None:
        """A process of the sandbox was killed for going over its memory limit: say so in the session
        (the agent sees only "Killed"), once per kill."""
        kills = self.lifecycle.provider.oom_kills(handle)
        seen = self._oom_kills.get(handle.sandbox_id, 0)
        if kills > seen:
            self._oom_kills[handle.sandbox_id] = kills
            await self.emit(
                session_id,
                "warning",
                WarningData(
                    message="a process in the sandbox was killed: it went over the sandbox's memory limit",
                    detail=f"{kills} such kill(s) so far; the limit is INSPECT_SANDBOX_MEMORY_MB",
                ),
            )

    async def _announce_failure(self, session_id: str, message: Message, reason: str) -> None:
        """Record a prompt's failure that no sandbox will report (it is gone, or was cut off here)."""
        await self.emit(
            session_id,
            "execution_complete",
            CompleteData.model_validate(
                {"success": False, "error": reason, "author": await self.author_for(message.id)}
            ),
            message_id=message.id,
        )

    async def fail_prompt(self, session_id: str, message: Message, reason: str) -> None:
        """End a running prompt as failed, with its one ``execution_complete`` (nobody else will send it)."""
        await self._announce_failure(session_id, message, reason)
        await self.complete(session_id, message.id, success=False, error=reason)

    async def _lost(self, session_id: str, sandbox_id: str, reason: str, status: str) -> None:
        self.links.drop(session_id)
        await self.lifecycle.stop(session_id, sandbox_id, status=status, reason=reason)
        lost = f"the sandbox was lost: {reason}"
        for message in await asyncio.to_thread(prompts.fail_processing, self.engine, lost, session_id=session_id):
            await self._announce_failure(session_id, message, lost)
        after = SessionStatus.STALE if status == SandboxStatus.STALE else SessionStatus.STOPPED
        await self.lifecycle.session_is(session_id, after, reason)
        await self.emit(session_id, "sandbox_status", SandboxStatusData(status=status, reason=reason))
        await self.after_failure(session_id)

    async def watch_exit(self, session_id: str, sandbox_id: str) -> None:
        """A sandbox's socket closed. If its process exited, its prompt cannot finish: fail it now
        (the heartbeat watchdog would take minutes). If it lives, it reconnects: nothing to do."""
        handle = self.lifecycle.handles.get(sandbox_id)
        if handle is None:
            return  # stopped here on purpose
        loop = asyncio.get_running_loop()
        deadline = loop.time() + EXIT_WATCH_S
        while loop.time() < deadline:
            link = self.links.get(session_id)
            if link is not None and link.sandbox_id == sandbox_id:
                return  # reconnected
            row = await asyncio.to_thread(sandboxes.get, self.engine, sandbox_id)
            if row is None or row.status not in LIVE_SANDBOX:
                return  # stopped, replaced or already marked lost
            if await self.lifecycle.provider.status(handle) == "exited":
                await self._lost(session_id, sandbox_id, self._exit_reason(handle), SandboxStatus.FAILED)
                return
            await asyncio.sleep(EXIT_WATCH_EVERY_S)

    async def after_failure(self, session_id: str) -> None:
        """Queued prompts get a new sandbox, unless the breaker says to wait for a person."""
        if await asyncio.to_thread(prompts.has_pending, self.engine, session_id):
            self.spawn_task(self._ensure_and_dispatch(session_id))

    # --- helpers -------------------------------------------------------------------------------
    async def person(self, user_id: int) -> User:
        """``user`` off the loop (for edges that hold only an id)."""
        return await asyncio.to_thread(self.user, user_id)

    def user(self, user_id: int) -> User:
        """Read each time (blocking): a name or commit email changed in Settings counts from the next prompt."""
        with session_scope(self.engine) as db:
            user = db.get(User, user_id)
            assert user is not None
            return user

    def _remember_author(self, message_id: str, author: Person) -> None:
        self._authors[message_id] = author.model_dump()  # kept as stored: events copy it as it is
        self._authors.move_to_end(message_id)
        while len(self._authors) > AUTHORS_KEPT:
            self._authors.popitem(last=False)

    async def author_for(self, message_id: str | None) -> dict[str, Any] | None:
        """Who wrote prompt ``message_id``, as its events store it (``Person``): remembered (tokens
        stream), else read off the loop."""
        if message_id is None:
            return None
        if message_id not in self._authors:
            author = await asyncio.to_thread(self._read_author, message_id)
            if author is None:
                return None
            self._remember_author(message_id, author)
        return self._authors[message_id]

    def _read_author(self, message_id: str) -> Person | None:
        with session_scope(self.engine) as db:
            message = db.get(Message, message_id)
            author_id = message.author_id if message is not None else None
        return None if author_id is None else person(self.user(author_id))

    def session_snapshot(self, session_id: str) -> dict[str, Any]:
        """The session as a client sees it on (re)subscribe."""
        session = sessions_ctl.get(self.engine, session_id)
        sandbox = sandboxes.newest(self.engine, session_id)
        return {
            "session": session_public(session),
            "sandbox": None
            if sandbox is None
            else {
                "id": sandbox.id,
                "status": sandbox.status,
                "boot_mode": sandbox.boot_mode,
                "error": sandbox.error,
            },
            "queue": [q.__dict__ for q in prompts.queue(self.engine, session_id)],
            "artifacts": artifacts(self.engine, session_id),
            "cost": cost_public(usage.of_session(self.engine, session_id)),
            "agent": agent_public(agent_extensions.for_repository(self.engine, session.repository_id)),
            "sandbox_limits": self.lifecycle.provider.limits_summary(),
            "previews": self.previews_of(session_id),
            "boot": [e.to_dict() for e in self.events.newest_of(session_id, *BOOT_TYPES, limit=40)],
            "participants": [
                {"name": user.name, "role": p.role, "last_seen": p.last_seen_at.isoformat() if p.last_seen_at else ""}
                for p, user in sessions_ctl.participants(self.engine, session_id)
            ],
            "cursor": session.last_rev,  # the change feed's position this snapshot is at
        }

    def previews_of(self, session_id: str) -> list[dict[str, Any]]:
        """The preview ports its sandbox declared when it was last ready."""
        for event in self.events.newest_of(session_id, "sandbox_status"):
            if event.data.get("status") == "ready":
                return list(event.data.get("previews") or [])
        return []

    def recent_events(self, session_id: str, limit: int = 100) -> list[StoredEvent]:
        return self.events.tail(session_id, limit=limit)

    def answer(self, session_id: str, message_id: str) -> str:
        """What the agent answered prompt ``message_id`` (its text), "" when it said nothing (blocking)."""
        events = self.recent_events(session_id, limit=200)
        texts = [e.data.get("text", "") for e in events if e.type == "text" and e.message_id == message_id]
        return str(texts[-1]).strip() if texts else ""


def agent_public(found: list[Extension]) -> dict[str, list[str]]:
    """What the session's agent gets besides its own tools (by name)."""
    return {
        "mcp": [e.name for e in found if e.kind.startswith("mcp_")],
        "skills": [e.name for e in found if e.kind == "skill"],
    }


def cost_public(spent: usage.Spent) -> dict[str, Any]:
    """What the session's ended prompts cost (exact decimal dollars as a string)."""
    return {
        "dollars": costs.exact(spent.dollars),
        "display": costs.dollars(spent.dollars),
        "tokens": spent.tokens.__dict__,
        "unpriced": spent.unpriced,
    }


CHANGES_KEPT = "changes_kept"  # a live-only frame: the session's changes were read and kept
BOOT_TYPES = ("sandbox_status", "git_sync", "boot_progress")  # a sandbox's boot, step by step


def artifacts(engine: sa.Engine, session_id: str) -> list[dict[str, Any]]:
    with session_scope(engine) as db:
        rows = db.exec(select(Artifact).where(Artifact.session_id == session_id).order_by(col(Artifact.id))).all()
        return [{"kind": a.type, "url": a.url, "state": a.state, "meta": a.meta} for a in rows]


def started_by(session: Session) -> str:
    """What started a session that no person started: "automation Nightly triage (run #3)"."""
    ref = session.source_ref or {}
    if session.source == "automation" and ref.get("automation"):
        return f"automation {ref['automation']} (run #{ref.get('run', '?')})"
    return ""


def session_public(session: Session) -> dict[str, Any]:
    return {
        "id": session.id,
        "repository_id": session.repository_id,
        "base_branch": session.base_branch,
        "branch": session.branch,
        "status": session.status,
        "status_reason": session.status_reason,
        "model": session.model,
        "title": session.title,
        "creator_id": session.creator_id,
        "source": session.source,
        "source_link": str((session.source_ref or {}).get("permalink", "")),  # e.g. the Slack thread
        "started_by": started_by(session),
        "fork_ref": session.fork_ref,  # a fork's pull request: its code runs with no secrets, pushes nothing
        "archived": session.archived,
        "created_at": session.created_at.isoformat(),
        "updated_at": session.updated_at.isoformat(),
    }

"""What the control plane does with each message a connected sandbox sends (one connection each)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel

from inspect_app import logs
from inspect_app.control.data import prompts, sandboxes
from inspect_app.control.data import sessions as sessions_ctl
from inspect_app.control.event_data import PreviewData, SandboxStatusData
from inspect_app.control.events import bridge_position
from inspect_app.control.links import SNAPSHOT_REPLY, SandboxLink, push_reply
from inspect_app.control.plane import RESTART_REASON, ControlPlane, prompt_command
from inspect_app.errors import NotFound
from inspect_app.models import Message, Sandbox, SessionStatus
from sandbox.protocol import (
    AckCommand,
    ArtifactEvent,
    BootProgress,
    ControlError,
    ExecutionComplete,
    GitSync,
    Heartbeat,
    PushComplete,
    PushError,
    Ready,
    SandboxError,
    SessionTitle,
    SnapshotReady,
    StepFinish,
    StopCommand,
    TerminalExit,
    TerminalOutput,
    Token,
    ToolCall,
    TunnelClose,
    TunnelData,
    Warning,
)

log = logging.getLogger(__name__)

HEARTBEAT_WRITE_S = 10.0
BOOT_FAILURES = {"start_failed", "git_sync_failed", "agent_failed", "agent_crashed"}


class SandboxConnection:
    """Handles one sandbox's messages. Critical messages are acknowledged after they are stored."""

    def __init__(self, plane: ControlPlane, link: SandboxLink) -> None:
        self.plane = plane
        self.link = link
        self._last_heartbeat_write = 0.0
        self._owned: set[str] = set()  # prompt ids known to be this session's
        self._handlers: dict[type, Callable[[Any], Awaitable[None]]] = {
            Ready: self._ready,
            Heartbeat: self._heartbeat,
            GitSync: self._boot_event,
            BootProgress: self._boot_event,
            Token: self._token,
            ToolCall: self._tool_call,
            StepFinish: self._plain,
            SessionTitle: self._title,
            ArtifactEvent: self._plain,
            Warning: self._plain,
            SandboxError: self._error,
            ExecutionComplete: self._execution_complete,
            PushComplete: self._push_result,
            PushError: self._push_result,
            SnapshotReady: self._snapshot_ready,
            TerminalOutput: self._terminal,
            TerminalExit: self._terminal,
            TunnelData: self._tunnel,
            TunnelClose: self._tunnel,
        }

    async def _terminal(self, message: TerminalOutput | TerminalExit) -> None:
        self.plane.terminals.deliver(self.session_id, message)  # a person's terminal, on this replica

    async def _tunnel(self, message: TunnelData | TunnelClose) -> None:
        self.plane.tunnels.deliver(self.session_id, message)  # a preview's stream, on this replica

    @property
    def session_id(self) -> str:
        return self.link.session_id

    async def open(self) -> int | None:
        """The sandbox connected here: this replica serves it from now on (``sandboxes.take``).
        Returns the number of its last bridge event this replica has, for the handshake (it sends
        again what came after), or None when it has none.

        Taken over from another replica (or after another held it since this one did), what this
        replica remembers is stale: what is stored is what counts, and the previous owner's events
        not stored by now are refused from now on, so the sandbox re-sends each of them once."""
        lifecycle, sandbox_id = self.plane.lifecycle, self.link.sandbox_id
        taken = await asyncio.to_thread(sandboxes.take, self.plane.engine, sandbox_id, lifecycle.config.replica_id)
        if taken is None:
            return None
        epoch, stored = taken
        self.link.epoch = epoch
        if lifecycle.epochs.get(sandbox_id) != epoch:
            lifecycle.epochs[sandbox_id] = epoch
            lifecycle.bridge_received[sandbox_id] = stored
            await lifecycle.took_over(sandbox_id, self.session_id)
        return lifecycle.bridge_received.get(sandbox_id) or None

    async def handle(self, message: BaseModel) -> None:
        with logs.about(self.session_id):
            await self._handle(message)

    async def _handle(self, message: BaseModel) -> None:
        if self.plane.closing:
            return  # not handled, not acknowledged: the sandbox sends it to the next server
        message_id = getattr(message, "message_id", None)
        if not self._first_time(message):
            pass  # sent again after a reconnect, and handled already (a critical one is acked again)
        elif message_id and not await self._owns(message_id):
            # another session's prompt (or none at all): the sandbox speaks for its own session only
            kind = getattr(message, "type", "?")
            log.warning("sandbox %s sent %s for a prompt not of its session", self.link.sandbox_id, kind)
            await self.link.send(ControlError(code="not_your_prompt", message=f"no prompt {message_id} here"))
        else:
            n = getattr(message, "n", None)
            token = bridge_position.set((self.link.sandbox_id, n, self.link.epoch)) if n is not None else None
            try:
                await self._handlers[type(message)](message)
            finally:
                if token is not None:
                    bridge_position.reset(token)
        ack_id = getattr(message, "ack_id", None)
        if ack_id:  # acknowledged either way: a refused message is not worth re-sending
            await self.link.send(AckCommand(ack_id=ack_id))

    def _first_time(self, message: BaseModel) -> bool:
        """Whether this numbered event is new. Checked and recorded with no await between, so two
        connections of one sandbox (the old one draining, the new one re-sending) handle each once."""
        n = getattr(message, "n", None)
        if n is None:
            return True
        received = self.plane.lifecycle.bridge_received
        last = received.get(self.link.sandbox_id, 0)
        if n <= last:
            return False
        if last and n > last + 1:
            log.warning("sandbox %s: events %d to %d never arrived", self.link.sandbox_id, last + 1, n - 1)
        received[self.link.sandbox_id] = n
        return True

    async def _owns(self, message_id: str) -> bool:
        """Whether ``message_id`` is a prompt of this sandbox's session (remembered: tokens stream)."""
        if message_id in self._owned:
            return True
        try:
            await asyncio.to_thread(prompts.get, self.plane.engine, self.session_id, message_id)
        except NotFound:
            return False
        self._owned.add(message_id)
        return True

    async def closed(self) -> None:
        if self.plane.links.detach(self.link):
            self.plane.tunnels.ended(self.session_id)  # a preview's streams do not survive their bridge
            # a supervisor that died takes its socket with it: find out now, not at the heartbeat timeout
            self.plane.spawn_task(self.plane.watch_exit(self.session_id, self.link.sandbox_id))

    # --- handlers ------------------------------------------------------------------------------
    def _data(self, message: BaseModel, *drop: str) -> dict[str, Any]:
        return message.model_dump(exclude={"type", "ack_id", "message_id", "n", *drop}, exclude_none=True)

    async def _authored(self, message_id: str | None, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` with the prompt's author (``EventData.author``), when it belongs to a prompt."""
        author = await self.plane.author_for(message_id)
        if author is not None:
            data["author"] = author
        return data

    async def _store(self, message: BaseModel, data: dict[str, Any] | None = None) -> bool:
        """Store as an event; False when it is a re-sent critical event already stored."""
        message_id = getattr(message, "message_id", None)
        payload = await self._authored(message_id, data if data is not None else self._data(message))
        stored = await self.plane.events.append(
            self.session_id,
            getattr(message, "type", ""),
            payload,
            message_id=message_id,
            ack_id=getattr(message, "ack_id", None),
        )
        return stored is not None

    async def _plain(self, message: BaseModel) -> None:
        await self._store(message)

    async def _boot_event(self, message: GitSync | BootProgress) -> None:
        step = message.stage if isinstance(message, BootProgress) else "git sync"
        detail = message.detail if isinstance(message, BootProgress) and message.detail else ""
        self.plane.lifecycle.boots.progress(self.link.sandbox_id, f"{step}: {detail}" if detail else step)
        if isinstance(message, GitSync) and message.status == "started":
            await self.plane.lifecycle.session_is(self.session_id, SessionStatus.SYNCING)
        if message.status == "running":
            # a step still at it (a script's latest line): one row per step, updated in place
            self.plane.events.append_nowait(
                self.session_id,
                message.type,
                self._data(message),
                key=f"boot:{self.link.sandbox_id}:{step}",
                mode="upsert",
            )
            return
        await self._store(message)

    async def _ready(self, message: Ready) -> None:
        self.plane.lifecycle.boots.forget(self.link.sandbox_id)
        engine, sandbox_id = self.plane.engine, self.link.sandbox_id

        def record() -> tuple[bool, Message | None, Sandbox | None]:  # off the loop, in one go
            ready = sandboxes.mark_ready(engine, sandbox_id, runtime_version=message.runtime_version)
            return ready, prompts.processing(engine, self.session_id), sandboxes.get(engine, sandbox_id)

        ready, running, sandbox = await asyncio.to_thread(record)
        if not ready:  # it was stopped (or failed) meanwhile: it is on its way out, not the session's
            log.info("sandbox %s said ready after it ended; ignored", sandbox_id)
            return
        self.link.ready = True
        # a sandbox says ready on each connection, having ended the streams of the one before
        self.plane.tunnels.ended(self.session_id)
        self.link.previews = tuple(p.port for p in message.previews)
        await self.plane.links.attach(self.link)
        ready_now = SandboxStatusData(
            status="ready",
            boot_mode=message.boot_mode,
            commit=message.commit,
            branch=message.branch,
            previews=[PreviewData(port=p.port, label=p.label) for p in message.previews],
        )
        await self.plane.emit(self.session_id, "sandbox_status", ready_now)
        if (
            running is not None
            and sandbox is not None
            and running.started_at
            and running.started_at < sandbox.created_at
        ):
            # the prompt was sent to a sandbox that no longer exists: it cannot finish
            await self.plane.complete(self.session_id, running.id, success=False, error=RESTART_REASON)
        elif running is not None:
            # the same sandbox reconnected: re-send (it ignores a prompt it already has)
            await self.link.send(prompt_command(running, await self.plane.person(running.author_id)))
        await self.plane.lifecycle.settle(self.session_id, sandbox_up=True)
        await self.plane.dispatch(self.session_id)

    async def _heartbeat(self, _message: Heartbeat) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat_write >= HEARTBEAT_WRITE_S:
            self._last_heartbeat_write = now
            await asyncio.to_thread(sandboxes.heartbeat, self.plane.engine, self.link.sandbox_id)

    async def _token(self, message: Token) -> None:
        # a plain dict (TextData's shape): this runs for every streamed token
        self.plane.events.append_nowait(
            self.session_id,
            "token",
            await self._authored(message.message_id, {"text": message.text}),
            message_id=message.message_id,
            key=f"text:{message.message_id}",
            mode="append_text",
        )

    async def _tool_call(self, message: ToolCall) -> None:
        data = await self._authored(message.message_id, self._data(message))
        self.plane.events.append_nowait(
            self.session_id,
            "tool_call",
            data,
            message_id=message.message_id,
            key=f"tool:{message.call_id}",
            mode="upsert",
        )

    async def _title(self, message: SessionTitle) -> None:
        await asyncio.to_thread(_name_if_untitled, self.plane.engine, self.session_id, message.title)
        await self._store(message)

    async def _error(self, message: SandboxError) -> None:
        await self._store(message)
        if message.code in BOOT_FAILURES:
            await self.plane.lifecycle.fail(self.session_id, self.link.sandbox_id, f"{message.code}: {message.message}")
            self.link.ready = False
            await self.closed()
            await self.plane.after_failure(self.session_id)
        elif message.message_id:
            # the prompt's one end: an error is not an execution_complete, and clients wait for one
            running = await asyncio.to_thread(prompts.processing, self.plane.engine, self.session_id)
            if running is not None and running.id == message.message_id:
                # failed means over: whatever of it may still run in the sandbox is stopped first, so
                # the next prompt never runs beside it (a stop for a prompt that ended is ignored)
                await self.link.send(StopCommand(message_id=running.id))
                await self.plane.fail_prompt(self.session_id, running, message.message or message.code)

    async def _execution_complete(self, message: ExecutionComplete) -> None:
        running = await asyncio.to_thread(prompts.processing, self.plane.engine, self.session_id)
        if running is None or running.id != message.message_id:
            return  # already ended here (timed out, stopped without a sandbox, server restarted)
        await self._store(message)  # a re-sent one is not stored twice; completing is idempotent
        await self.plane.complete(self.session_id, message.message_id, success=message.success, error=message.error)

    async def _push_result(self, message: PushComplete | PushError) -> None:
        await self._store(message)
        outcome = (True, message.commit) if isinstance(message, PushComplete) else (False, message.error)
        self.plane.links.answer(self.session_id, push_reply(message.branch), outcome)

    async def _snapshot_ready(self, message: SnapshotReady) -> None:
        await self._store(message)
        self.plane.links.answer(self.session_id, SNAPSHOT_REPLY, message.commit)


def _name_if_untitled(engine: sa.Engine, session_id: str, title: str) -> None:
    if not sessions_ctl.get(engine, session_id).title:
        sessions_ctl.rename(engine, session_id, title)

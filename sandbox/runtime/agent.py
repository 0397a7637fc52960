"""Prompt policy: runs prompts on OpenCode one at a time and emits protocol messages.

Owns one OpenCode session (reused across restarts and snapshot restores), the event pump that reads
OpenCode's SSE stream, and the FIFO of prompts. A prompt whose message id was already accepted is
ignored, so a control plane that re-sends after its own restart never runs a prompt twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from sandbox.protocol import ExecutionComplete, PromptCommand
from sandbox.runtime.gitops import Git, GitError
from sandbox.runtime.opencode import OpenCodeClient, OpenCodeError, message_id
from sandbox.runtime.translate import PromptTranslator

log = logging.getLogger(__name__)

FLUSH_TICK_S = 0.02
STOP_GRACE_S = 5.0
EVENT_RETRY_S = 0.5
SEEN_LIMIT = 500


class AgentRunner:
    def __init__(
        self,
        *,
        client: OpenCodeClient,
        git: Git,
        emit: Callable[[BaseModel], None],
        state_dir: Path,
        default_model: str,
    ) -> None:
        self._client = client
        self._git = git
        self._emit = emit
        self._session_file = state_dir / "agent-session"
        # while it exists, the sync-gate plugin refuses file writes and writing commands (a plan prompt)
        self._plan_marker = state_dir / "plan-mode"
        self._plan_marker.unlink(missing_ok=True)  # a snapshot may carry one from a prompt it cut off
        self._default_model = default_model
        self.agent_session_id = ""
        self._queue: deque[PromptCommand] = deque()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._wakeup = asyncio.Event()
        self._translator: PromptTranslator | None = None
        self._done = asyncio.Event()
        self._stream_connected = asyncio.Event()
        # Set while OpenCode is up and healthy: connecting to a server that is still booting can hang.
        self.available = asyncio.Event()
        self._pending_tasks: set[asyncio.Task[None]] = set()

    @property
    def busy(self) -> bool:
        return self._translator is not None and not self._translator.complete

    @property
    def current_message_id(self) -> str | None:
        return self._translator.message_id if self.busy and self._translator else None

    async def open_session(self) -> str:
        """Reuse the OpenCode session kept in the state dir (snapshots carry it), else create one."""
        saved = self._session_file.read_text().strip() if self._session_file.exists() else ""
        if saved and await self._client.session_exists(saved):
            self.agent_session_id = saved
        else:
            self.agent_session_id = await self._client.create_session()
            self._session_file.write_text(self.agent_session_id)
        return self.agent_session_id

    def submit(self, command: PromptCommand) -> bool:
        """Queue a prompt; False when this message id was already accepted."""
        if command.message_id in self._seen:
            log.info("ignoring re-sent prompt %s", command.message_id)
            return False
        self._seen[command.message_id] = None
        while len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)
        self._queue.append(command)
        self._wakeup.set()
        return True

    async def stop(self, message_id: str | None = None) -> None:
        """Abort the running prompt (if it matches ``message_id`` when one is given)."""
        translator = self._translator
        if translator is None or translator.complete:
            return
        if message_id and translator.message_id != message_id:
            return
        translator.stop_requested = True
        try:
            await self._client.abort(self.agent_session_id)
        except OpenCodeError as exc:
            log.warning("abort failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._done.wait(), STOP_GRACE_S)
        if not translator.complete:  # OpenCode did not go idle: end the prompt ourselves
            self._emit_all(translator.finish("aborted"))
            self._done.set()

    def fail_current(self, reason: str) -> None:
        """End the running prompt as failed (e.g. the agent process died)."""
        translator = self._translator
        if translator is not None and not translator.complete:
            self._emit_all(translator.finish(reason))
            self._done.set()

    async def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while (self.busy or self._queue) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return not (self.busy or self._queue)

    # --- loops (run by the supervisor's TaskGroup) ---------------------------------------------
    async def run_prompts(self) -> None:
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            await self._run_one(self._queue.popleft())

    async def pump_events(self) -> None:
        """Read OpenCode's event stream forever, reconnecting when it drops."""
        while True:
            await self.available.wait()
            try:
                async for event in self._client.events():
                    self._stream_connected.set()
                    self._on_event(event)
            except (OpenCodeError, OSError) as exc:
                log.warning("event stream dropped: %s", exc)
            except Exception as exc:  # noqa: BLE001 - httpx stream errors vary; keep pumping
                log.warning("event stream error: %s: %s", exc.__class__.__name__, exc)
            self._stream_connected.clear()
            await asyncio.sleep(EVENT_RETRY_S)

    async def flush_ticker(self) -> None:
        """Emit coalesced text that has waited long enough."""
        while True:
            await asyncio.sleep(FLUSH_TICK_S)
            translator = self._translator
            if translator is not None and not translator.complete and translator.due(time.monotonic()):
                self._emit_all(translator.flush())

    # --- internals -----------------------------------------------------------------------------
    def _on_event(self, event: dict) -> None:
        if event.get("type") == "permission.asked":
            # A safety net: config allows everything, but a question nobody answers would hang the prompt.
            request_id = str((event.get("properties") or {}).get("id", ""))
            if request_id:
                self._background(self._allow(request_id))
        translator = self._translator
        if translator is None or translator.complete:
            return
        self._emit_all(translator.feed(event, time.monotonic()))
        if translator.complete:
            self._done.set()

    async def _allow(self, request_id: str) -> None:
        try:
            await self._client.reply_permission(request_id, "once")
        except OpenCodeError as exc:
            log.warning("could not answer permission request %s: %s", request_id, exc)

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._pending_tasks.add(task)
        task.add_done_callback(self._pending_tasks.discard)

    async def close(self) -> None:
        for task in list(self._pending_tasks):
            task.cancel()
        await asyncio.gather(*self._pending_tasks, return_exceptions=True)

    def _emit_all(self, messages: list[BaseModel]) -> None:
        for message in messages:
            self._emit(message)

    async def _run_one(self, command: PromptCommand) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stream_connected.wait(), 10)
        try:
            await self._git.set_author(command.author.name, command.author.email)
        except GitError as exc:
            # the prompt fails instead of running: its commits would carry someone else's name
            reason = f"could not set the commit author, so the prompt did not run: {exc}"
            self._emit(ExecutionComplete(message_id=command.message_id, success=False, error=reason))
            return
        user_message_id = message_id()
        translator = PromptTranslator(
            message_id=command.message_id, agent_session_id=self.agent_session_id, user_message_id=user_message_id
        )
        self._done.clear()
        self._translator = translator
        planning = command.mode == "plan"
        if planning:
            self._plan_marker.touch()  # before the agent can call a tool
        try:
            await self._client.prompt_async(
                self.agent_session_id,
                command.content,
                message_id=user_message_id,
                model=command.model or self._default_model,
                agent="plan" if planning else None,
            )
        except OpenCodeError as exc:
            translator.complete = True
            self._plan_marker.unlink(missing_ok=True)
            self._emit(ExecutionComplete(message_id=command.message_id, success=False, error=f"agent refused: {exc}"))
            return
        try:
            await self._done.wait()
        finally:
            self._plan_marker.unlink(missing_ok=True)

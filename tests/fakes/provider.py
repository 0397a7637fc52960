"""A sandbox provider whose sandboxes live in the test's own event loop, for fast tests of the control
plane's core (spawn, ready, prompts, a sandbox lost, the breaker) with no process and no socket.

Each sandbox speaks the bridge protocol as typed messages straight into a ``SandboxConnection`` (what
``/api/sandbox/ws`` hands every real sandbox's messages to), and answers each prompt it is sent with a
few tokens and its ``execution_complete``. A test can kill one (its process "exits", its connection
closes, as a killed supervisor's would), hold its answers, or make spawns fail.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from inspect_app.control.links import SandboxLink
from inspect_app.control.plane import ControlPlane
from inspect_app.control.sandbox_link import SandboxConnection
from sandbox.protocol import (
    ExecutionComplete,
    PromptCommand,
    PushCommand,
    PushComplete,
    PushError,
    Ready,
    StepFinish,
    StopCommand,
    Token,
    parse_from_control,
)
from sandbox.providers.base import (
    Capabilities,
    ProviderError,
    SandboxHandle,
    SandboxProvider,
    SandboxSpec,
    SandboxState,
)


@dataclass
class FakeSandbox:
    spec: SandboxSpec
    connection: SandboxConnection | None = None
    exited: bool = False
    prompts: list[str] = field(default_factory=list)  # the prompt ids it was sent
    commands: list[PromptCommand] = field(default_factory=list)  # and the prompts themselves
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    n: itertools.count = field(default_factory=lambda: itertools.count(1))  # its bridge numbering
    said: list[Any] = field(default_factory=list)  # its numbered messages, to re-send after a reconnect


class FakeProvider(SandboxProvider):
    name = "fake"
    capabilities = Capabilities(snapshots=False, tunnels=False)

    def __init__(self) -> None:
        self.plane: ControlPlane | None = None  # set once the services are built
        self.sandboxes: dict[str, FakeSandbox] = {}  # by sandbox id, every one ever spawned
        self.failing_spawns = 0  # the next spawns that fail
        self.hold = asyncio.Event()  # cleared: prompts wait before they answer
        self.hold.set()
        self.errors: list[BaseException] = []  # what raised in a sandbox's work (the plane's handlers)
        self.failing_prompts = False  # set: the agent fails every prompt (its answer ends unsuccessful)
        self.refused_branches: set[str] = set()  # pushes to these fail, as to a protected branch
        self.answer = ("Done ", "as ", "asked.")  # what the agent says to every prompt, token by token
        self.steps: list[dict[str, Any]] = []  # each prompt's model steps: their token counts, as OpenCode sends them

    # --- what tests use ----------------------------------------------------------------------
    def live(self, session_id: str) -> FakeSandbox | None:
        return next((s for s in self.sandboxes.values() if s.spec.session_id == session_id and not s.exited), None)

    def sent(self, session_id: str) -> list[str]:
        """The prompt ids the session's live sandbox was sent (none while there is none)."""
        sandbox = self.live(session_id)
        return sandbox.prompts if sandbox is not None else []

    async def kill(self, session_id: str) -> None:
        """The sandbox's process dies: its connection closes, as a killed supervisor's does."""
        sandbox = self.live(session_id)
        assert sandbox is not None, "no live sandbox to kill"
        sandbox.exited = True
        for task in sandbox.tasks:
            task.cancel()
        if sandbox.connection is not None:
            await sandbox.connection.closed()

    # --- the provider ------------------------------------------------------------------------
    async def spawn(self, spec: SandboxSpec) -> SandboxHandle:
        if self.failing_spawns > 0:
            self.failing_spawns -= 1
            raise ProviderError("the fake sandbox would not start")
        sandbox = FakeSandbox(spec)
        self.sandboxes[spec.sandbox_id] = sandbox
        self._run(sandbox, self._boot(sandbox))
        return SandboxHandle(self.name, spec.sandbox_id, spec.session_id, provider_id=spec.sandbox_id)

    async def restore(self, snapshot_ref: str, spec: SandboxSpec) -> SandboxHandle:
        return await self.spawn(spec)

    async def snapshot(self, handle: SandboxHandle) -> str:
        raise ProviderError("no snapshots here")

    async def stop(self, handle: SandboxHandle) -> None:
        sandbox = self.sandboxes.get(handle.sandbox_id)
        if sandbox is not None and not sandbox.exited:
            sandbox.exited = True
            for task in sandbox.tasks:
                task.cancel()

    async def status(self, handle: SandboxHandle) -> SandboxState:
        sandbox = self.sandboxes.get(handle.sandbox_id)
        return "unknown" if sandbox is None else "exited" if sandbox.exited else "running"

    async def close(self, *, keep_running: bool = False) -> None:
        for sandbox in self.sandboxes.values():
            for task in sandbox.tasks:
                task.cancel()

    # --- one sandbox ---------------------------------------------------------------------------
    def _run(self, sandbox: FakeSandbox, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        sandbox.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        for sandbox in self.sandboxes.values():
            sandbox.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(task.exception())  # type: ignore[arg-type]

    async def _boot(self, sandbox: FakeSandbox) -> None:
        assert self.plane is not None
        await asyncio.sleep(0)  # connected after spawn returned, as a real one is
        await self._connect(sandbox, self.plane)

    async def reconnect(self, session_id: str, plane: ControlPlane) -> None:
        """The live sandbox's connection drops and it connects again, to ``plane``: another replica's,
        as a sandbox connecting through a load balancer may."""
        sandbox = self.live(session_id)
        assert sandbox is not None and sandbox.connection is not None, "no live sandbox to reconnect"
        await sandbox.connection.closed()
        await self._connect(sandbox, plane)

    async def _connect(self, sandbox: FakeSandbox, plane: ControlPlane) -> None:
        async def receive(text: str) -> None:
            command = parse_from_control(text)
            if isinstance(command, PromptCommand):
                if command.message_id in sandbox.prompts:
                    return  # sent again after a reconnect: ignored, as the runtime ignores a prompt it has
                sandbox.prompts.append(command.message_id)
                sandbox.commands.append(command)
                self._run(sandbox, self._answer(sandbox, command.message_id))
            elif isinstance(command, StopCommand) and command.message_id:
                self._run(sandbox, self._say(sandbox, ExecutionComplete(message_id=command.message_id, success=False)))
            elif isinstance(command, PushCommand) and command.branch in self.refused_branches:
                refused = PushError(
                    branch=command.branch, error="protected branch hook declined", ack_id=f"push-{command.branch}"
                )
                self._run(sandbox, self._say(sandbox, refused))
            elif isinstance(command, PushCommand):  # pushed at once: the commit is the branch's name, reversed
                pushed = PushComplete(
                    branch=command.branch, commit=command.branch[::-1], ack_id=f"push-{command.branch}"
                )
                self._run(sandbox, self._say(sandbox, pushed))

        link = SandboxLink(session_id=sandbox.spec.session_id, sandbox_id=sandbox.spec.sandbox_id, send_text=receive)
        connection = SandboxConnection(plane, link)
        received = await connection.open()  # the handshake: what of its events the plane has
        sandbox.connection = connection
        await plane.links.attach(link)
        await connection.handle(Ready(sandbox_id=sandbox.spec.sandbox_id, runtime_version="0.1.0"))
        if received is not None:  # as the runtime's bridge does: the rest again, in order
            for message in [m for m in sandbox.said if m.n > received]:
                await connection.handle(message)

    async def _answer(self, sandbox: FakeSandbox, message_id: str) -> None:
        await self.hold.wait()
        for word in self.answer:
            await self._say(sandbox, Token(message_id=message_id, text=word))
        for tokens in self.steps:
            await self._say(sandbox, StepFinish(message_id=message_id, tokens=tokens))
        if self.failing_prompts:
            failed = ExecutionComplete(
                message_id=message_id, success=False, error="the agent gave up", ack_id=f"ack-{message_id}"
            )
            await self._say(sandbox, failed)
            return
        await self._say(sandbox, ExecutionComplete(message_id=message_id, success=True, ack_id=f"ack-{message_id}"))

    async def _say(self, sandbox: FakeSandbox, message: Any) -> None:
        if not sandbox.exited and sandbox.connection is not None:
            numbered = message.model_copy(update={"n": next(sandbox.n)})
            sandbox.said.append(numbered)
            await sandbox.connection.handle(numbered)

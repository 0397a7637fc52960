"""``python -m sandbox.runtime.supervisor``: boots a sandbox and keeps it running.

Runs INSIDE the sandbox and imports nothing from ``inspect_app``. The composition root of the
runtime: it builds the bridge, the OpenCode client and the agent runner, then

1. connects the bridge (boot progress streams while booting);
2. syncs git by boot mode: fresh clones, image fetches and resets, snapshot_restore keeps it;
3. runs ``.inspect/setup.sh`` (fresh boots; failure is a warning) and ``.inspect/start.sh``
   (every boot; failure is fatal: an ``error`` and no ``ready``);
4. starts ``opencode serve`` on a free loopback port, waits for its health, opens the agent session;
5. sends ``ready`` and serves commands until told to shut down, refused, or orphaned.

A ``standby`` sandbox (the local provider's warm pool) runs steps 3-4 on an image's checkout for
no session yet, then waits for the provider's claim on its claim pipe (who it is now: sandbox
id, tokens, bridge URL, work branch); it then syncs git to the branch tip, connects and says
``ready`` as an ``image`` boot — what is left of a boot once OpenCode is already warm.

A crashed OpenCode is restarted with bounded backoff; too many crashes end the sandbox with an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from sandbox.protocol import (
    OUTBOX_BUNDLE,
    RELAY_DIR,
    RELAY_PORTS,
    BootProgress,
    ControlError,
    ControlMessage,
    GitSync,
    Heartbeat,
    ParkCommand,
    PromptCommand,
    PushCommand,
    PushComplete,
    PushError,
    Ready,
    SandboxError,
    ShutdownCommand,
    SnapshotCommand,
    SnapshotReady,
    StopCommand,
    TerminalClose,
    TerminalInput,
    TerminalOpen,
    TerminalResize,
    TunnelClose,
    TunnelData,
    TunnelOpen,
    Warning,
)
from sandbox.runtime import environment, relays
from sandbox.runtime.agent import AgentRunner
from sandbox.runtime.agent_config import prepare_agent
from sandbox.runtime.bridge import Bridge, BridgeRefused
from sandbox.runtime.config import RUNTIME_VERSION, RuntimeConfig, RuntimeConfigError
from sandbox.runtime.environment import CLAIM_FD_VARIABLE
from sandbox.runtime.gitops import Git, GitError, credential_helper_env, local_path, tail, write_tool_token
from sandbox.runtime.opencode import OpenCodeClient, OpenCodeError
from sandbox.runtime.terminals import Terminals
from sandbox.runtime.tunnels import Tunnels, declared_previews

log = logging.getLogger("sandbox.supervisor")

PROGRESS_EVERY_S = 0.5  # how often a boot script's new output is reported
TICK_S = 1.0  # how often a step without output (git sync, OpenCode's start) says it is still at it


def last_line(path: Path, *, limit: int = 300) -> str:
    """The last non-empty line of a (possibly large, still growing) log file, cut to ``limit``."""
    with path.open("rb") as log_file:
        log_file.seek(max(0, path.stat().st_size - 4096))
        lines = [line.strip() for line in log_file.read().decode(errors="replace").splitlines() if line.strip()]
    return lines[-1][-limit:] if lines else ""


AGENT_HEALTH_TIMEOUT_S = 90.0
# OpenCode accepts connections a few hundred ms before it serves them, and a request that arrives in
# that gap is never answered: probe with short timeouts that grow (a loaded machine answers slowly).
HEALTH_PROBE_TIMEOUTS_S = (0.2, 0.3, 0.5, 0.8, 1.2, 2.0)
RESTART_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0)
RESTART_WINDOW_S = 300.0
# Variables of the runtime that OpenCode (and so the agent's shell) must not see.
PRIVATE_PREFIXES = ("SANDBOX_",)


class BootFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def all_or_nothing(*steps: Awaitable[None]) -> None:
    """Run boot steps side by side; when one fails, the others are cancelled (a half-started OpenCode
    is then stopped with the rest), and the failure is raised."""
    tasks = [asyncio.ensure_future(step) for step in steps]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Supervisor:
    def __init__(
        self, config: RuntimeConfig, *, environ: Mapping[str, str] | None = None, claims: asyncio.StreamReader
    ) -> None:
        self.config = config
        self._claims = claims  # who this sandbox is next (a pooled or parked one), from its provider
        self.started = time.monotonic()
        source = os.environ if environ is None else environ
        base_env = {k: v for k, v in source.items() if not k.startswith(PRIVATE_PREFIXES)}
        base_env.update(credential_helper_env(sys.executable, config.tool_token_file))
        self.git = Git(
            config.workspace,
            env={
                **base_env,
                "GIT_COMMITTER_NAME": config.committer_name,
                "GIT_COMMITTER_EMAIL": config.committer_email,
            },
        )
        self._agent_env = base_env
        self._password = secrets.token_urlsafe(24)
        self._port = free_port()
        self.client = OpenCodeClient(base_url=f"http://127.0.0.1:{self._port}", password=self._password)
        self._identified = asyncio.Event()  # the bridge knows where to connect, and as whom
        if config.boot_mode != "standby":
            self._identified.set()
        self.bridge = self._new_bridge()
        self._bridge_task: asyncio.Task[None] | None = None
        self.agent = AgentRunner(
            client=self.client,
            git=self.git,
            emit=self._emit,
            state_dir=config.state_dir,
            default_model=config.model,
        )
        self._ready: Ready | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._shutdown = asyncio.Event()
        self._exit_code = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._handlers: dict[type, Callable[[Any], Awaitable[None]]] = {
            PromptCommand: self._on_prompt,
            StopCommand: self._on_stop,
            PushCommand: self._on_push,
            SnapshotCommand: self._on_snapshot,
            ShutdownCommand: self._on_shutdown,
            ParkCommand: self._on_park,
            ControlError: self._on_control_error,
            TerminalOpen: self._on_terminal,
            TerminalInput: self._on_terminal,
            TerminalResize: self._on_terminal,
            TerminalClose: self._on_terminal,
            TunnelOpen: self._on_tunnel,
            TunnelData: self._on_tunnel,
            TunnelClose: self._on_tunnel,
        }
        self.terminals = Terminals(send=self._emit, cwd=config.workspace, env=self._agent_env)
        self.tunnels = Tunnels(
            send=self._emit,
            reserved=lambda: {self._port, *RELAY_PORTS.values()},
            backlog=lambda: self.bridge.backlog,
        )

    def _new_bridge(self) -> Bridge:
        return Bridge(
            url=self.config.bridge_url,
            token=self.config.token,
            sandbox_id=self.config.sandbox_id,
            on_command=self.handle,
            ready=self.ready_message,
            status=self.status,
            heartbeat_s=self.config.heartbeat_s,
        )

    # --- bridge callbacks ----------------------------------------------------------------------
    def _emit(self, message: Any) -> None:
        self.bridge.send(message)

    async def ready_message(self) -> Ready | None:
        # asked at each (re)connection: a preview's streams belonged to the connection that ended
        # (the control plane forgot them with it)
        self.tunnels.close_all()
        return self._ready

    def status(self) -> Heartbeat:
        return Heartbeat(busy=self.agent.busy, message_id=self.agent.current_message_id)

    async def handle(self, command: ControlMessage) -> None:
        await self._handlers[type(command)](command)

    async def _on_prompt(self, command: PromptCommand) -> None:
        if self._ready is None:
            self.bridge.send(
                SandboxError(code="not_ready", message="the sandbox is still booting", message_id=command.message_id)
            )
            return
        self.agent.submit(command)

    async def _on_stop(self, command: StopCommand) -> None:
        self._spawn(self.agent.stop(command.message_id))

    async def _on_push(self, command: PushCommand) -> None:
        async def push() -> None:
            try:
                if command.remote == "origin" and local_path(self.config.repo_url) is not None:
                    commit = await self.git.bundle(self.config.root / OUTBOX_BUNDLE)
                else:
                    commit = await self.git.push(command.remote, command.branch, force=command.force)
                self.bridge.send(PushComplete(branch=command.branch, commit=commit))
            except GitError as exc:
                self.bridge.send(PushError(branch=command.branch, error=str(exc)))

        self._spawn(push())

    async def _on_snapshot(self, _command: SnapshotCommand) -> None:
        async def prepare() -> None:
            await self.agent.wait_idle(120)
            commit = ""
            with contextlib.suppress(GitError):
                commit = await self.git.head()
            self.bridge.send(SnapshotReady(commit=commit))

        self._spawn(prepare())

    async def _on_shutdown(self, _command: ShutdownCommand) -> None:
        self.terminals.close_all()
        self.tunnels.close_all()
        self._shutdown.set()

    async def _on_terminal(self, command: TerminalOpen | TerminalInput | TerminalResize | TerminalClose) -> None:
        match command:
            case TerminalOpen():
                await self.terminals.open(command)
            case TerminalInput():
                self.terminals.input(command)
            case TerminalResize():
                self.terminals.resize(command)
            case TerminalClose():
                self.terminals.close(command)

    async def _on_tunnel(self, command: TunnelOpen | TunnelData | TunnelClose) -> None:
        match command:
            case TunnelOpen():
                await self.tunnels.open(command)
            case TunnelData():
                self.tunnels.data(command)
            case TunnelClose():
                self.tunnels.close(command)

    async def _on_park(self, _command: ParkCommand) -> None:
        self.terminals.close_all()  # a parked sandbox is nobody's until claimed again
        self.tunnels.close_all()
        self._spawn(self._park())

    async def _park(self) -> None:
        """Leave the session's bridge (a fresh one, unidentified, takes its place: nothing of this
        sandbox's stream reaches the next) and wait, OpenCode warm, to be claimed again."""
        try:
            await self.agent.wait_idle(120)
            self._ready = None
            self._identified.clear()
            old_bridge, old_task = self.bridge, self._bridge_task
            self.bridge = self._new_bridge()
            self._bridge_task = asyncio.create_task(self._run_bridge())
            if old_task is not None:
                old_task.cancel()
                await asyncio.gather(old_task, return_exceptions=True)
            await old_bridge.close()
            log.info("parked; waiting to be claimed")
            await self._await_claim("parked", boot_mode="snapshot_restore")
            self._ready = await self._build_ready("snapshot_restore")
        except Exception:  # nobody can be told any more: end, and the provider sees the exit
            log.exception("parking failed; shutting down")
            self._exit_code = 1
            self._shutdown.set()
            return
        self._identify()

    async def _on_control_error(self, command: ControlError) -> None:
        log.warning("control plane reported: %s: %s", command.code, command.message)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    # --- boot ----------------------------------------------------------------------------------
    def _elapsed_ms(self, since: float) -> int:
        return int((time.monotonic() - since) * 1000)

    async def sync_git(self) -> None:
        since = time.monotonic()
        mode = self.config.boot_mode
        self.bridge.send(GitSync(status="started", detail=mode))
        ticking = self._ticking(lambda ms: GitSync(status="running", detail=mode, elapsed_ms=ms))
        try:
            await self.git.trust_local_origin(self.config.repo_url)
            if mode == "fresh":
                if self.config.workspace.exists():
                    shutil.rmtree(self.config.workspace)
                await self.git.clone(self.config.repo_url, self.config.branch)
                if self.config.fork_ref:
                    await self.git.checkout_fork(self.config.fork_ref, self.config.work_branch)
            elif mode == "image":
                await self.git.fetch_reset(self.config.branch)
            if self.config.work_branch:
                await self.git.checkout_work_branch(self.config.work_branch)
        except GitError as exc:
            self.bridge.send(GitSync(status="failed", detail=str(exc), elapsed_ms=self._elapsed_ms(since)))
            raise BootFailed("git_sync_failed", str(exc)) from None
        finally:
            ticking.cancel()
        (self.config.state_dir / "sync-done").touch()
        self.bridge.send(GitSync(status="done", detail=mode, elapsed_ms=self._elapsed_ms(since)))

    async def run_script(self, name: str, *, stage: str, timeout: float, fatal: bool) -> None:
        script = self.config.workspace / ".inspect" / name
        if not script.exists():
            self.bridge.send(BootProgress(stage=stage, status="skipped"))  # type: ignore[arg-type]
            return
        since = time.monotonic()
        self.bridge.send(BootProgress(stage=stage, status="started"))  # type: ignore[arg-type]
        log_path = self.config.state_dir / f"{stage}.log"
        # Output goes to a file: a start.sh that leaves a server running keeps a pipe open forever.
        with log_path.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                "bash",
                str(script),
                cwd=self.config.workspace,
                env=self._agent_env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
            code = await self._follow(process, log_path, stage=stage, since=since, timeout=timeout)
        output = tail(log_path.read_text(errors="replace"))
        if code == 0:
            self.bridge.send(BootProgress(stage=stage, status="done", elapsed_ms=self._elapsed_ms(since)))  # type: ignore[arg-type]
            return
        self.bridge.send(BootProgress(stage=stage, status="failed", elapsed_ms=self._elapsed_ms(since)))  # type: ignore[arg-type]
        reason = "timed out" if code == 124 else f"exited with {code}"
        if fatal:
            raise BootFailed(f"{stage}_failed", f".inspect/{name} {reason}:\n{output}")
        self.bridge.send(Warning(message=f".inspect/{name} {reason}", detail=output))

    def _ticking(self, report: Callable[[int], BaseModel]) -> asyncio.Task[None]:
        """Report that a step without output of its own is still at it (within its own time limit),
        every ``TICK_S``, until the returned task is cancelled: the boot watchdog counts it as progress."""
        since = time.monotonic()

        async def tick() -> None:
            while True:
                await asyncio.sleep(TICK_S)
                self.bridge.send(report(self._elapsed_ms(since)))

        return asyncio.create_task(tick())

    async def _follow(
        self, process: asyncio.subprocess.Process, log_path: Path, *, stage: str, since: float, timeout: float
    ) -> int:
        """Wait for a boot script, reporting each new last line of its output (at most every
        ``PROGRESS_EVERY_S``): the control plane's boot watchdog counts that as progress, and people
        watching the session see it. A script that prints nothing reports nothing."""
        deadline = since + timeout
        size = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                process.kill()
                await process.wait()
                return 124
            try:
                return await asyncio.wait_for(process.wait(), min(PROGRESS_EVERY_S, left))
            except TimeoutError:
                pass
            grown = log_path.stat().st_size  # noqa: ASYNC240 - one stat (and 4 KiB read) every half second
            if grown != size:
                size = grown
                line = last_line(log_path)
                self.bridge.send(
                    BootProgress(stage=stage, status="running", detail=line, elapsed_ms=self._elapsed_ms(since))  # type: ignore[arg-type]
                )

    def _prepare_agent_config(self) -> dict[str, str]:
        return prepare_agent(
            self.config,
            base_env=self._agent_env,
            password=self._password,
            marker=self.config.state_dir / "sync-done",
        )

    async def start_agent(self) -> None:
        since = time.monotonic()
        self.bridge.send(BootProgress(stage="agent", status="started"))
        env = self._prepare_agent_config()
        log_file = (self.config.state_dir / "opencode.log").open("ab")
        try:
            self._process = await asyncio.create_subprocess_exec(
                self.config.opencode_bin,
                "serve",
                "--port",
                str(self._port),
                "--hostname",
                "127.0.0.1",
                cwd=self.config.workspace,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
            )
        except OSError as exc:
            raise BootFailed("agent_failed", f"cannot start OpenCode ({self.config.opencode_bin}): {exc}") from None
        finally:
            log_file.close()
        ticking = self._ticking(
            lambda ms: BootProgress(stage="agent", status="running", detail="starting OpenCode", elapsed_ms=ms)
        )
        try:
            await self._wait_healthy()
            healthy_ms = self._elapsed_ms(since)
            await self.agent.open_session()
            await self.client.warm()
            # Before ``ready``, not after: a prompt sent at once would wait for this boot all the
            # same (measured: 0.54 s to the model when both start together, 0.18 s after it)
            await self.client.warm_workspace()
        except OpenCodeError as exc:
            raise BootFailed("agent_failed", str(exc)) from None
        finally:
            ticking.cancel()
        log.info("OpenCode healthy after %d ms, session open and warm after %d ms", healthy_ms, self._elapsed_ms(since))
        self.agent.available.set()
        self.bridge.send(BootProgress(stage="agent", status="done", elapsed_ms=self._elapsed_ms(since)))

    async def _wait_healthy(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + AGENT_HEALTH_TIMEOUT_S
        step = 0
        while True:
            timeout = HEALTH_PROBE_TIMEOUTS_S[step]
            probed = time.monotonic()
            if await self.client.healthy(timeout=timeout):
                return
            if time.monotonic() - probed >= timeout * 0.9:  # unanswered, not refused: wait longer next time
                step = min(step + 1, len(HEALTH_PROBE_TIMEOUTS_S) - 1)
            if self._process.returncode is not None or time.monotonic() > deadline:
                reason = "exited" if self._process.returncode is not None else "did not become healthy"
                log_tail = tail((self.config.state_dir / "opencode.log").read_text(errors="replace"))
                raise BootFailed("agent_failed", f"OpenCode {reason}:\n{log_tail}")
            await asyncio.sleep(0.05)

    async def _sync_and_start(self, *, setup: bool) -> None:
        await self.sync_git()
        if setup:
            await self.run_script("setup.sh", stage="setup", timeout=self.config.setup_timeout_s, fatal=False)
        else:
            self.bridge.send(BootProgress(stage="setup", status="skipped"))
        await self._start_script()

    async def _start_script(self) -> None:
        await self.run_script("start.sh", stage="start", timeout=self.config.start_timeout_s, fatal=True)

    def _write_tool_token(self) -> None:
        write_tool_token(self.config.tool_token_file, self.config.tool_token)

    async def _await_claim(self, marker: str, *, boot_mode: str) -> None:
        """Wait (``state/<marker>`` says so) until the provider hands this sandbox to a session, then
        take on the identity its claim gives. Claims come down a pipe the provider keeps
        (``SANDBOX_CLAIM_FD``), one JSON line each: never a file, which the agent could read."""
        waiting = self.config.state_dir / marker
        waiting.touch()
        try:
            line = await self._claims.readline()
            if not line:
                raise BootFailed("claim_failed", "the provider closed the claim channel")
            claim = json.loads(line)
            self.config = self.config.claimed(claim if isinstance(claim, dict) else {}, boot_mode=boot_mode)
        except (ValueError, RuntimeConfigError) as exc:
            raise BootFailed("claim_failed", f"unusable claim: {exc}") from None
        finally:
            waiting.unlink(missing_ok=True)
        self._write_tool_token()
        log.info("claimed for session %s as sandbox %s", self.config.session_id, self.config.sandbox_id)

    def _identify(self) -> None:
        self.bridge.identify(url=self.config.bridge_url, token=self.config.token, sandbox_id=self.config.sandbox_id)
        self._identified.set()

    async def boot(self) -> None:
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        (self.config.state_dir / "sync-done").unlink(missing_ok=True)  # a snapshot may carry an old one
        self._write_tool_token()
        mode = self.config.boot_mode
        if mode == "standby":
            # No sync yet (a private repository needs the session's tool token): the claim syncs.
            self.bridge.send(BootProgress(stage="setup", status="skipped"))
            await all_or_nothing(self._start_script(), self.start_agent())
            await self._await_claim("standby-ready", boot_mode="image")
            self._identify()
            if self._process is None or self._process.returncode is not None:  # died while waiting
                await self.start_agent()
            await self.sync_git()
            mode = self.config.boot_mode
        elif mode in ("image", "snapshot_restore"):
            # The checkout exists already: boot OpenCode while git syncs and start.sh runs. The
            # sync-gate plugin holds the agent's file changes until the sync is done.
            await all_or_nothing(self._sync_and_start(setup=False), self.start_agent())
        elif mode == "fresh":
            await self._sync_and_start(setup=True)
            await self.start_agent()
        else:  # image builds run ``sandbox.runtime.build``, not the supervisor
            raise BootFailed("bad_boot_mode", f"the supervisor does not boot {mode!r} sandboxes")
        self._ready = await self._build_ready(mode)

    async def _build_ready(self, mode: str) -> Ready:
        previews, problems = declared_previews(self.config.workspace)
        for problem in problems:
            self.bridge.send(Warning(message="A preview port was not understood", detail=problem))
        self.tunnels.allow({p.port for p in previews})
        return Ready(
            previews=previews,
            runtime_version=RUNTIME_VERSION,
            sandbox_id=self.config.sandbox_id,
            boot_mode=mode,
            branch=await self.git.branch(),
            commit=await self.git.head(),
            agent_session_id=self.agent.agent_session_id,
        )

    # --- running -------------------------------------------------------------------------------
    async def _watch_agent(self) -> None:
        restarts: list[float] = []
        while not self._shutdown.is_set():
            assert self._process is not None
            code = await self._process.wait()
            self.agent.available.clear()
            if self._shutdown.is_set():
                return
            self.agent.fail_current(f"the agent process exited with code {code}")
            now = time.monotonic()
            restarts = [t for t in restarts if now - t < RESTART_WINDOW_S]
            if len(restarts) >= len(RESTART_BACKOFF_S):
                self.bridge.send(
                    SandboxError(code="agent_crashed", message=f"OpenCode crashed {len(restarts) + 1} times; giving up")
                )
                self._exit_code = 1
                self._shutdown.set()
                return
            delay = RESTART_BACKOFF_S[len(restarts)]
            restarts.append(now)
            self.bridge.send(Warning(message=f"OpenCode exited with code {code}; restarting in {delay:.0f}s"))
            await asyncio.sleep(delay)
            try:
                await self.start_agent()
            except BootFailed as exc:
                self.bridge.send(Warning(message="OpenCode restart failed", detail=exc.message))

    async def _watch_parent(self) -> None:
        parent = os.getppid()
        while os.getppid() == parent:
            await asyncio.sleep(1.0)
        log.warning("parent process went away; shutting down")
        self._shutdown.set()

    async def _run_bridge(self) -> None:
        await self._identified.wait()
        try:
            await self.bridge.run()
        except BridgeRefused as exc:
            log.error("%s; shutting down", exc)
            self._exit_code = 3
            self._shutdown.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._shutdown.set)
        carriers = await relays.start(Path(RELAY_DIR))  # on a network of its own: the way out
        self._bridge_task = asyncio.create_task(self._run_bridge())
        background = [asyncio.create_task(self._watch_parent())]
        try:
            boot = asyncio.create_task(self.boot())
            stop = asyncio.create_task(self._shutdown.wait())
            await asyncio.wait({boot, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not boot.done():
                boot.cancel()
                return self._exit_code
            stop.cancel()
            try:
                boot.result()
            except BootFailed as exc:
                log.error("boot failed: %s", exc.message)
                self.bridge.send(SandboxError(code=exc.code, message=exc.message))
                if self._identified.is_set():  # a standby that failed has nobody to tell
                    await self._drain(30)
                return 1
            background += [
                asyncio.create_task(self.agent.run_prompts()),
                asyncio.create_task(self.agent.pump_events()),
                asyncio.create_task(self.agent.flush_ticker()),
                asyncio.create_task(self._watch_agent()),
            ]
            await self.bridge.announce_ready()
            await self._shutdown.wait()
            await self._drain(5)
            return self._exit_code
        finally:
            for task in [*background, *self._tasks, self._bridge_task]:
                task.cancel()
            await asyncio.gather(*background, *self._tasks, self._bridge_task, return_exceptions=True)
            await self.agent.close()
            await self._stop_agent()
            await self.bridge.close()
            await self.client.close()
            for carrier in carriers:
                carrier.close()

    async def _drain(self, timeout: float) -> None:
        """Give unacknowledged critical messages a chance to reach the control plane."""
        deadline = time.monotonic() + timeout
        while self.bridge.unacknowledged and time.monotonic() < deadline:
            await asyncio.sleep(0.1)

    async def _stop_agent(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        environment.make_undumpable()  # before anything secret is in memory
        env = environment.load()
        config = RuntimeConfig.from_env(env)
    except (RuntimeConfigError, environment.PrivateEnvironmentError) as exc:
        print(f"sandbox: configuration error: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_serve(config, env))


async def _serve(config: RuntimeConfig, env: Mapping[str, str]) -> int:
    return await Supervisor(config, environ=env, claims=await open_claims(env)).run()


async def open_claims(env: Mapping[str, str]) -> asyncio.StreamReader:
    """The read end of the provider's claim pipe (``SANDBOX_CLAIM_FD``); an empty stream without one."""
    reader = asyncio.StreamReader()
    fd = env.get(CLAIM_FD_VARIABLE, "")
    if not fd:
        reader.feed_eof()
        return reader
    pipe = os.fdopen(int(fd), "rb", buffering=0)
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    return reader


if __name__ == "__main__":
    sys.exit(main())

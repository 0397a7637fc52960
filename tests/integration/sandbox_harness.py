"""Helpers for sandbox tests: a local origin repository, and a local sandbox wired to a fake control plane."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sandbox.protocol import Author, PromptCommand
from sandbox.providers.base import SandboxHandle, SandboxSpec
from sandbox.providers.local import LocalProvider
from sandbox.providers.processes import descendants
from tests.conftest import IN_CI
from tests.fakes.control_plane import FakeControlPlane
from tests.fakes.llm_server import MODEL, FakeLLM, ToolCall, Turn

ROOT = Path(__file__).resolve().parents[2]
OPENCODE_BIN = ROOT / ".tools" / "node_modules" / ".bin" / "opencode"
PLUGIN_TEMPLATE = ROOT / ".tools" / "opencode-plugin"


def require_opencode() -> None:
    if not OPENCODE_BIN.exists():
        message = f"OpenCode is not installed at {OPENCODE_BIN} (run `make deps`)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def git(*args: str, cwd: Path) -> str:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1"}
    # the test reads what the sandbox wrote: another uid's repository (safe here: the test's own)
    return subprocess.run(
        ["git", "-c", "safe.directory=*", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout


def make_origin(tmp_path: Path, files: dict[str, str] | None = None) -> Path:
    """A bare repository with one commit on main, holding ``files``."""
    work = tmp_path / "origin-work"
    work.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=work)
    for name, text in {"README.md": "# demo\n", **(files or {})}.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if name.endswith(".sh"):
            path.chmod(0o755)
    git("add", "-A", cwd=work)
    git("-c", "user.name=Origin", "-c", "user.email=origin@example.com", "commit", "-qm", "initial", cwd=work)
    bare = tmp_path / "origin.git"
    git("clone", "-q", "--bare", str(work), str(bare), cwd=tmp_path)
    return bare


@dataclass
class LocalSandbox:
    provider: LocalProvider
    control: FakeControlPlane
    spec: SandboxSpec
    handle: SandboxHandle

    @property
    def root(self) -> Path:
        return self.provider.sandbox_dir(self.spec.session_id)

    @property
    def inner_root(self) -> Path:
        """``root`` as the agent sees it (paths in scripted tool calls)."""
        return self.provider.inner_root(self.spec.session_id)

    @property
    def workspace(self) -> Path:
        return self.root / "workspace"

    def log(self) -> str:
        path = self.root / "supervisor.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def make_spec(
    origin: Path,
    llm: FakeLLM,
    control: FakeControlPlane,
    *,
    sandbox_id: str,
    token: str,
    session_id: str = "sess-1",
    secrets: dict[str, str] | None = None,
    egress_hosts: tuple[str, ...] = (),
) -> SandboxSpec:
    return SandboxSpec(
        session_id=session_id,
        sandbox_id=sandbox_id,
        repo_url=str(origin),
        branch="main",
        work_branch=f"inspect/{session_id}",
        bridge_url=control.url,
        token=token,
        model=f"llm/{MODEL}",
        llm_base_url=llm.base_url,
        llm_api_key="test-key",
        llm_model=MODEL,
        heartbeat_s=2,
        secrets=secrets or {},
        egress_hosts=egress_hosts,
    )


@contextlib.asynccontextmanager
async def local_sandbox(
    data_dir: Path,
    origin: Path,
    llm: FakeLLM,
    *,
    restore_from: str | None = None,
    image: str | None = None,
    provider: LocalProvider | None = None,
    session_id: str = "sess-1",
    env_secrets: dict[str, str] | None = None,
    egress_hosts: tuple[str, ...] = (),
) -> AsyncIterator[LocalSandbox]:
    sandbox_id = f"sbx{secrets.token_hex(4)}"
    token = f"sbx_{secrets.token_urlsafe(16)}"
    control = await FakeControlPlane(token=token, sandbox_id=sandbox_id).start()
    own_provider = provider is None
    provider = provider or LocalProvider(
        data_dir=data_dir, opencode_bin=str(OPENCODE_BIN), plugin_template=PLUGIN_TEMPLATE
    )
    spec = make_spec(
        origin,
        llm,
        control,
        sandbox_id=sandbox_id,
        token=token,
        session_id=session_id,
        secrets=env_secrets,
        egress_hosts=egress_hosts,
    )
    if restore_from:
        handle = await provider.restore(restore_from, spec)
    elif image:
        handle = await provider.start_from_image(image, spec)
    else:
        handle = await provider.spawn(spec)
    sandbox = LocalSandbox(provider=provider, control=control, spec=spec, handle=handle)
    try:
        yield sandbox
    except BaseException:
        print("--- supervisor log ---\n" + sandbox.log())  # shown by pytest on failure
        raise
    finally:
        await provider.stop(handle)
        if own_provider:
            await provider.close()
        await control.close()


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def until(check: Callable[[], Any], what: str, timeout: float = 120, every: float = 0.05) -> Any:
    """Poll ``check`` (run in a thread: it may read files or make a blocking request) until it gives
    something truthy, and return that; TimeoutError naming ``what`` after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (found := await asyncio.to_thread(check)):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(every)
    return found


def sandbox_processes(session_id: str) -> list[int]:
    """The session's local sandbox: its bwrap (whose argv names the session's directory) and every
    process below it."""
    marker = f"/sandboxes/{session_id}".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if entry.name.isdigit() and argv.split(b"\0")[0].endswith(b"bwrap") and marker in argv:
            found += [int(entry.name), *descendants(int(entry.name))]
    return found


def environments(pids: list[int]) -> dict[int, bytes]:
    """Each live process's environment (as the server's root reads it)."""
    found = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            found[pid] = Path(f"/proc/{pid}/environ").read_bytes()
    return found


ADA = Author(name="Ada Lovelace", email="ada@example.com")


def bash(command: str) -> ToolCall:
    return ToolCall("bash", {"command": command, "description": "run a command"})


async def agent_runs(sb: LocalSandbox, llm: FakeLLM, command: str, message_id: str = "m1") -> None:
    """The agent runs ``command`` with its bash tool for a prompt of Ada's, then answers; it succeeded."""
    llm.add(Turn(tool_calls=[bash(command)]), Turn(text="Done."))
    await sb.control.send(PromptCommand(message_id=message_id, content="Run it", author=ADA))
    done = await sb.control.wait_type("execution_complete", message_id=message_id, timeout=120)
    assert done.success, done.error

"""Git inside the sandbox: clone, sync, per-prompt author, push. Argument lists only, every call bounded."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

GIT_TIMEOUT_S = 300.0
_BRANCH_RE = re.compile(r"^(?!/)(?!.*\.\.)(?!.*//)(?!.*@\{)[A-Za-z0-9._/-]{1,255}(?<!\.lock)(?<!/)(?<!\.)$")


log = logging.getLogger(__name__)


class GitError(RuntimeError):
    pass


AUTHOR_RETRY_WAITS_S = (0.1, 0.2, 0.4, 0.8, 1.5)  # 3 s in all


def transient(error: str) -> bool:
    """Whether a git failure may pass by itself: a lock another git holds, or a git that was killed."""
    return "could not lock config file" in error or ".lock': File exists" in error or "exit status -" in error


FORK_REF_RE = re.compile(r"^refs/pull/[0-9]{1,10}/head$")


def valid_branch(name: str) -> bool:
    return bool(_BRANCH_RE.match(name)) and not name.startswith("-")


def tail(text: str, lines: int = 30) -> str:
    """The last ``lines`` lines of a command's output (what an error message or a log view shows)."""
    return "\n".join(text.rstrip().splitlines()[-lines:])


@dataclass(frozen=True)
class CommandResult:
    code: int
    output: str


async def run(
    args: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = GIT_TIMEOUT_S
) -> CommandResult:
    """Run a command, capture stdout+stderr together, kill it at the timeout."""
    process = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        _kill_group(process.pid)
        await process.wait()
        return CommandResult(code=124, output=f"timed out after {timeout:.0f}s")
    return CommandResult(code=process.returncode or 0, output=out.decode(errors="replace"))


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, 9)


class Git:
    def __init__(self, workspace: Path, *, env: dict[str, str]) -> None:
        self.workspace = workspace
        self._env = {**env, "GIT_TERMINAL_PROMPT": "0"}

    async def _git(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
        result = await run(["git", *args], cwd=cwd or self.workspace, env=env or self._env)
        if result.code != 0:  # never a wordless failure: a killed git prints nothing
            output = result.output.strip()[-800:] or "no output"
            raise GitError(f"git {args[0]} failed (exit status {result.code}): {output}")
        return result.output.strip()

    async def clone(self, url: str, branch: str) -> None:
        self.workspace.parent.mkdir(parents=True, exist_ok=True)
        await self._git("clone", "--branch", branch, "--", url, str(self.workspace), cwd=self.workspace.parent)

    async def fetch_reset(self, branch: str) -> None:
        await self._git("fetch", "origin", branch)
        await self._git("checkout", "-B", branch, f"origin/{branch}")
        await self._git("reset", "--hard", f"origin/{branch}")

    async def checkout_fork(self, ref: str, branch: str) -> None:
        """Work on a fork's pull request: its head, which no branch of ``origin`` holds, is fetched
        from the ref GitHub keeps for it (``refs/pull/N/head``) and becomes ``branch``."""
        if not FORK_REF_RE.match(ref) or not valid_branch(branch):
            raise GitError(f"invalid pull request ref {ref!r} or branch {branch!r}")
        await self._git("fetch", "origin", ref)
        await self._git("checkout", "-B", branch, "FETCH_HEAD")

    async def checkout_work_branch(self, branch: str) -> None:
        if not valid_branch(branch):
            raise GitError(f"invalid branch name {branch!r}")
        current = await self._git("rev-parse", "--abbrev-ref", "HEAD")
        if current != branch:
            await self._git("checkout", "-B", branch)

    async def head(self) -> str:
        return await self._git("rev-parse", "HEAD")

    async def branch(self) -> str:
        return await self._git("rev-parse", "--abbrev-ref", "HEAD")

    async def set_author(self, name: str, email: str) -> None:
        """Commits made from now on (by the agent's bash tool) are authored by this person. Tried
        again while the failure looks passing (another git holding the config's lock, a git killed
        mid-way); GitError with git's own words once it does not."""
        for wait in (*AUTHOR_RETRY_WAITS_S, None):
            try:
                await self._git("config", "user.name", name)
                await self._git("config", "user.email", email)
                return
            except GitError as exc:
                if wait is None or not transient(str(exc)):
                    raise
                log.info("setting the commit author: %s; trying again", exc)
                await asyncio.sleep(wait)

    async def trust_local_origin(self, url: str) -> None:
        """A local origin is the person's repository, owned by them, not by the sandbox's uid: git
        refuses such a repository unless trusted in the global config (``-c`` does not reach the
        upload-pack it starts). The sandbox reads it only: it is bound read-only."""
        path = local_path(url)
        if path is not None:
            await self._git("config", "--global", "--replace-all", "safe.directory", path, cwd=Path("/"))

    async def bundle(self, target: Path) -> str:
        """Write HEAD as a git bundle (a plain file the control plane fetches from, running nothing of
        ours): how a branch reaches a local origin, which the sandbox may not write to."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)  # noqa: PTH108 - one syscall
        await self._git("bundle", "create", str(target), "HEAD")
        return await self.head()

    async def push(self, remote: str, branch: str, *, force: bool = False) -> str:
        """Push HEAD to ``branch`` on ``remote``. Credentials, when the remote needs them, come from the
        control plane through the credential helper (``git_credential.py``), never from argv or a file."""
        if not valid_branch(branch):
            raise GitError(f"invalid branch name {branch!r}")
        args = ["push", *(["--force-with-lease"] if force else []), remote, f"HEAD:refs/heads/{branch}"]
        await self._git(*args)
        return await self.head()


def local_path(url: str) -> str | None:
    """The filesystem path of a local repository URL (``/path`` or ``file:///path``), else None."""
    path = url.removeprefix("file://")
    return path if path.startswith("/") else None


def credential_helper_env(python: str, token_file: Path) -> dict[str, str]:
    """Git configuration (as environment) that makes every git in the sandbox ask the control plane
    for credentials: the helper list is reset first, so no other helper stores what it gets. The
    helper (and the agent's create-pull-request tool) read the sandbox's tool token from
    ``token_file`` at each use (see ``write_tool_token``)."""
    helper = Path(__file__).with_name("git_credential.py")
    return {
        "GIT_CONFIG_COUNT": "3",
        "GIT_CONFIG_KEY_0": "credential.helper",
        "GIT_CONFIG_VALUE_0": "",
        "GIT_CONFIG_KEY_1": "credential.helper",
        "GIT_CONFIG_VALUE_1": f'!"{python}" "{helper}"',
        "GIT_CONFIG_KEY_2": "credential.useHttpPath",
        "GIT_CONFIG_VALUE_2": "true",
        "INSPECT_TOOL_TOKEN_FILE": str(token_file),
    }


def write_private(path: Path, text: str) -> None:
    """Write an owner-only file atomically: a reader meanwhile sees the old content or the new, never
    half of it (tool tokens, claims)."""
    pending = path.with_name(f".{path.name}.new")
    fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    pending.replace(path)


def write_tool_token(token_file: Path, token: str) -> None:
    """Put the sandbox's tool token where its tools read it. No token: no file."""
    if token:
        write_private(token_file, token)
    else:
        token_file.unlink(missing_ok=True)

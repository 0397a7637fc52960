"""Git remotes read from the control plane (local git mode): ``git ls-remote`` with an argument
list, a bounded time and no prompts; failures become ``InvalidInput`` with the reason git gave."""

from __future__ import annotations

import re
import subprocess

from inspect_app.errors import InvalidInput

LS_REMOTE_TIMEOUT_S = 20


def ls_remote(url: str, *patterns: str, symref: bool = False) -> str:
    try:
        result = subprocess.run(
            ["git", "ls-remote", *(["--symref"] if symref else []), "--", url, *patterns],
            capture_output=True,
            text=True,
            timeout=LS_REMOTE_TIMEOUT_S,
            check=False,
            env={"PATH": "/usr/bin:/bin", "GIT_TERMINAL_PROMPT": "0"},
        )
    except subprocess.TimeoutExpired:
        raise InvalidInput(f"{url}: no answer from git within {LS_REMOTE_TIMEOUT_S}s", code="unreachable") from None
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["not a git repository"])[-1]
        raise InvalidInput(f"{url}: {reason}", code="not_a_repository")
    return result.stdout


def default_branch(url: str) -> str:
    """The remote's default branch (from HEAD); raises InvalidInput when it is not a git repository."""
    match = re.search(r"^ref: refs/heads/(\S+)\s+HEAD", ls_remote(url, "HEAD", symref=True), re.MULTILINE)
    return match.group(1) if match else "main"


def branch_sha(url: str, branch: str) -> str:
    """The commit at the tip of ``branch`` on the remote."""
    match = re.match(r"^([0-9a-f]{40})\s", ls_remote(url, f"refs/heads/{branch}"))
    if match is None:
        raise InvalidInput(f"{url} has no branch {branch}", code="no_branch")
    return match.group(1)

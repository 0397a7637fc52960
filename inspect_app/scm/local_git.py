"""Git remotes read from the control plane (local git mode): ``git ls-remote`` with an argument
list, a bounded time and no prompts.

A failure becomes one generic ``InvalidInput``: git's own words ("Connection refused", "Could not
resolve host", an HTTP status) would let whoever registers a URL probe hosts and ports the server
can reach, so they go to the log (credentials in the URL masked) and not to the caller.
"""

from __future__ import annotations

import logging
import re
import subprocess

from inspect_app.errors import InvalidInput

log = logging.getLogger(__name__)

LS_REMOTE_TIMEOUT_S = 20
_USERINFO = re.compile(r"(://)[^/@\s]+@")


def _masked(text: str) -> str:
    return _USERINFO.sub(r"\1***@", text)


def _unreadable(url: str) -> InvalidInput:
    return InvalidInput(
        f"{url} cannot be read as a git repository: check the path or URL, and that the server can reach it",
        code="not_a_repository",
    )


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
        log.info("git ls-remote %s: no answer within %ss", _masked(url), LS_REMOTE_TIMEOUT_S)
        raise _unreadable(url) from None
    if result.returncode != 0:
        log.info("git ls-remote %s failed (%s): %s", _masked(url), result.returncode, _masked(result.stderr.strip()))
        raise _unreadable(url)
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

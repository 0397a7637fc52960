"""The runtime's environment, kept out of the agent's reach.

The provider starts the runtime with a clean environment of public variables only (paths, locale);
the private ones — secrets, provider keys, the bridge and tool tokens — come in a memfd named by
``SANDBOX_ENV_FD``: read once here, then closed. They never appear in a process's argv or in the
runtime's own ``/proc/<pid>/environ``; the runtime passes each child only what it should see.

The runtime also makes itself non-dumpable: the agent runs as the same uid, and without this it
could read the runtime's memory or fds through /proc (or ptrace it) and take the bridge token.
"""

from __future__ import annotations

import ctypes
import json
import os
from collections.abc import Mapping

ENV_FD_VARIABLE = "SANDBOX_ENV_FD"
CLAIM_FD_VARIABLE = "SANDBOX_CLAIM_FD"  # a pipe: the provider's claims, one JSON line each
_PR_SET_DUMPABLE = 4


class PrivateEnvironmentError(ValueError):
    """The private environment could not be read (a provider bug; the sandbox cannot start)."""


def load(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The runtime's whole environment: the public variables plus the private ones from the memfd."""
    public = dict(os.environ if env is None else env)
    fd_text = public.pop(ENV_FD_VARIABLE, "")
    if not fd_text:
        return public
    try:
        fd = int(fd_text)
        with os.fdopen(fd, "rb") as handle:
            os.lseek(fd, 0, os.SEEK_SET)
            private = json.loads(handle.read())
    except (ValueError, OSError) as exc:
        raise PrivateEnvironmentError(f"cannot read the private environment (fd {fd_text}): {exc}") from None
    if not isinstance(private, dict) or not all(isinstance(v, str) for v in private.values()):
        raise PrivateEnvironmentError("the private environment is not a JSON object of strings")
    return {**public, **private}


def make_undumpable() -> None:
    """prctl(PR_SET_DUMPABLE, 0): no same-uid process may read our memory, fds or environ, or ptrace us.
    Children exec'd from here are dumpable again (the flag resets on exec). Raises when it cannot: the
    runtime must not hold the bridge token where the agent can read it."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise PrivateEnvironmentError(f"prctl(PR_SET_DUMPABLE) failed: errno {ctypes.get_errno()}")

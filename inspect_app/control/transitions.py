"""Which sandbox status may follow which (pure). Every sandbox status write asks here first.

A sandbox moves forward only: spawning → connected → ready, and from any of those to stopping or an
end (stopped, failed, stale). An end stays an end: a later word about a sandbox that ended (a stop
racing its failure, a ``ready`` arriving after it was stopped) is ignored, never applied — the first
account of how it ended is the one kept. Moving backwards (ready → spawning) is a bug: it raises.
"""

from __future__ import annotations

from inspect_app.models import SandboxStatus

S = SandboxStatus
ENDED = frozenset({S.STOPPED, S.FAILED, S.STALE})
_ENDINGS = frozenset({S.STOPPING, *ENDED})
SANDBOX: dict[str, frozenset[str]] = {
    S.SPAWNING: frozenset({S.CONNECTED, S.READY, *_ENDINGS}),
    S.CONNECTED: frozenset({S.READY, *_ENDINGS}),
    S.READY: _ENDINGS,
    S.STOPPING: ENDED,
}


class IllegalTransition(RuntimeError):
    """A status write the rules do not allow (a bug in the caller, not bad input)."""


def sandbox_may(old: str, new: str) -> bool:
    """Whether a sandbox in ``old`` may be written ``new``: True to apply (the same status again is a
    no-op), False to ignore (it has ended); raises ``IllegalTransition`` for a move backwards."""
    if old == new:
        return True
    if old in ENDED:
        return False
    if new not in SANDBOX.get(old, frozenset()):
        raise IllegalTransition(f"a sandbox cannot go from {old} to {new}")
    return True

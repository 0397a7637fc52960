"""Which status may follow which, for sandboxes, prompts and sessions (pure). Every status write
asks here first. Each answer is one of three: apply it (True); ignore it (False: a late or raced
word about something that has moved on, which the caller may answer as a conflict); or raise
``IllegalTransition`` — a move no code should make, a bug.

- A **sandbox** moves forward only: spawning → connected → ready, and from any of those to stopping
  or an end (stopped, failed, stale). An end stays an end: a later word about a sandbox that ended (a
  stop racing its failure, a ``ready`` arriving after it was stopped) is ignored — the first account
  of how it ended is kept. Moving backwards (ready → spawning) raises.
- A **prompt** waits (pending), runs (processing), and ends once (completed, failed, cancelled). A
  running prompt whose sandbox did not take it waits again. Ended stays ended: a completion re-sent,
  a cancel racing its start, are ignored; starting an ended prompt again raises.
- A **session**'s ready and running follow from its sandbox and its prompts: ``sessions.settle``
  derives them in one statement, and a prompt's start writes running with it. Nothing sets them
  directly (that raises), nor goes back to created. Syncing is a boot's step: a late report of it,
  once the session is past booting, is ignored. Spawning, stopped, stale and failed may follow
  anything: a new sandbox can start, and the present one can end, at any time.
"""

from __future__ import annotations

from inspect_app.models import MessageStatus, SandboxStatus, SessionStatus

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


M = MessageStatus
PROMPT_ENDED = frozenset({M.COMPLETED, M.FAILED, M.CANCELLED})
PROMPT: dict[str, frozenset[str]] = {
    M.PENDING: frozenset({M.PROCESSING, M.CANCELLED}),
    M.PROCESSING: frozenset({M.COMPLETED, M.FAILED, M.PENDING}),  # pending: its sandbox did not take it
}


def prompt_may(old: str, new: str) -> bool:
    """Whether a prompt in ``old`` may be written ``new`` now (see the module's rules)."""
    if old == new:
        return old not in PROMPT_ENDED  # an end said twice (a second cancel) changes nothing
    if new in PROMPT.get(old, frozenset()):
        return True
    if old in PROMPT_ENDED and new in (M.PENDING, M.PROCESSING):
        raise IllegalTransition(f"a prompt that ended ({old}) cannot be {new} again")
    return False


SS = SessionStatus
SESSION_DERIVED = frozenset({SS.READY, SS.RUNNING})  # written by sessions.settle and a prompt's start only
SESSION_BOOTING = frozenset({SS.CREATED, SS.SPAWNING, SS.SYNCING})


def session_may(old: str, new: str) -> bool:
    """Whether a session in ``old`` may be set to ``new`` (see the module's rules)."""
    if new in SESSION_DERIVED or (new == SS.CREATED and old != SS.CREATED):
        raise IllegalTransition(f"a session is not set to {new} (from {old}); it follows from its sandbox and prompts")
    if new == SS.SYNCING:
        return old in SESSION_BOOTING
    return True

"""The spawn watchdog's memory: where each booting sandbox is, and when it last moved.

A boot is given up when it makes no progress for ``no_progress_s`` (``INSPECT_SPAWN_TIMEOUT_S``) —
git sync, each new line of setup output, the agent's start all count — or when it passes ``cap_s``
altogether (derived from the setup timeout), not after a flat time since creation: a large
repository's setup that keeps printing may take many minutes, a hung one is caught in seconds.
Pure: the sweep asks ``overdue`` with the time; ``progress`` is told by the bridge's handler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from inspect_app.models import utcnow

NEVER_CONNECTED = "starting (it never connected)"


@dataclass
class BootWatch:
    no_progress_s: float
    cap_s: float
    _seen: dict[str, tuple[datetime, str]] = field(default_factory=dict)  # sandbox id → (last move, step)

    def progress(self, sandbox_id: str, step: str, at: datetime | None = None) -> None:
        self._seen[sandbox_id] = (at or utcnow(), step)

    def forget(self, sandbox_id: str) -> None:
        self._seen.pop(sandbox_id, None)

    def step(self, sandbox_id: str) -> str:
        return self._seen.get(sandbox_id, (None, NEVER_CONNECTED))[1]

    def overdue(self, sandbox_id: str, created_at: datetime, now: datetime) -> str | None:
        """Why the boot of ``sandbox_id`` (started at ``created_at``) is given up now; None: not yet."""
        moved, step = self._seen.get(sandbox_id, (created_at, NEVER_CONNECTED))
        if now - created_at > timedelta(seconds=self.cap_s):
            return f"the sandbox did not become ready within {self.cap_s:.0f}s (it was at: {step})"
        if now - max(moved, created_at) > timedelta(seconds=self.no_progress_s):
            return f"the sandbox made no progress for {self.no_progress_s:.0f}s (it was at: {step})"
        return None

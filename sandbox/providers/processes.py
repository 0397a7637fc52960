"""Process trees on this machine, read from /proc: a sandbox's, and one an earlier server started.

A local sandbox outlives the server that launched it. The next server cannot ``wait()`` for it (it
is not its child) and must not confuse it with an unrelated process that got the same pid after it
ended, so a process is named by its pid *and* its start time (``/proc/<pid>/stat`` field 22).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

POLL_S = 0.5
PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (which may hold spaces)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot); None when there is no such live process."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):  # a zombie has ended: only its exit status is left
        return None
    return int(fields[19])


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (read from /proc), deepest last."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def running_as(uids: range) -> dict[int, int]:
    """Every live process whose real uid is in ``uids``: pid → uid."""
    found = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
                if uid in uids:
                    found[int(entry.name)] = uid
                break
    return found


def send(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


class Adopted:
    """A process an earlier server started, found alive: what ``asyncio.subprocess.Process`` offers
    the provider (``pid``, ``returncode``, ``wait``), for a process that is not our child. Its exit
    status is its real parent's to collect, so an ended one reports ``ENDED``."""

    ENDED = 255

    def __init__(self, pid: int, started: int) -> None:
        self.pid = pid
        self._started = started
        self._ended = False

    @property
    def returncode(self) -> int | None:
        if not self._ended and start_time(self.pid) != self._started:
            self._ended = True
        return self.ENDED if self._ended else None

    async def wait(self) -> int:
        while self.returncode is None:
            await asyncio.sleep(POLL_S)
        return self.ENDED

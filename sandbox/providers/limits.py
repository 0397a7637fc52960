"""Resource limits per local sandbox: a cgroup of its own with a memory limit, a process (task) limit
and a CPU share, on cgroup v1 or v2.

A runaway build or a fork bomb in one sandbox must not take the server or the other sandboxes down.
``RLIMIT_AS`` is no use (Bun/OpenCode and Chromium reserve far more address space than they touch);
a cgroup limits what is really used, and the kernel's OOM killer then kills inside that group alone.

Each sandbox's group lies under ``inspect-sandboxes/`` below the server's own group in each
hierarchy. A sandbox joins its group before anything of it runs: the launcher is a constant ``sh``
script that writes its own pid to each group's ``cgroup.procs`` and then execs bubblewrap (argument
list, no data in the script), so no child can be forked outside the group.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path("/sys/fs/cgroup")
PARENT = "inspect-sandboxes"
# $0 is a label; then cgroup.procs paths up to "--"; then the command.
JOIN_SCRIPT = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'


@dataclass(frozen=True)
class Limits:
    """What one sandbox may use, its processes together."""

    memory_mb: int
    max_processes: int
    cpu_weight: int  # 1-10000, 100 = an equal share (cgroup v2's scale; v1 shares are scaled to it)


class Group:
    """One sandbox's cgroup (a directory per v1 hierarchy, or one on v2)."""

    def __init__(self, dirs: list[Path], *, v2: bool) -> None:
        self.dirs = dirs
        self._v2 = v2

    @property
    def name(self) -> str:
        return self.dirs[0].name

    def wrap(self, command: list[str]) -> list[str]:
        """``command``, started inside this group."""
        procs = [str(d / "cgroup.procs") for d in self.dirs]
        return ["sh", "-c", JOIN_SCRIPT, "inspect-join", *procs, "--", *command]

    def oom_kills(self) -> int:
        """How many of the group's processes the kernel killed for going over its memory."""
        events = "memory.events" if self._v2 else "memory.oom_control"
        for directory in self.dirs:
            path = directory / events
            with contextlib.suppress(OSError):
                for line in path.read_text().splitlines():
                    name, _, value = line.partition(" ")
                    if name == "oom_kill":
                        return int(value)
        return 0

    def remove(self) -> bool:
        """Delete the group; False while it still has processes (try again once they are gone)."""
        done = True
        for directory in self.dirs:
            try:
                directory.rmdir()
            except FileNotFoundError:
                continue
            except OSError:
                done = False
        return done


class Cgroups:
    """Makes sandbox groups on this machine's cgroup hierarchy (``detect`` finds which, if any)."""

    def __init__(self, parents: dict[str, Path], *, v2: bool) -> None:
        self._parents = parents  # controller → the directory sandbox groups are made in
        self.v2 = v2

    @classmethod
    def detect(cls, root: Path = ROOT, own: str | None = None) -> Cgroups | None:
        """The writable memory, pids and cpu controllers under our own groups; None when there are none
        (not root, no cgroup filesystem): sandboxes then run without limits, and the server says so."""
        own = own if own is not None else _read(Path("/proc/self/cgroup"))
        mine = _own_groups(own)
        v1 = {c: root / c / mine[c].lstrip("/") / PARENT for c in ("memory", "pids", "cpu") if c in mine}
        if len(v1) == 3 and all((root / c / "cgroup.procs").exists() for c in v1):
            found = cls(v1, v2=False)
        elif "" in mine and {"memory", "pids", "cpu"} <= set(
            _read(root / mine[""].lstrip("/") / "cgroup.controllers").split()
        ):
            # v2 hands controllers down only to groups without processes of their own: this works
            # where the server's group was delegated to it (systemd Delegate=yes, a container's root)
            found = cls({"": root / mine[""].lstrip("/") / PARENT}, v2=True)
        else:
            return None
        try:
            found._prepare()
        except OSError as exc:
            log.warning("sandbox resource limits are not available: %s", exc)
            return None
        return found

    def _prepare(self) -> None:
        for parent in self._parents.values():
            parent.mkdir(exist_ok=True)
            for left in parent.glob("sbx-*"):  # an earlier server's, emptied when its sandboxes died
                with contextlib.suppress(OSError):
                    left.rmdir()
            if self.v2:  # v2: controllers must be handed down to the sandboxes' groups explicitly
                (parent / "cgroup.subtree_control").write_text("+memory +pids +cpu")
        if not self.v2:
            with contextlib.suppress(OSError):  # limits apply to the whole subtree, as one expects
                (self._parents["memory"] / "memory.use_hierarchy").write_text("1")

    def open(self, name: str) -> Group | None:
        """The existing group ``name`` (a sandbox an earlier server started), as it is; None if gone."""
        if not name or "/" in name or name.startswith("."):
            return None
        dirs = [parent / name for parent in self._parents.values()]
        return Group(dirs, v2=self.v2) if all(d.is_dir() for d in dirs) else None

    def create(self, name: str, limits: Limits) -> Group:
        """A new group ``name`` with ``limits`` (exists already: its limits are set again)."""
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"not a group name: {name!r}")
        memory = str(limits.memory_mb * 1024 * 1024)
        if self.v2:
            directory = self._parents[""] / name
            directory.mkdir(exist_ok=True)
            _write(directory / "memory.max", memory)
            _write(directory / "memory.swap.max", "0", optional=True)
            _write(directory / "pids.max", str(limits.max_processes))
            _write(directory / "cpu.weight", str(limits.cpu_weight))
            return Group([directory], v2=True)
        dirs = []
        for controller, settings in (
            ("memory", {"memory.limit_in_bytes": memory, "memory.memsw.limit_in_bytes": memory}),
            ("pids", {"pids.max": str(limits.max_processes)}),
            ("cpu", {"cpu.shares": str(max(2, limits.cpu_weight * 1024 // 100))}),
        ):
            directory = self._parents[controller] / name
            directory.mkdir(exist_ok=True)
            for file, value in settings.items():
                _write(directory / file, value, optional=file.startswith("memory.memsw"))
            dirs.append(directory)
        return Group(dirs, v2=False)


def _own_groups(text: str) -> dict[str, str]:
    """controller → our group's path, from /proc/self/cgroup ("" for v2's unified line)."""
    groups: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(","):
                groups[controller] = parts[2]
    return groups


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _write(path: Path, value: str, *, optional: bool = False) -> None:
    try:
        path.write_text(value)
    except OSError:
        if not optional:  # memsw (no swap accounting) and swap.max may be missing: nothing to limit
            raise

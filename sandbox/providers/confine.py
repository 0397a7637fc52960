"""Confinement of a local sandbox: the bubblewrap command line, and the host uid each sandbox runs as.

What a confined sandbox gets, whoever runs the server:
- new mount, PID, IPC and UTS namespaces; the system read-only; a private /tmp; its own directory
  read-write at one fixed path; every home directory, the data directory and the project checkout
  hidden behind empty tmpfs (the runtime's code, interpreter and tools bound back read-only);
- a clean environment (``--clearenv``): only the public variables given here. Secrets, tokens and
  keys travel in a memfd the runtime reads and closes (``SANDBOX_ENV_FD``), never in a host
  process's argv (readable by every host user) or environment;
- no capabilities: when the server runs as root, bubblewrap (as root) builds the mounts and then
  ``setpriv`` becomes the sandbox's own unprivileged host uid, with empty capability sets, an empty
  bounding set and no_new_privs; otherwise the server's own uid in a user namespace, ``--cap-drop ALL``.

Why root builds the mounts and drops afterwards, rather than dropping first (``setpriv … bwrap
--unshare-user``): an unprivileged bubblewrap resolves every bind source as that uid, so every
ancestor of the data directory, of a local origin and of the checkout must be traversable by it —
a data directory of mode 0700 (or a checkout under /root) could not be bound at all. Dropping inside
gives the same end state (a non-root uid with no capabilities, sharing nothing with other sandboxes)
without that.

Pure: it builds argument lists and passwd lines; ``LocalProvider`` runs them.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.protocol import RELAY_DIR

SANDBOX_USER = "sandbox"
ENV_FD_VARIABLE = "SANDBOX_ENV_FD"
# Homes (and root's: where a root-run server's secrets usually live), and /run: the host's Unix
# sockets there (PostgreSQL's, often with trust authentication; D-Bus; the user's systemd and agents)
# answer a connect() through a read-only mount.
ALWAYS_HIDDEN = (Path("/home"), Path("/root"), Path("/run"))


class UidsExhausted(RuntimeError):
    """Every uid of the configured range belongs to a running sandbox."""


class UidRange:
    """Hands out one host uid per running sandbox from ``[first, first + count)``.

    One uid per sandbox: sandboxes cannot touch each other's files or signal each other's
    processes, and per-uid limits are per sandbox. A uid is free again once its holder says so.
    """

    def __init__(self, first: int, count: int) -> None:
        if first < 1000 or count < 1:
            raise ValueError("a sandbox uid range starts at 1000 or above and holds at least one uid")
        self.first, self.count = first, count
        self._taken: set[int] = set()

    @property
    def ids(self) -> range:
        return range(self.first, self.first + self.count)

    def take(self, busy: Collection[int] = ()) -> int:
        """A free uid; ``busy``: ones something else runs as, skipped though not ours."""
        for uid in self.ids:
            if uid not in self._taken and uid not in busy:
                self._taken.add(uid)
                return uid
        raise UidsExhausted(f"all {self.count} sandbox uids are in use")

    def taken(self, uid: int) -> None:
        """``uid`` belongs to a running sandbox already (one an earlier server started)."""
        if uid in self.ids:
            self._taken.add(uid)

    def give_back(self, uid: int) -> None:
        self._taken.discard(uid)

    def __contains__(self, uid: int) -> bool:
        return uid in self._taken


@dataclass(frozen=True)
class Jail:
    """One confined process: where its directory is, what it may see, who it runs as."""

    root: Path  # its directory on the host
    inside: Path  # where it sees that directory
    uid: int | None  # host uid to become (the server is root); None: keep the server's (not root)
    hide: tuple[Path, ...]  # empty tmpfs over these (data dir, project checkout, ...)
    show: tuple[Path, ...]  # bound back read-only after hiding (runtime code, interpreter, tools)
    readonly: tuple[Path, ...] = ()  # bound read-only at their own path (a local origin)
    mask: tuple[Path, ...] = ()  # files replaced by an empty one (the server's .env)
    writable: tuple[tuple[Path, Path], ...] = ()  # (host path, where it appears) read-write: a copy's target
    relays: Path | None = None  # a network of its own (loopback only), reaching out through these sockets
    env: Mapping[str, str] = field(default_factory=dict)  # public variables only (visible in argv)

    def __post_init__(self) -> None:
        for shown in (*self.show, *self.readonly):
            for hidden in self.hide:
                if hidden == shown or hidden.is_relative_to(shown):
                    raise ValueError(f"{shown} would show {hidden} again, which must stay hidden")

    def command(self, program: list[str], *, passwd_fd: int | None = None, group_fd: int | None = None) -> list[str]:
        """The bwrap command that runs ``program`` in this jail.

        ``passwd_fd``/``group_fd``: files (memfds) with the sandbox user's entries, so tools that
        look their user up (``whoami``, ssh, Node's ``os.userInfo``) work under a uid nobody named.
        """
        args = ["bwrap", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session"]
        if self.uid is None:  # not root: a user namespace, and no capability in it either
            args += ["--unshare-user", "--cap-drop", "ALL"]
        if self.relays is not None:
            args += ["--unshare-net"]
        args += ["--clearenv"]
        for name, value in self.env.items():
            args += ["--setenv", name, value]
        args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--tmpfs", "/tmp"]  # noqa: S108 - private
        hidden = _outermost(self.hide)
        for path in hidden:
            args += ["--tmpfs", str(path)]
        # bwrap makes missing mount points 0700 (root's): the sandbox's uid could not pass them
        covers = [*hidden, Path("/tmp")]  # noqa: S108 - the private /tmp above
        made: set[Path] = set()
        relays = [Path(RELAY_DIR)] if self.relays is not None else []
        for target in [*_outermost(self.show), *self.readonly, self.inside, *(i for _, i in self.writable), *relays]:
            for parent in _between(target, covers):
                if parent not in made:
                    made.add(parent)
                    args += ["--perms", "0755", "--dir", str(parent)]
        for path in _outermost(self.show):
            args += ["--ro-bind", str(path), str(path)]
        for path in self.readonly:
            args += ["--ro-bind", str(path), str(path)]
        for path in self.mask:
            args += ["--ro-bind", "/dev/null", str(path)]
        args += ["--bind", str(self.root), str(self.inside)]
        for source, inner in self.writable:
            args += ["--bind", str(source), str(inner)]
        if self.relays is not None:
            args += ["--ro-bind", str(self.relays), RELAY_DIR]
        for fd, etc in ((passwd_fd, "/etc/passwd"), (group_fd, "/etc/group")):
            if fd is not None:
                args += ["--perms", "0644", "--ro-bind-data", str(fd), etc]
        args += ["--chdir", str(self.inside), "--"]
        if self.uid is not None:
            args += [
                "setpriv",
                f"--reuid={self.uid}",
                f"--regid={self.uid}",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
                "--",
            ]
        return [*args, *program]


def user_entries(passwd: str, group: str, uid: int, home: Path) -> tuple[str, str]:
    """The host's passwd and group files with the sandbox user added (pure)."""
    entry = f"{SANDBOX_USER}:x:{uid}:{uid}:Inspect sandbox:{home}:/bin/bash\n"
    group_entry = f"{SANDBOX_USER}:x:{uid}:\n"
    return _ending(passwd) + entry, _ending(group) + group_entry


def _ending(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def _between(target: Path, covers: list[Path]) -> list[Path]:
    """``target``'s ancestors strictly inside the first of ``covers`` (tmpfs mounts) holding it,
    outermost first: the directories bwrap would have to make for it."""
    for cover in covers:
        if target != cover and target.is_relative_to(cover):
            depth = len(cover.parts)
            return [Path(*target.parts[:n]) for n in range(depth + 1, len(target.parts))]
    return []


def kept_apart(command: list[str]) -> list[str]:
    """``command`` under a parent of its own, so that it outlives the process that starts it.

    Bubblewrap's ``--die-with-parent`` must stay: without it, a bwrap that dies (killed, or its
    command gone) leaves the sandbox's pid namespace running with no one to end it. So a sandbox
    that should outlive the server gets a parent that is not the server — this shell, which waits
    for bwrap (never ``exec``: the ``exit`` after the command prevents that) and is what the server
    tracks, signals and, after a restart, adopts."""
    return ["sh", "-c", '"$@"; exit $?', "inspect-sandbox", *command]


def _outermost(paths: Iterable[Path]) -> list[Path]:
    """Paths without those lying inside another of them (one mount covers them), parents first."""
    unique = sorted({Path(os.path.normpath(p)) for p in paths}, key=lambda p: (len(p.parts), str(p)))
    kept: list[Path] = []
    for path in unique:
        if not any(path == k or path.is_relative_to(k) for k in kept):
            kept.append(path)
    return kept

"""Host-side reads, copies and removals inside a sandbox's directory, which the agent controls.

The server (often root) must never follow a link the agent planted: a directory on the way to a
file it removes made a link to ``/etc`` would have it delete there; ``build.log`` made a link to
``/etc/shadow`` would have it show that file in Settings. Every path component is opened with
``O_NOFOLLOW`` relative to the directory before it, so there is no window between a check and the
use; a link anywhere on the way is an error.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(OSError):
    """A path inside a sandbox directory is not a plain file or directory (a planted link, ...)."""


@contextlib.contextmanager
def _parent_fd(root: Path, relative: str) -> Iterator[tuple[int, str]]:
    """An fd of ``relative``'s parent directory (reached without following links) and its last name."""
    parts = Path(relative).parts
    if not parts or any(part in ("..", "/", ".") for part in parts):
        raise UnsafePath(f"not a plain relative path: {relative!r}")
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            try:
                inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                raise  # missing, not unsafe: callers may treat it as "nothing there"
            except OSError as exc:
                raise UnsafePath(f"{relative}: {part} is not a directory") from exc
            os.close(fd)
            fd = inner
        yield fd, parts[-1]
    finally:
        os.close(fd)


def read_text(root: Path, relative: str, *, limit: int = 1 << 20) -> str | None:
    """The last ``limit`` bytes of ``root/relative`` as text; None when it does not exist.
    UnsafePath when it (or a directory on the way) is a link or not a regular file."""
    try:
        with _parent_fd(root, relative) as (dir_fd, name):
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise UnsafePath(f"{relative} is not a plain file") from exc
    except FileNotFoundError:  # the directory itself (or one on the way) is missing
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePath(f"{relative} is not a regular file")
        if info.st_size > limit:
            handle.seek(info.st_size - limit)
        return handle.read(limit).decode(errors="replace")


def open_log(root: Path, name: str) -> int:
    """An append-only fd for ``root/name`` (a log the sandbox's output goes to), never through a link."""
    with _parent_fd(root, name) as (dir_fd, last):
        try:
            return os.open(
                last, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd
            )
        except OSError as exc:
            raise UnsafePath(f"{name} cannot be opened as a log: {exc}") from exc


def copy_out(root: Path, relative: str, target: Path, *, limit: int) -> None:
    """Copy the regular file ``root/relative`` (at most ``limit`` bytes) to ``target``, a path of ours."""
    with _parent_fd(root, relative) as (dir_fd, name):
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError as exc:
            raise UnsafePath(f"{relative} is missing or not a plain file") from exc
    with os.fdopen(fd, "rb") as source:
        info = os.fstat(source.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            raise UnsafePath(f"{relative} is not a regular file of at most {limit} bytes")
        left = info.st_size  # no more than was there when checked (the agent may be appending)
        with target.open("xb") as out:
            while left > 0 and (chunk := source.read(min(left, 1 << 20))):
                out.write(chunk)
                left -= len(chunk)


def remove(root: Path, relative: str) -> None:
    """Delete ``root/relative`` (a file or a link itself), never through a link on the way."""
    with _parent_fd(root, relative) as (dir_fd, name):
        os.unlink(name, dir_fd=dir_fd)

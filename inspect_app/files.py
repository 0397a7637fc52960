"""Private files: the data directory is 0700 and the files directly in it (the SQLite database and
its WAL, ``secret.key``, ``local-token``, sign-in links) are 0600, whatever the umask.

The directory's mode alone keeps other host users out; the files' modes keep them private when the
directory is copied or its mode loosened. SQLite gives its -wal and -shm files the database file's
mode, so creating the database 0600 covers them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) and make it 0700."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    path.chmod(DIR_MODE)  # mkdir's mode is reduced by the umask, and an existing directory keeps its own
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty if it is missing, and make it 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    path.chmod(FILE_MODE)
    return path


def tighten(data_dir: Path) -> None:
    """The data directory 0700 and every regular file directly in it 0600 (older installs made them
    0755 and 0644). Subdirectories (sandboxes, snapshots, images) keep the modes their owners set."""
    private_dir(data_dir)
    for entry in data_dir.iterdir():
        if entry.is_file() and not entry.is_symlink() and stat.S_IMODE(entry.stat().st_mode) != FILE_MODE:
            entry.chmod(FILE_MODE)

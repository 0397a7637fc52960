"""What a restarted server needs to find its running local sandboxes again: one record each.

Written when a process becomes a session's sandbox, removed when it is stopped. A record holds which
process it is (pid and start time), the uid and cgroup it was given, where its relay sockets are and
where they lead, and one secret: the bridge token its relay presents for it (a sandbox on its own
network never holds it; the database keeps only its hash). Records live in ``<data dir>/running/``
(0700, files 0600, beside the instance key), which no sandbox sees; the server reads them as data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
from pathlib import Path

log = logging.getLogger(__name__)

SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


@dataclasses.dataclass(frozen=True)
class SandboxRecord:
    sandbox_id: str
    session_id: str
    pid: int
    started: int  # the process's start time: a pid reused by another process does not match
    key: str = ""  # the environment it runs with (parking compares)
    uid: int | None = None
    group: str | None = None  # its cgroup's name
    relays: str | None = None  # the directory of its relay sockets (bound into it)
    routes: dict[str, tuple[str, int]] = dataclasses.field(default_factory=dict)
    allow: tuple[str, ...] = ()  # hosts its egress proxy allows beyond the installation's list
    bridge_token: str = dataclasses.field(default="", repr=False)  # what its bridge relay presents

    @classmethod
    def parse(cls, text: str) -> SandboxRecord:
        raw = json.loads(text)
        routes = {str(name): (str(host), int(port)) for name, (host, port) in raw.pop("routes", {}).items()}
        record = cls(**{**raw, "routes": routes, "allow": tuple(raw.pop("allow", ()))})
        if not SAFE_ID.match(record.sandbox_id) or not SAFE_ID.match(record.session_id):
            raise ValueError("not a sandbox record")
        return record


class RecordBook:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, sandbox_id: str) -> Path:
        if not SAFE_ID.match(sandbox_id):
            raise ValueError(f"not a sandbox id: {sandbox_id!r}")
        return self.directory / f"{sandbox_id}.json"

    def write(self, record: SandboxRecord) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self._path(record.sandbox_id)
        partial = path.with_suffix(".tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(dataclasses.asdict(record), out)
        partial.replace(path)  # whole or not at all: a server killed mid-write leaves the old record

    def remove(self, sandbox_id: str) -> None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            self._path(sandbox_id).unlink()

    def all(self) -> list[SandboxRecord]:
        found = []
        for path in sorted(self.directory.glob("*.json")) if self.directory.is_dir() else []:
            try:
                found.append(SandboxRecord.parse(path.read_text()))
            except (OSError, ValueError, TypeError) as exc:
                log.warning("ignoring an unreadable sandbox record %s: %s", path.name, exc)
                path.unlink(missing_ok=True)
        return found

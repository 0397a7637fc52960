"""Where the terminal client keeps the server's URL and the person's API token: a JSON file only
its owner can read (0600, in a 0700 folder), ``$XDG_CONFIG_HOME/inspect-cli/config.json``."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Login:
    url: str
    token: str


def default_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "inspect-cli" / "config.json"


def load(path: Path) -> Login | None:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or not found.get("url") or not found.get("token"):
        return None
    return Login(url=str(found["url"]).rstrip("/"), token=str(found["token"]))


def save(path: Path, login: Login) -> None:
    """Written whole through a new 0600 file, then renamed over the old one (never readable by others,
    not even for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"url": login.url, "token": login.token}, handle)
    temporary.replace(path)

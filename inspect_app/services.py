"""The composition root: builds every long-lived collaborator once, from the settings.

Edges (API routes, Reflex states, bots) reach collaborators through ``current()``; nothing else
constructs engines or clients. Building is lazy so that importing the app (e.g. while Reflex
compiles pages) touches no database.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import sqlalchemy as sa

from inspect_app.control.crypto import Cipher
from inspect_app.db import create_db_engine
from inspect_app.settings import Settings, get_settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: sa.Engine
    cipher: Cipher


def build_services(settings: Settings) -> Services:
    return Services(
        settings=settings,
        engine=create_db_engine(settings.resolved_database_url),
        cipher=Cipher(settings.encryption_key()),
    )


_lock = threading.Lock()
_current: Services | None = None


def current() -> Services:
    """The process's services, built on first use from the environment's settings."""
    global _current
    with _lock:
        if _current is None:
            _current = build_services(get_settings())
        return _current


def install(services: Services | None) -> None:
    """Replace the process's services (used by tests and by ``serve``)."""
    global _current
    with _lock:
        _current = services

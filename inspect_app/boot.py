"""Start-up checks and one-time preparation, run before the server starts.

Every failure here is a ``ConfigError`` naming the setting at fault, so start-up stops with one
clear line instead of a stack trace.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from inspect_app import files
from inspect_app.control.data import users
from inspect_app.db import check_connection, migration_status, upgrade
from inspect_app.errors import ConfigError
from inspect_app.services import Services, build_services
from inspect_app.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BootReport:
    services: Services
    local_mode: bool
    migrated_to: str | None


def check_settings(settings: Settings) -> None:
    """Checks that need more than one field, or the machine."""
    if not settings.oauth_enabled and not settings.listens_on_loopback and not settings.allow_remote_local_mode:
        raise ConfigError(
            f"INSPECT_HOST: local mode (no GitHub sign-in configured) only listens on loopback, not {settings.host!r}; "
            "configure INSPECT_GITHUB_CLIENT_ID or set INSPECT_ALLOW_REMOTE_LOCAL_MODE=true"
        )
    if settings.oauth_enabled and not settings.github_client_secret.get_secret_value():
        raise ConfigError("INSPECT_GITHUB_CLIENT_SECRET: required when INSPECT_GITHUB_CLIENT_ID is set")
    try:
        files.tighten(settings.data_dir)  # 0700, its files 0600: the database and keys are the server's alone
    except OSError as exc:
        raise ConfigError(
            f"INSPECT_DATA_DIR: cannot create or make private {settings.data_dir}: {exc.strerror}"
        ) from None
    if not os.access(settings.data_dir, os.W_OK):
        raise ConfigError(f"INSPECT_DATA_DIR: {settings.data_dir} is not writable")


def prepare(settings: Settings) -> BootReport:
    """Validate, connect, migrate, and bootstrap the local user. Raises ConfigError."""
    check_settings(settings)
    services = build_services(settings)  # generates the secret key on first start
    check_connection(services.engine)
    upgrade(settings.resolved_database_url)
    status = migration_status(services.engine)
    local_mode = not settings.oauth_enabled
    if local_mode:
        name, email = settings.local_identity()
        users.ensure_local_user(services.engine, name=name, email=email, data_dir=settings.data_dir)
    return BootReport(services=services, local_mode=local_mode, migrated_to=status.current)

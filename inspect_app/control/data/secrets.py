"""Secrets: AES-256-GCM at rest, write-only through the API, read only to build a sandbox spec.

Only admins see their names or change them (``roles``): a secret reaches every sandbox of its scope,
and so every prompt's agent there.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlmodel import col, select

from inspect_app.control.crypto import Cipher
from inspect_app.control.data import roles
from inspect_app.db import session_scope
from inspect_app.errors import InvalidInput, NotFound
from inspect_app.models import Repository, Secret, utcnow
from sandbox.providers.base import refused_variable

KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
MAX_VALUE_BYTES = 64 * 1024


def _check(key: str, value: str) -> None:
    if not KEY_RE.match(key):
        raise InvalidInput("a secret name is letters, digits and _, starting with a letter or _", code="bad_key")
    if (reason := refused_variable(key)) is not None:
        raise InvalidInput(reason, code="reserved_key")
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise InvalidInput(f"a secret is at most {MAX_VALUE_BYTES} bytes", code="too_large")


def _associated(repository_id: int | None, key: str) -> str:
    return f"{repository_id or 'global'}:{key}"


def put(
    engine: sa.Engine, cipher: Cipher, key: str, value: str, *, actor_id: int, repository_id: int | None = None
) -> None:
    roles.require_admin(engine, actor_id, "change secrets and provider keys")
    _check(key, value)
    blob = cipher.encrypt(value, associated=_associated(repository_id, key))
    with session_scope(engine) as db:
        if repository_id is not None and db.get(Repository, repository_id) is None:
            raise NotFound(f"no repository {repository_id}")
        row = db.exec(select(Secret).where(Secret.key == key, Secret.repository_id == repository_id)).first()
        if row is None:
            db.add(Secret(key=key, repository_id=repository_id, ciphertext=blob))
        else:
            row.ciphertext = blob
            row.updated_at = utcnow()


def delete(engine: sa.Engine, key: str, *, actor_id: int, repository_id: int | None = None) -> None:
    roles.require_admin(engine, actor_id, "change secrets and provider keys")
    with session_scope(engine) as db:
        row = db.exec(select(Secret).where(Secret.key == key, Secret.repository_id == repository_id)).first()
        if row is None:
            raise NotFound(f"no secret {key}")
        db.delete(row)


def names(engine: sa.Engine, *, actor_id: int, repository_id: int | None = None) -> list[str]:
    roles.require_admin(engine, actor_id, "list secrets")
    with session_scope(engine) as db:
        return sorted(db.exec(select(Secret.key).where(Secret.repository_id == repository_id)).all())


def listing(engine: sa.Engine, *, actor_id: int) -> list[tuple[str, str, int | None]]:
    """Every secret's (name, scope label, repository id): global ones first, never a value."""
    roles.require_admin(engine, actor_id, "list secrets")
    with session_scope(engine) as db:
        rows = db.exec(
            select(Secret.key, Repository.name, Secret.repository_id)
            .outerjoin(Repository, Repository.id == Secret.repository_id)  # type: ignore[arg-type]
            .order_by(Secret.repository_id.is_not(None), Repository.name, Secret.key)  # type: ignore[union-attr]
        ).all()
    return [(key, repo_name or "all repositories", repo_id) for key, repo_name, repo_id in rows]


def for_sandbox(engine: sa.Engine, cipher: Cipher, repository_id: int) -> dict[str, str]:
    """Global secrets overlaid with the repository's (the repository wins), decrypted."""
    with session_scope(engine) as db:
        rows = db.exec(
            select(Secret).where(
                sa.or_(col(Secret.repository_id).is_(None), col(Secret.repository_id) == repository_id)
            )
        ).all()
    values: dict[str, str] = {}
    for row in sorted(rows, key=lambda r: r.repository_id is not None):
        values[row.key] = cipher.decrypt(row.ciphertext, associated=_associated(row.repository_id, row.key))
    return values

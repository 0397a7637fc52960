"""Users and their personal API tokens (including local single-user mode's bootstrap)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import col, select

from inspect_app.control import tokens
from inspect_app.db import session_scope
from inspect_app.errors import InvalidInput, Unauthorized
from inspect_app.files import private_dir
from inspect_app.models import ApiToken, User, utcnow

TOUCH_EVERY = timedelta(seconds=60)
LOCAL_TOKEN_FILE = "local-token"  # noqa: S105 - a file name, not a secret


def create_user(engine: sa.Engine, *, name: str, email: str, login: str | None = None) -> User:
    name, email = name.strip(), email.strip()
    if not name:
        raise InvalidInput("a user needs a name")
    if email and ("@" not in email or len(email) > 320):
        raise InvalidInput(f"not an email address: {email!r}")
    with session_scope(engine) as db:
        user = User(name=name, email=email, login=login)
        db.add(user)
        db.flush()
        db.refresh(user)
        return user


def issue_api_token(engine: sa.Engine, user_id: int, *, name: str = "") -> str:
    """Create a personal API token for a user; the plaintext is returned once, never stored."""
    token = tokens.mint(tokens.API_PREFIX)
    with session_scope(engine) as db:
        db.add(
            ApiToken(
                user_id=user_id, name=name, token_hash=tokens.hash_token(token), prefix=tokens.display_prefix(token)
            )
        )
    return token


def revoke_api_token(engine: sa.Engine, user_id: int, token_id: int) -> None:
    with session_scope(engine) as db:
        row = db.get(ApiToken, token_id)
        if row is None or row.user_id != user_id:
            raise InvalidInput("no such token")
        row.revoked_at = utcnow()


def user_for_token(engine: sa.Engine, token: str) -> User:
    """The user a bearer API token belongs to; Unauthorized if unknown or revoked."""
    if not token.startswith(f"{tokens.API_PREFIX}_"):
        raise Unauthorized("invalid API token")
    with session_scope(engine) as db:
        row = db.exec(select(ApiToken).where(ApiToken.token_hash == tokens.hash_token(token))).first()
        if row is None or row.revoked_at is not None:
            raise Unauthorized("invalid API token")
        user = db.get(User, row.user_id)
        if user is None:
            raise Unauthorized("invalid API token")
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
            row.last_used_at = now  # throttled: a write per request would be most of a request's cost
        return user


def local_user(engine: sa.Engine) -> User | None:
    with session_scope(engine) as db:
        return db.exec(select(User).where(User.is_local == sa.true()).order_by(col(User.id))).first()


def ensure_local_user(engine: sa.Engine, *, name: str, email: str, data_dir: Path) -> User:
    """Local single-user mode: one local user, an admin, and its API token in DATA_DIR/local-token (0600).

    The token is created once; if the file was deleted, a fresh token replaces it.
    """
    with session_scope(engine) as db:
        user = db.exec(select(User).where(User.is_local == sa.true()).order_by(col(User.id))).first()
        if user is None:
            user = User(name=name, email=email, is_local=True)
            db.add(user)
        else:
            user.name, user.email = name, email
        user.is_admin = True  # the person running a local instance manages it
        db.flush()
        db.refresh(user)
    token_path = data_dir / LOCAL_TOKEN_FILE
    if token_path.exists():
        try:
            user_for_token(engine, token_path.read_text().strip())
            return user
        except Unauthorized:
            token_path.unlink()
    token = issue_api_token(engine, user.id, name="local")  # type: ignore[arg-type]
    private_dir(data_dir)
    fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return user


def list_api_tokens(engine: sa.Engine, user_id: int) -> list[ApiToken]:
    with session_scope(engine) as db:
        return list(db.exec(select(ApiToken).where(ApiToken.user_id == user_id).order_by(col(ApiToken.id))).all())


def by_github_login(engine: sa.Engine, login: str) -> User | None:
    """The Inspect user who signed in with this GitHub login (GitHub logins are case-insensitive)."""
    if not login:
        return None
    with session_scope(engine) as db:
        return db.exec(select(User).where(sa.func.lower(User.login) == login.lower())).first()

"""Signing a browser in without GitHub: the one-time link printed at start, or a pasted API token.

Both end in the same web session GitHub sign-in makes (an API token named ``web-session`` that the
browser holds only in the HttpOnly ``inspect_session`` cookie), so one cookie serves both modes.

The link's token is kept only as a SHA-256 hash with its expiry, in ``DATA_DIR/login-link`` (0600):
the file is written by ``python -m inspect_app.serve`` before the server starts and read by whichever
server worker gets the request. Invariants: a link works once (the worker that unlinks the file
wins; a wrong token does not use it up), never after ``LOGIN_LINK_TTL``, and only for the local user.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from inspect_app.control import tokens
from inspect_app.control.data import users
from inspect_app.control.data.auth import SESSION_TOKEN_NAME
from inspect_app.errors import Unauthorized
from inspect_app.models import User, utcnow

LOGIN_LINK_FILE = "login-link"
LOGIN_LINK_PREFIX = "lnk"
LOGIN_LINK_TTL = timedelta(minutes=15)
_USED = "this sign-in link was already used, has expired, or is not this server's"


def issue_login_link(data_dir: Path, *, now: datetime | None = None) -> str:
    """A new one-time sign-in token (it replaces any earlier one); only its hash is written."""
    token = tokens.mint(LOGIN_LINK_PREFIX)
    expires = (now or utcnow()) + LOGIN_LINK_TTL
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOGIN_LINK_FILE
    scratch = path.with_name(f".{LOGIN_LINK_FILE}.{os.getpid()}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{tokens.hash_token(token)} {expires.isoformat()}\n")
    scratch.replace(path)  # readers see the old link or the new one, never half a file
    return token


def redeem_login_link(engine: sa.Engine, data_dir: Path, token: str, *, now: datetime | None = None) -> str:
    """A web session for the local user in exchange for the link's token; Unauthorized otherwise."""
    path = data_dir / LOGIN_LINK_FILE
    try:
        token_hash, expires = path.read_text().split()
        expires_at = datetime.fromisoformat(expires)
    except (OSError, ValueError):
        raise Unauthorized(_USED) from None
    if not token.startswith(f"{LOGIN_LINK_PREFIX}_") or not tokens.matches(token, token_hash):
        raise Unauthorized(_USED)
    try:
        path.unlink()  # the claim: of two requests racing with the same link, one unlinks it
    except FileNotFoundError:
        raise Unauthorized(_USED) from None
    if (now or utcnow()) >= expires_at:
        raise Unauthorized(_USED)
    user = users.local_user(engine)
    if user is None:
        raise Unauthorized("this instance has no local user (GitHub sign-in is configured)")
    return start_session(engine, user)


def session_for_api_token(engine: sa.Engine, api_token: str) -> tuple[User, str]:
    """A new web session for the owner of a personal API token pasted at /login.

    The cookie gets a session of its own rather than the pasted token, so signing out (which
    revokes the cookie's token) never revokes a token the person still uses elsewhere."""
    user = users.user_for_token(engine, api_token.strip())
    return user, start_session(engine, user)


def start_session(engine: sa.Engine, user: User) -> str:
    return users.issue_api_token(engine, user.id or 0, name=SESSION_TOKEN_NAME)

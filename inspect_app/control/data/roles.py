"""Roles: admins manage the instance; everyone else prompts and manages their own API tokens.

Admin-only: secrets (global and per repository, provider keys among them), instance settings (the
default model, Slack channel routing) and repositories (register, describe, prebuild, rebuild).
Each control function that reads or changes those calls ``require_admin`` first, so the API, the
Settings page and any other edge are held to the one rule, checked against the database at the time
of the action.

Who is an admin is stored (``users.is_admin``): the local user (made one at every local-mode
start), the GitHub logins in ``INSPECT_ADMIN_USERS`` (made one when they sign in), and whoever
``python -m inspect_app.admin grant`` names (``revoke`` undoes it).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col, func, select

from inspect_app.db import session_scope
from inspect_app.errors import Forbidden, InvalidInput, NotFound
from inspect_app.models import User


def is_admin(engine: sa.Engine, user_id: int) -> bool:
    with session_scope(engine) as db:
        user = db.get(User, user_id)
        return user is not None and user.is_admin


def require_admin(engine: sa.Engine, user_id: int, action: str) -> None:
    """Raise Forbidden unless the user is an admin; ``action`` completes "only an admin can …"."""
    if not is_admin(engine, user_id):
        raise Forbidden(f"only an admin can {action}", code="admin_only")


def set_admin(engine: sa.Engine, *, admin: bool, email: str = "", login: str = "") -> User:
    """Grant (or revoke) the admin role of the user with this GitHub login, else this email."""
    if not (email or login):
        raise InvalidInput("name the user by --email or --login")
    with session_scope(engine) as db:
        query = select(User).order_by(col(User.id))
        if login:
            query = query.where(func.lower(User.login) == login.lower())
        else:
            query = query.where(func.lower(User.email) == email.lower())
        user = db.exec(query).first()
        if user is None:
            raise NotFound(f"no user with {'login' if login else 'email'} {login or email!r}")
        user.is_admin = admin
        return user

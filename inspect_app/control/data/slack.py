"""What the Slack bot keeps: threads that are sessions, channels tied to a repository, and the
Inspect person behind a Slack user (matched by email, else created under their Slack name)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import func, select

from inspect_app.control.data import instance, roles, users
from inspect_app.db import session_scope
from inspect_app.errors import NotFound
from inspect_app.models import Repository, SlackThread, User


def thread_session(engine: sa.Engine, channel: str, thread_ts: str) -> str | None:
    with session_scope(engine) as db:
        row = db.exec(
            select(SlackThread).where(SlackThread.channel == channel, SlackThread.thread_ts == thread_ts)
        ).first()
        return row.session_id if row is not None else None


def link_thread(engine: sa.Engine, *, team: str, channel: str, thread_ts: str, session_id: str) -> None:
    with session_scope(engine) as db:
        db.add(SlackThread(team_id=team, channel=channel, thread_ts=thread_ts, session_id=session_id))


def _channel_key(channel: str) -> str:
    return f"slack_channel:{channel}"


def channel_repository(engine: sa.Engine, channel: str) -> int | None:
    value = instance.get(engine, _channel_key(channel))
    return int(value) if value and value.isdigit() else None


def associate_channel(engine: sa.Engine, channel: str, repository_id: int, *, actor_id: int) -> None:
    roles.require_admin(engine, actor_id, "route Slack channels")
    with session_scope(engine) as db:
        if db.get(Repository, repository_id) is None:
            raise NotFound(f"no repository {repository_id}")
    instance.put(engine, _channel_key(channel), str(repository_id))


def person(engine: sa.Engine, *, email: str, name: str) -> User:
    """The Inspect user with this email (their GitHub identity, if any, comes along), else a new one."""
    if email:
        with session_scope(engine) as db:
            found = db.exec(select(User).where(func.lower(User.email) == email.lower())).first()
        if found is not None:
            return found
    return users.create_user(engine, name=name or "Slack user", email=email)

"""MCP servers and skills as stored (rules in ``control/agent_extensions.py``). Admins only change them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from inspect_app.control import agent_extensions as rules
from inspect_app.control.data import roles
from inspect_app.db import session_scope
from inspect_app.errors import Conflict, InvalidInput, NotFound
from inspect_app.models import AgentExtension, Repository


def add(
    engine: sa.Engine, *, kind: str, name: str, config: dict[str, Any], repository_id: int | None, actor_id: int
) -> AgentExtension:
    roles.require_admin(engine, actor_id, "change the agents' MCP servers and skills")
    checked = rules.check(kind, name, config)
    with session_scope(engine) as db:
        if repository_id is not None and db.get(Repository, repository_id) is None:
            raise InvalidInput(f"no repository {repository_id}")
        taken = db.exec(
            select(AgentExtension).where(AgentExtension.repository_id == repository_id, AgentExtension.name == name)
        ).first()
        if taken is not None:
            raise Conflict(f"{name!r} exists already here; delete it first", code="extension_exists")
        row = AgentExtension(repository_id=repository_id, kind=kind, name=name, config=checked)
        db.add(row)
        db.flush()
        return row


def delete(engine: sa.Engine, extension_id: int, *, actor_id: int) -> None:
    roles.require_admin(engine, actor_id, "change the agents' MCP servers and skills")
    with session_scope(engine) as db:
        row = db.get(AgentExtension, extension_id)
        if row is None:
            raise NotFound(f"no MCP server or skill {extension_id}")
        db.delete(row)


def listing(engine: sa.Engine) -> list[AgentExtension]:
    with session_scope(engine) as db:
        return list(
            db.exec(select(AgentExtension).order_by(col(AgentExtension.repository_id), col(AgentExtension.name))).all()
        )


def for_repository(engine: sa.Engine, repository_id: int) -> list[rules.Extension]:
    """What a session of this repository's agent gets: the global ones, replaced by its own by name."""
    with session_scope(engine) as db:
        rows = db.exec(
            select(AgentExtension).where(
                sa.or_(col(AgentExtension.repository_id).is_(None), col(AgentExtension.repository_id) == repository_id)
            )
        ).all()
        found = [(r.repository_id, rules.Extension(r.kind, r.name, dict(r.config))) for r in rows]
    return rules.merged([e for scope, e in found if scope is None], [e for scope, e in found if scope is not None])

"""Instance-wide settings changed at run time (Settings page, admins only), falling back to the configuration."""

from __future__ import annotations

import re

import sqlalchemy as sa

from inspect_app.control.data import roles
from inspect_app.db import session_scope
from inspect_app.errors import InvalidInput
from inspect_app.models import InstanceSetting, utcnow

DEFAULT_MODEL = "default_model"
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._:/@-]*$")


def get(engine: sa.Engine, key: str) -> str | None:
    with session_scope(engine) as db:
        row = db.get(InstanceSetting, key)
        return row.value if row is not None else None


def put(engine: sa.Engine, key: str, value: str) -> None:
    with session_scope(engine) as db:
        row = db.get(InstanceSetting, key)
        if row is None:
            db.add(InstanceSetting(key=key, value=value))
        else:
            row.value, row.updated_at = value, utcnow()


def default_model(engine: sa.Engine, configured: str) -> str:
    """The model new sessions use: the one chosen in Settings, else the configured default."""
    return get(engine, DEFAULT_MODEL) or configured


def set_default_model(engine: sa.Engine, model: str, *, actor_id: int) -> str:
    roles.require_admin(engine, actor_id, "change the default model")
    model = model.strip()
    if not valid_model(model):
        raise InvalidInput("a model is written provider/model, e.g. anthropic/claude-sonnet-4-5", code="bad_model")
    put(engine, DEFAULT_MODEL, model)
    return model


def valid_model(model: str) -> bool:
    return len(model) <= 200 and bool(_MODEL.match(model))

"""``/api/agent-extensions``: the MCP servers and skills agents get, for every repository or one
(``control/agent_extensions.py``). Anyone signed in reads them (secrets appear as references only);
admins add and delete."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from inspect_app.api.deps import CurrentUser, ServicesDep
from inspect_app.control.data import agent_extensions
from inspect_app.models import AgentExtension

router = APIRouter(prefix="/api/agent-extensions", tags=["agent"])


class ExtensionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["mcp_local", "mcp_remote", "skill"]
    name: str = Field(max_length=40)
    repository_id: int | None = Field(default=None, description="None: every repository")
    config: dict[str, Any]


def _public(row: AgentExtension) -> dict[str, Any]:
    return {"id": row.id, "kind": row.kind, "name": row.name, "repository_id": row.repository_id, "config": row.config}


@router.get("")
async def listing(services: ServicesDep, _user: CurrentUser) -> dict[str, Any]:
    return {"extensions": [_public(r) for r in await asyncio.to_thread(agent_extensions.listing, services.engine)]}


@router.post("", status_code=201)
async def add(body: ExtensionCreate, services: ServicesDep, user: CurrentUser) -> dict[str, Any]:
    row = await asyncio.to_thread(
        lambda: agent_extensions.add(
            services.engine,
            kind=body.kind,
            name=body.name,
            config=body.config,
            repository_id=body.repository_id,
            actor_id=user.id or 0,
        )
    )
    return _public(row)


@router.delete("/{extension_id}", status_code=204)
async def delete(extension_id: int, services: ServicesDep, user: CurrentUser) -> None:
    await asyncio.to_thread(agent_extensions.delete, services.engine, extension_id, actor_id=user.id or 0)

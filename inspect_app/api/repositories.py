"""``/api/repositories``: register and list repositories; repository secrets."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response

from inspect_app.api.deps import CurrentUser, ServicesDep
from inspect_app.api.schemas import RepositoryCreate, RepositoryPublic, SecretPut
from inspect_app.control import repositories, secrets
from inspect_app.models import Repository

router = APIRouter(prefix="/api", tags=["repositories"])


def public(repo: Repository) -> RepositoryPublic:
    return RepositoryPublic.model_validate(repo, from_attributes=True)


@router.post("/repositories", status_code=201, response_model=RepositoryPublic)
async def register(body: RepositoryCreate, services: ServicesDep, _user: CurrentUser) -> RepositoryPublic:
    repo = await asyncio.to_thread(repositories.register, services.engine, body.url, description=body.description)
    return public(repo)


@router.get("/repositories", response_model=list[RepositoryPublic])
async def list_repositories(services: ServicesDep, _user: CurrentUser) -> list[RepositoryPublic]:
    return [public(r) for r in await asyncio.to_thread(repositories.list_all, services.engine)]


@router.put("/repositories/{repository_id}/secrets/{key}", status_code=204)
async def put_repository_secret(
    repository_id: int, key: str, body: SecretPut, services: ServicesDep, _user: CurrentUser
) -> Response:
    await asyncio.to_thread(secrets.put, services.engine, services.cipher, key, body.value, repository_id=repository_id)
    return Response(status_code=204)


@router.put("/secrets/{key}", status_code=204)
async def put_global_secret(key: str, body: SecretPut, services: ServicesDep, _user: CurrentUser) -> Response:
    await asyncio.to_thread(secrets.put, services.engine, services.cipher, key, body.value)
    return Response(status_code=204)


@router.get("/secrets")
async def list_secret_names(services: ServicesDep, _user: CurrentUser) -> dict[str, list[str]]:
    """Names only: secret values are write-only."""
    return {"names": await asyncio.to_thread(secrets.names, services.engine)}

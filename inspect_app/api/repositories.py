"""``/api/repositories``: register and list repositories; repository secrets. Changes are admin-only (control/roles)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response

from inspect_app.api.deps import CurrentUser, ServicesDep
from inspect_app.api.schemas import (
    GitHubRepositoryPublic,
    RepositoryCreate,
    RepositoryId,
    RepositoryPublic,
    RepositoryUpdate,
    SecretPut,
)
from inspect_app.control import prebuild
from inspect_app.control.data import repositories, secrets
from inspect_app.models import Repository

router = APIRouter(prefix="/api", tags=["repositories"])


def public(repo: Repository) -> RepositoryPublic:
    return RepositoryPublic.model_validate(repo, from_attributes=True)


@router.post("/repositories", status_code=201, response_model=RepositoryPublic)
async def register(body: RepositoryCreate, services: ServicesDep, user: CurrentUser) -> RepositoryPublic:
    if body.github is not None:
        repo = await asyncio.to_thread(
            repositories.register_github,
            services.engine,
            services.github_app,
            body.github,
            actor_id=user.id or 0,
            web_url=services.settings.github_web_url,
        )
    else:
        repo = await asyncio.to_thread(
            repositories.register,
            services.engine,
            body.url or "",
            actor_id=user.id or 0,
            description=body.description,
            protected=services.settings.protected_paths,
        )
    return public(repo)


@router.get("/github/repositories", response_model=list[GitHubRepositoryPublic])
async def github_repositories(services: ServicesDep, user: CurrentUser) -> list[GitHubRepositoryPublic]:
    """What the GitHub App's installations reach (empty without an App), to pick from."""
    found = await asyncio.to_thread(
        repositories.github_choices, services.engine, services.github_app, actor_id=user.id or 0
    )
    return [
        GitHubRepositoryPublic(
            full_name=info.full_name,
            default_branch=info.default_branch,
            description=info.description,
            private=info.private,
            registered=registered,
        )
        for info, registered in found
    ]


@router.patch("/repositories/{repository_id}", response_model=RepositoryPublic)
async def update(
    repository_id: RepositoryId, body: RepositoryUpdate, services: ServicesDep, user: CurrentUser
) -> RepositoryPublic:
    repo = await asyncio.to_thread(
        repositories.describe,
        services.engine,
        repository_id,
        actor_id=user.id or 0,
        description=body.description,
        keywords=body.keywords,
    )
    if body.egress_hosts is not None:
        repo = await asyncio.to_thread(
            repositories.set_egress_hosts, services.engine, repository_id, body.egress_hosts, actor_id=user.id or 0
        )
    if body.child_repositories is not None:
        repo = await asyncio.to_thread(
            repositories.set_child_repositories,
            services.engine,
            repository_id,
            body.child_repositories,
            actor_id=user.id or 0,
        )
    return public(repo)


@router.get("/repositories", response_model=list[RepositoryPublic])
async def list_repositories(services: ServicesDep, _user: CurrentUser) -> list[RepositoryPublic]:
    return [public(r) for r in await asyncio.to_thread(repositories.list_all, services.engine)]


@router.get("/github/repositories/{owner}/{name}/branches")
async def github_branches(owner: str, name: str, services: ServicesDep, _user: CurrentUser) -> dict[str, list[str]]:
    """The branches of a repository the App reaches (to start a session on one)."""
    return {"branches": await asyncio.to_thread(repositories.github_branches, services.github_app, owner, name)}


@router.post("/repositories/{repository_id}/rebuild", status_code=202)
async def rebuild(repository_id: RepositoryId, services: ServicesDep, user: CurrentUser) -> dict[str, str]:
    """Build the repository's image now, in the background (a build already running is not doubled)."""
    await services.prebuilds.rebuild_now(repository_id, actor_id=user.id or 0)
    return {"status": "started"}


@router.get("/repositories/{repository_id}/image")
async def latest_image(repository_id: RepositoryId, services: ServicesDep, _user: CurrentUser) -> dict[str, object]:
    """The repository's newest prebuilt image: status (building, ready, failed, stale), commit, log tail."""
    await asyncio.to_thread(repositories.get, services.engine, repository_id)
    found = (await asyncio.to_thread(prebuild.latest_images, services.engine, repository_id)).get(repository_id)
    return {"image": found.__dict__ if found else None}


@router.put("/repositories/{repository_id}/secrets/{key}", status_code=204)
async def put_repository_secret(
    repository_id: RepositoryId, key: str, body: SecretPut, services: ServicesDep, user: CurrentUser
) -> Response:
    await asyncio.to_thread(
        secrets.put,
        services.engine,
        services.cipher,
        key,
        body.value,
        actor_id=user.id or 0,
        repository_id=repository_id,
    )
    return Response(status_code=204)


@router.put("/secrets/{key}", status_code=204)
async def put_global_secret(key: str, body: SecretPut, services: ServicesDep, user: CurrentUser) -> Response:
    await asyncio.to_thread(secrets.put, services.engine, services.cipher, key, body.value, actor_id=user.id or 0)
    return Response(status_code=204)


@router.get("/secrets")
async def list_secret_names(services: ServicesDep, user: CurrentUser) -> dict[str, list[str]]:
    """Names only: secret values are write-only."""
    return {"names": await asyncio.to_thread(secrets.names, services.engine, actor_id=user.id or 0)}

"""A local-mode instance in this process: the real API app on httpx's ASGI transport, no server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from inspect_app import services
from inspect_app.api.app import build_api
from inspect_app.boot import prepare
from inspect_app.settings import Settings


@dataclass(frozen=True)
class LocalInstance:
    settings: Settings
    client: httpx.AsyncClient
    admin: dict[str, str]  # the local user's Authorization header (the local user is the admin)

    @property
    def engine(self) -> sa.Engine:
        return services.current().engine


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def asgi(method: str, path: str, *, token: str, **kwargs: Any) -> httpx.Response:
    """One request to the installed services' API, in process, as the token's holder."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_api()), base_url="http://t") as http:
        return await http.request(method, path, headers=bearer(token), **kwargs)


@contextlib.asynccontextmanager
async def local_instance(data_dir: Path, **more: Any) -> AsyncIterator[LocalInstance]:
    settings = Settings(_env_file=None, data_dir=data_dir, local_user_name="Ada", **more)  # type: ignore[call-arg]
    services.install(prepare(settings).services)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=build_api()), base_url="http://testserver")
    try:
        yield LocalInstance(settings, client, bearer((data_dir / "local-token").read_text().strip()))
    finally:
        await client.aclose()
        services.current().engine.dispose()
        services.install(None)

"""Fixtures shared by the integration modules.

- ``llm`` and ``server``: a scripted model and a real server (local sandboxes, the real OpenCode)
  on it, one of each per module; a module adds settings with ``SERVER_ENV``.
- ``core``: the real services on an in-process plane with in-loop sandboxes, installed as the
  process's services (what the API's routes use), for tests that call the API through ASGI.
  Modules that define their own ``core`` or ``server`` use theirs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from inspect_app import services
from inspect_app.settings import Settings
from tests.fakes.llm_server import MODEL, FakeLLM
from tests.integration.sandbox_harness import require_opencode
from tests.integration.test_plane_core import Core, running_core
from tests.servers import RunningServer, start_server


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, llm: FakeLLM, request: pytest.FixtureRequest
) -> Iterator[RunningServer]:
    require_opencode()
    env = {"INSPECT_IDLE_TIMEOUT_S": "600", **getattr(request.module, "SERVER_ENV", {})}
    running = start_server(
        tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]),
        INSPECT_LLM_BASE_URL=llm.base_url,
        INSPECT_LLM_MODEL=MODEL,
        **env,
    )
    yield running
    running.stop()


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[Core]:
    async with running_core(Settings(_env_file=None, data_dir=tmp_path / "data")) as running:  # type: ignore[call-arg]
        services.install(running.services)
        try:
            yield running
        finally:
            services.install(None)

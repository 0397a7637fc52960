"""Resource limits, tried as a runaway agent would: memory without bound, processes without bound.

Needs root and writable cgroup controllers (CI has both); elsewhere the limits cannot be applied and
these tests say so.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.providers.limits import Cgroups, Limits
from sandbox.providers.local import LocalProvider
from sandbox.providers.processes import descendants
from tests.conftest import IN_CI
from tests.fakes.llm_server import FakeLLM
from tests.integration.sandbox_harness import (
    OPENCODE_BIN,
    PLUGIN_TEMPLATE,
    agent_runs,
    local_sandbox,
    make_origin,
    process_alive,
    require_opencode,
)

pytestmark = pytest.mark.timeout(240)

MEMORY_MB = 1536  # above an idle OpenCode (~450 MB), far below what the attack asks for
MAX_PROCESSES = 256


@pytest.fixture(autouse=True)
def _needs_limits() -> None:
    require_opencode()
    if os.geteuid() != 0 or Cgroups.detect() is None:
        message = "resource limits need root and writable cgroup controllers"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
async def provider(tmp_path: Path) -> AsyncIterator[LocalProvider]:
    limited = LocalProvider(
        data_dir=tmp_path / "data",
        opencode_bin=str(OPENCODE_BIN),
        plugin_template=PLUGIN_TEMPLATE,
        limits=Limits(memory_mb=MEMORY_MB, max_processes=MAX_PROCESSES, cpu_weight=100),
    )
    yield limited
    await limited.close()


async def test_a_sandbox_over_its_memory_loses_that_process_alone(provider: LocalProvider, tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    llm = FakeLLM()
    async with local_sandbox(tmp_path / "data", origin, llm, provider=provider) as sb:
        await sb.control.wait_type("ready", timeout=90)
        assert provider.oom_kills(sb.handle) == 0
        out = f"{sb.inner_root}/state/hog.txt"
        await agent_runs(sb, llm, f"python3 -c 'x = b\"x\" * (6 << 30)'; echo exit=$? > {out}", "hog")
        assert (sb.root / "state" / "hog.txt").read_text().strip() == "exit=137"  # SIGKILL, by the kernel
        assert provider.oom_kills(sb.handle) >= 1
        assert process_alive(int(sb.handle.provider_id))  # the sandbox itself (and its agent) lives on
        await agent_runs(sb, llm, f"echo still here > {sb.inner_root}/state/after.txt", "after")
        assert (sb.root / "state" / "after.txt").read_text() == "still here\n"


async def test_a_fork_bomb_stays_inside_its_sandbox(provider: LocalProvider, tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    llm = FakeLLM()
    bomb = "sh -c 'i=0; while [ $i -lt 1000 ]; do sleep 60 & i=$((i+1)); done' >/dev/null 2>&1; true"
    async with local_sandbox(tmp_path / "data", origin, llm, provider=provider, session_id="bomb") as bomber:
        await bomber.control.wait_type("ready", timeout=90)
        await agent_runs(bomber, llm, bomb, "bomb")
        tree = len(descendants(int(bomber.handle.provider_id)))
        assert MAX_PROCESSES // 2 < tree <= MAX_PROCESSES  # it forked a lot, then no more
        async with local_sandbox(tmp_path / "data", origin, llm, provider=provider, session_id="other") as other:
            await other.control.wait_type("ready", timeout=90)
            await agent_runs(other, llm, f"echo fine > {other.inner_root}/state/ok.txt", "other")
            assert (other.root / "state" / "ok.txt").read_text() == "fine\n"

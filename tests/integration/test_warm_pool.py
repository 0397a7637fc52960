"""The warm pool with the local provider: real sandboxes booted from a prebuilt image before any
session exists, handed to a session on its image start, refilled, retired when the settings move."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from sandbox.protocol import Author, ParkCommand, PromptCommand, ShutdownCommand, SnapshotCommand
from sandbox.providers.base import SandboxSpec
from sandbox.providers.local import LocalProvider
from sandbox.providers.processes import descendants
from tests.fakes.llm_server import FakeLLM, ToolCall, Turn
from tests.integration.sandbox_harness import (
    OPENCODE_BIN,
    PLUGIN_TEMPLATE,
    environments,
    local_sandbox,
    make_origin,
    make_spec,
    process_alive,
    require_opencode,
    until,
)
from tests.integration.test_prebuild import add_commit

pytestmark = pytest.mark.timeout(240)

# setup.sh marks each run; start.sh each boot (a pooled sandbox runs it before it is claimed)
FILES = {".inspect/setup.sh": "echo ran >> .setup-runs\n", ".inspect/start.sh": "echo started >> .start-runs\n"}


def pool_of(origin: Path) -> tuple[str, str]:
    return (str(origin), "main")


ADA = Author(name="Ada Lovelace", email="ada@example.com")


@pytest.fixture(autouse=True)
def _needs_opencode() -> None:
    require_opencode()


@pytest.fixture
async def built(tmp_path: Path) -> tuple[LocalProvider, Path, str]:
    data = tmp_path / "data"
    provider = LocalProvider(data_dir=data, opencode_bin=str(OPENCODE_BIN), plugin_template=PLUGIN_TEMPLATE)
    if not provider.isolated:
        pytest.skip("the warm pool needs bubblewrap")
    origin = make_origin(tmp_path, FILES)
    build = SandboxSpec(session_id="b", sandbox_id="b", repo_url=str(origin), branch="main", bridge_url="", token="")
    result = await provider.build_image(build, timeout_s=300)
    assert result.ok, result.log_tail
    yield provider, origin, result.ref
    await provider.close()


def like_sessions(origin: Path, llm: FakeLLM, **changes: object) -> SandboxSpec:
    """What every session of the harness shares (its identity is the claim's business)."""
    spec = make_spec(origin, llm, SimpleNamespace(url=""), sandbox_id="", token="")  # type: ignore[arg-type]
    return dataclasses.replace(spec, **changes)  # type: ignore[arg-type]


async def standby_ready(provider: LocalProvider, origin: Path) -> Path:
    """The root of a pooled sandbox that finished booting (OpenCode warm)."""
    await provider.pool.settled()
    booted = await until(lambda: [s.root for s in provider.pool.standbys(pool_of(origin)) if s.ready], "a standby")
    return booted[0]


async def test_a_session_gets_the_pooled_sandbox_then_the_pool_refills(
    built: tuple[LocalProvider, Path, str], tmp_path: Path
) -> None:
    provider, origin, image = built
    llm = FakeLLM()
    await provider.prewarm(image, like_sessions(origin, llm), 1)
    standby = await standby_ready(provider, origin)
    [pooled] = provider.pool.standbys(pool_of(origin))
    newest = add_commit(origin, tmp_path, "After the pool filled")  # the standby is one commit behind

    started = time.monotonic()
    async with local_sandbox(tmp_path / "data", origin, llm, image=image, provider=provider) as sb:
        ready = await sb.control.wait_type("ready", timeout=60)
        claimed_in = time.monotonic() - started
        assert sb.handle.provider_id == str(pooled.process.pid)  # the standby's process, not a new one
        assert not standby.exists() and sb.root.is_dir()  # its directory now bears the session's name
        assert ready.boot_mode == "image" and ready.sandbox_id == sb.spec.sandbox_id
        assert ready.commit == newest and ready.branch == "inspect/sess-1"  # synced when claimed
        assert (sb.workspace / ".setup-runs").read_text() == "ran\n"  # setup.sh: the build's run only
        assert (sb.workspace / ".start-runs").read_text() == "started\n"  # start.sh: once, while pooled
        assert not (sb.root / "state" / "claim.json").exists()  # it held the tokens
        written = [p for p in (sb.root / "state").rglob("*") if p.is_file() and not p.is_symlink()]
        assert all(sb.spec.token.encode() not in p.read_bytes() for p in written)  # the claim came by pipe
        print(f"claimed pooled sandbox ready in {claimed_in:.2f}s")

        # the agent (started before the session existed) works for the session
        llm.add(
            Turn(tool_calls=[ToolCall("bash", {"command": "git log -1 --format=%s", "description": "log"})]),
            Turn(text="Up to date."),
        )
        await sb.control.send(PromptCommand(message_id="m1", content="Where are we?", author=ADA))
        done = await sb.control.wait_type("execution_complete", message_id="m1", timeout=60)
        assert done.success
        outputs = [m.output for m in sb.control.of_type("tool_call") if m.status == "completed"]
        assert any("After the pool filled" in (o or "") for o in outputs), outputs

        # the pool refilled behind the claim, with a new sandbox
        refill = await standby_ready(provider, origin)
        assert refill != standby and len(provider.pool.standbys(pool_of(origin))) == 1

        # a snapshot of the once-pooled sandbox restores with its conversation (one path for all)
        await sb.control.send(SnapshotCommand())
        await sb.control.wait_type("snapshot_ready", timeout=30)
        ref = await provider.snapshot(sb.handle)
        assert not (tmp_path / "data" / "snapshots" / ref / "state" / "tool-token").exists()
        await sb.control.send(ShutdownCommand())
        await asyncio.sleep(0.5)
    async with local_sandbox(tmp_path / "data", origin, llm, restore_from=ref, provider=provider) as restored:
        again = await restored.control.wait_type("ready", timeout=90)
        assert again.agent_session_id == ready.agent_session_id


async def test_only_sessions_like_the_pool_get_it_and_new_settings_retire_it(
    built: tuple[LocalProvider, Path, str], tmp_path: Path
) -> None:
    provider, origin, image = built
    llm = FakeLLM()
    await provider.prewarm(image, like_sessions(origin, llm), 1)
    old = await standby_ready(provider, origin)
    [old_standby] = provider.pool.standbys(pool_of(origin))

    # a session with another secret than the pool was started with boots on its own
    other = like_sessions(origin, llm, secrets={"NPM_TOKEN": "rotated"})
    assert provider.pool.take(image, dataclasses.replace(other, session_id="s-2", sandbox_id="x")) is None
    assert len(provider.pool.standbys(pool_of(origin))) == 1

    # once the settings say so, the pool is replaced: the old standby stops and its directory goes
    await provider.prewarm(image, other, 1)
    new = await standby_ready(provider, origin)
    assert new != old and not process_alive(old_standby.process.pid)
    await provider.pool.settled()
    await until(lambda: not old.exists(), "the old standby's directory to go", 10)
    assert not old.exists()
    [new_standby] = provider.pool.standbys(pool_of(origin))
    tree = [new_standby.process.pid, *descendants(new_standby.process.pid)]
    env = b"\n".join((await asyncio.to_thread(environments, tree)).values())
    assert b"NPM_TOKEN=rotated" in env and b"SANDBOX_TOKEN=" not in env  # no identity before a claim

    # 0 empties it
    await provider.prewarm(image, other, 0)
    await provider.pool.settled()
    assert provider.pool.standbys(pool_of(origin)) == []


async def test_an_idle_sandbox_parks_and_its_restore_resumes_it(tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    llm = FakeLLM()
    data = tmp_path / "data"
    provider = LocalProvider(
        data_dir=data, opencode_bin=str(OPENCODE_BIN), plugin_template=PLUGIN_TEMPLATE, park_capacity=1, park_ttl_s=60
    )
    async with local_sandbox(data, origin, llm, provider=provider) as sb:
        first = await sb.control.wait_type("ready", timeout=90)
        llm.add(Turn(tool_calls=[ToolCall("bash", {"command": "echo kept > kept.txt", "description": "keep"})]))
        llm.add(Turn(text="Kept."))
        await sb.control.send(PromptCommand(message_id="m1", content="Keep a file", author=ADA))
        assert (await sb.control.wait_type("execution_complete", message_id="m1", timeout=60)).success
        await sb.control.send(SnapshotCommand())
        await sb.control.wait_type("snapshot_ready", timeout=30)
        ref = await provider.snapshot(sb.handle)
        assert await provider.park(sb.handle, ref)
        await sb.control.send(ParkCommand())
        await until(lambda: not sb.control.connected, "it to leave this session's bridge", 10)
        assert not sb.control.connected
        parked_pid = int(sb.handle.provider_id)
        assert await provider.status(sb.handle) == "unknown"  # stop() no longer reaches it
    assert process_alive(parked_pid) and provider.parking.refs() == [ref]  # the harness's stop left it running

    started = time.monotonic()
    async with local_sandbox(data, origin, llm, restore_from=ref, provider=provider) as resumed:
        ready = await resumed.control.wait_type("ready", timeout=30)
        print(f"parked sandbox resumed in {time.monotonic() - started:.2f}s")
        assert resumed.handle.provider_id == str(parked_pid)  # the same process, not a copy
        assert ready.boot_mode == "snapshot_restore" and ready.sandbox_id == resumed.spec.sandbox_id
        assert ready.agent_session_id == first.agent_session_id and ready.commit == first.commit
        llm.add(Turn(tool_calls=[ToolCall("bash", {"command": "cat kept.txt", "description": "look"})]))
        llm.add(Turn(text="Still there."))
        await resumed.control.send(PromptCommand(message_id="m2", content="Still there?", author=ADA))
        assert (await resumed.control.wait_type("execution_complete", message_id="m2", timeout=60)).success
        outputs = [m.output for m in resumed.control.of_type("tool_call") if m.status == "completed"]
        assert any("kept" in (o or "") for o in outputs)
        assert provider.parking.refs() == []
    await provider.close()
    assert not process_alive(parked_pid)


async def test_parking_is_bounded_and_off_means_stop(tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    data = tmp_path / "data"
    provider = LocalProvider(
        data_dir=data, opencode_bin=str(OPENCODE_BIN), plugin_template=PLUGIN_TEMPLATE, park_capacity=1, park_ttl_s=3
    )
    off = LocalProvider(data_dir=tmp_path / "off", opencode_bin=str(OPENCODE_BIN), park_capacity=0)
    async with local_sandbox(data, origin, FakeLLM(), provider=provider) as sb:
        await sb.control.wait_type("ready", timeout=90)
        assert not await off.park(sb.handle, "snap_x")  # not its sandbox, and parking is off there
        assert await provider.park(sb.handle, "snap_a")
        pid = int(sb.handle.provider_id)
    await until(lambda: not process_alive(pid), "the time limit (3 s) to stop it", 20)
    assert not process_alive(pid) and provider.parking.refs() == []
    await provider.close()
    await off.close()

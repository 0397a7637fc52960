"""A local sandbox outlives the provider (the server) that started it, and the next one adopts it."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from sandbox.providers.base import Survivor
from sandbox.providers.local import LocalProvider
from sandbox.providers.processes import start_time
from sandbox.providers.records import RecordBook, SandboxRecord
from tests.fakes.control_plane import FakeControlPlane
from tests.fakes.llm_server import FakeLLM
from tests.integration.sandbox_harness import (
    OPENCODE_BIN,
    PLUGIN_TEMPLATE,
    make_origin,
    make_spec,
    process_alive,
    require_opencode,
    until,
)

pytestmark = pytest.mark.timeout(180)


def provider(data_dir: Path) -> LocalProvider:
    return LocalProvider(data_dir=data_dir, opencode_bin=str(OPENCODE_BIN), plugin_template=PLUGIN_TEMPLATE)


async def test_a_sandbox_outlives_its_server_and_the_next_one_adopts_it(tmp_path: Path) -> None:
    require_opencode()
    data = tmp_path / "data"
    first = provider(data)
    if not first.isolated:
        pytest.skip("needs bubblewrap")
    token = f"sbx_{secrets.token_urlsafe(16)}"
    with FakeLLM() as llm:
        control = await FakeControlPlane(token=token, sandbox_id="sbx-adopted").start()
        spec = make_spec(make_origin(tmp_path), llm, control, sandbox_id="sbx-adopted", token=token)
        handle = await first.spawn(spec)
        second = provider(data)
        try:
            await control.wait_type("ready", timeout=90)
            pid = int(handle.provider_id)
            await first.close(keep_running=True)  # the server exits
            await control.drop()  # and its connections with it
            assert process_alive(pid)

            # an earlier server's record that no database row claims is ended, not adopted; a row
            # with no process behind it is reported lost
            adoption = await second.adopt(
                [Survivor("sbx-adopted", "sess-1", str(pid)), Survivor("sbx-gone", "sess-2", "1")]
            )
            assert [h.sandbox_id for h in adoption.handles] == ["sbx-adopted"]
            assert "ended while the server was down" in adoption.lost["sbx-gone"]
            adopted = adoption.handles[0]
            assert await second.status(adopted) == "running"

            # it reconnects through the relay the new provider serves in the directory it has bound
            await until(lambda: control.connections >= 2 and len(control.of_type("ready")) >= 2, "a reconnect", 60)
            relays = list((data / "relays").iterdir())

            await second.stop(adopted)  # the adopted sandbox is the new server's to stop
            await until(lambda: not process_alive(pid), "the adopted sandbox to end", 30)
            assert await second.status(adopted) == "unknown"
            await until(lambda: not any(path.exists() for path in relays), "its relay directory to go", 10)
            assert not list((data / "running").iterdir())
        finally:
            await second.close()
            await first.close()
            await control.close()


async def test_a_reused_pid_is_not_taken_for_the_sandbox(tmp_path: Path) -> None:
    """A record names its process by pid and start time: another process with that pid (the
    sandbox ended, the pid was reused) is neither adopted nor killed."""
    data = tmp_path / "data"
    me = start_time(os.getpid())
    assert me is not None
    RecordBook(data / "running").write(
        SandboxRecord(sandbox_id="sbx-old", session_id="sess-1", pid=os.getpid(), started=me - 1)
    )
    adoption = await provider(data).adopt([Survivor("sbx-old", "sess-1", "")])
    assert adoption.handles == [] and "ended" in adoption.lost["sbx-old"]
    assert not list((data / "running").iterdir())  # and this test's own process lives on

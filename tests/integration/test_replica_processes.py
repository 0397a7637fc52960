"""Two real replicas (``python -m inspect_app.serve``) on one PostgreSQL and one Redis, sharing one
host's data directory, a real local sandbox with the real OpenCode, a scripted model. As an operator
adds capacity: starting the second replica leaves the first one's sandbox running; a prompt and a
stop sent through the second reach the sandbox the first serves, and the second one's WebSocket
clients watch it stream live."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from sandbox.providers.local import bwrap_works
from tests.fakes.llm_server import MODEL, FakeLLM, Turn
from tests.integration.sandbox_harness import make_origin, require_opencode, sandbox_processes, until
from tests.integration.stream_client import Client
from tests.integration.test_control_plane import _session_setup, _status, api
from tests.servers import start_server

pytestmark = [pytest.mark.timeout(600), pytest.mark.postgres]


def served_by(database: str, session_id: str) -> str:
    engine = sa.create_engine(database)
    try:
        with engine.connect() as conn:
            return conn.execute(
                sa.text("SELECT replica_id FROM sandboxes WHERE session_id = :s AND status = 'ready'"),
                {"s": session_id},
            ).scalar_one()
    finally:
        engine.dispose()


async def test_a_second_replica_serves_prompts_and_stops_for_the_first_ones_sandbox(
    postgres_database: str,
    redis_url: str,
    tmp_path: Path,
) -> None:
    database = postgres_database
    require_opencode()
    if not bwrap_works():
        pytest.skip("local sandboxes need bubblewrap")
    data = tmp_path / "data"
    with FakeLLM() as llm:
        env = {
            "INSPECT_DATABASE_URL": database,
            "INSPECT_REDIS_URL": redis_url,
            "INSPECT_LLM_BASE_URL": llm.base_url,
            "INSPECT_LLM_MODEL": MODEL,
            "INSPECT_REPLICA_TIMEOUT_S": "5",
        }
        a = start_server(tmp_path / "a", data_dir=data, INSPECT_REPLICA_ID="replica-a", **env)
        b = None
        session_id = ""
        try:
            session_id = _session_setup(a, make_origin(tmp_path))
            async with Client(a, session_id, a.token) as on_a:
                await on_a.wait(lambda m: _status(m, "ready"), "A's sandbox ready", 120)
            sandbox = sandbox_processes(session_id)
            assert sandbox and served_by(database, session_id) == "replica-a"

            b = start_server(tmp_path / "b", data_dir=data, INSPECT_REPLICA_ID="replica-b", **env)
            assert set(sandbox) <= set(sandbox_processes(session_id))  # B's start left it running
            with api(b, b.token) as http:
                assert http.get(f"/api/sessions/{session_id}").json()["session"]["status"] == "ready"

            async with Client(b, session_id, b.token) as on_b:
                llm.add(Turn(text="slow " * 200, chunk_delay_s=0.05, chunk_size=5), Turn(text="Answered through B."))
                await on_b.send({"type": "prompt", "content": "Take your time", "client_request_id": "p1"})
                first = (await on_b.wait(lambda m: m["type"] == "prompt_accepted", "accepted"))["message_id"]
                await on_b.wait(lambda m: m["type"] == "token" and m["message_id"] == first, "tokens on B", 60)
                with api(b, b.token) as http:
                    stopped = http.post(f"/api/sessions/{session_id}/stop")
                    assert stopped.status_code in (200, 202), stopped.text
                end = await on_b.wait(
                    lambda m: m["type"] == "execution_complete" and m["message_id"] == first, "the stop", 60
                )
                assert end["data"]["success"] is False

                await on_b.send({"type": "prompt", "content": "And now", "client_request_id": "p2"})
                accepted = await on_b.wait(lambda m: m["type"] == "prompt_accepted" and m["message_id"] != first, "2nd")
                second = accepted["message_id"]
                done = await on_b.wait(
                    lambda m: m["type"] == "execution_complete" and m["message_id"] == second, "the answer", 60
                )
                assert done["data"]["success"] is True
            assert served_by(database, session_id) == "replica-a"  # it ran on A's sandbox all along
            assert set(sandbox) <= set(sandbox_processes(session_id))
            with api(b, b.token) as http:
                events = http.get(f"/api/sessions/{session_id}/events", params={"limit": 500}).json()["events"]
            seqs = [e["seq"] for e in events]
            assert seqs == list(range(1, len(seqs) + 1))  # from two writers: no gap, no duplicate
            texts = [e["data"]["text"] for e in events if e["type"] == "text" and e["message_id"] == second]
            assert texts == ["Answered through B."]

            # a deploy takes A away for good: once it is silent, B takes over its sandbox, which
            # reconnects to B (the same host's data directory) and goes on with the next prompt
            a.stop(keep_sandboxes=True)
            await until(lambda: served_by(database, session_id) == "replica-b", "B to adopt the sandbox", 60)
            async with Client(b, session_id, b.token) as on_b:
                llm.add(Turn(text="Answered after the handover."))
                await on_b.send({"type": "prompt", "content": "Still there?", "client_request_id": "p3"})
                third = (await on_b.wait(lambda m: m["type"] == "prompt_accepted", "accepted"))["message_id"]
                done = await on_b.wait(
                    lambda m: m["type"] == "execution_complete" and m["message_id"] == third, "the answer", 90
                )
                assert done["data"]["success"] is True, done
            assert set(sandbox) <= set(sandbox_processes(session_id))  # the same sandbox, not a new one
        finally:
            if b is not None:
                b.stop(keep_sandboxes=True)
            a.stop()  # and then every sandbox of the data directory is ended
            if session_id:
                await until(lambda: not sandbox_processes(session_id), "the sandbox to end", 30)

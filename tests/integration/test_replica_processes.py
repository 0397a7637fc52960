"""Two real replicas (``python -m inspect_app.serve``) on one PostgreSQL and one Redis, sharing one
host's data directory, a real local sandbox with the real OpenCode, a scripted model. As an operator
adds capacity: starting the second replica leaves the first one's sandbox running; a prompt and a
stop sent through the second reach the sandbox the first serves, and the second one's WebSocket
clients watch it stream live."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from deploy.run_local import haproxy_config
from sandbox.providers.local import bwrap_works
from tests.browser import start_chromium
from tests.conftest import IN_CI
from tests.e2e.conftest import click, sign_in_with_token, text_of, wait_text
from tests.e2e.test_session_page import send
from tests.fakes.llm_server import MODEL, FakeLLM, Turn
from tests.integration.sandbox_harness import make_origin, require_opencode, sandbox_processes, until
from tests.integration.stream_client import Client
from tests.integration.test_control_plane import _session, _session_setup, _status, api
from tests.servers import RunningServer, free_port, start_server

pytestmark = [pytest.mark.timeout(600), pytest.mark.postgres]


@dataclass
class Replicas:
    """Replicas started one by one (``start``) on one PostgreSQL database, Redis and data directory,
    all answered by one scripted model. When the test ends, every one is stopped and the sandboxes
    of the sessions it ``made`` must have ended with them."""

    database: str
    workdir: Path
    llm: FakeLLM
    env: dict[str, str]
    started: list[RunningServer] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)

    def start(self, name: str) -> RunningServer:
        server = start_server(
            self.workdir / name, data_dir=self.workdir / "data", INSPECT_REPLICA_ID=f"replica-{name}", **self.env
        )
        self.started.append(server)
        return server

    def session_on(self, server: RunningServer) -> str:
        """A new session created through ``server`` (whose sandbox that replica starts and serves)."""
        session_id = _session_setup(server, make_origin(self.workdir / f"origin-{len(self.sessions)}"))
        self.sessions.append(session_id)
        return session_id

    def stop(self) -> None:
        for server in self.started[1:]:
            server.stop(keep_sandboxes=True)
        if self.started:
            self.started[0].stop()  # and then every sandbox of the data directory is ended
        deadline = time.monotonic() + 30
        while any(sandbox_processes(s) for s in self.sessions):
            assert time.monotonic() < deadline, "a session's sandbox outlived every replica"
            time.sleep(0.2)


@pytest.fixture
def replicas(postgres_database: str, redis_url: str, tmp_path: Path) -> Iterator[Replicas]:
    require_opencode()
    if not bwrap_works():
        pytest.skip("local sandboxes need bubblewrap")
    with FakeLLM() as llm:
        env = {
            "INSPECT_DATABASE_URL": postgres_database,
            "INSPECT_REDIS_URL": redis_url,
            "INSPECT_LLM_BASE_URL": llm.base_url,
            "INSPECT_LLM_MODEL": MODEL,
            "INSPECT_REPLICA_TIMEOUT_S": "5",  # a silent replica's sandboxes are taken over after 5 s
        }
        running = Replicas(postgres_database, tmp_path, llm, env)
        try:
            yield running
        finally:
            running.stop()


def kill(server: RunningServer) -> None:
    """SIGKILL, as a crashed machine or an OOM killer would: no last word (its sandboxes live on)."""
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)


def stored_events(server: RunningServer, session_id: str) -> list[dict[str, Any]]:
    """The session's stored events, checked to be numbered with no gap and no duplicate."""
    with api(server, server.token) as http:
        events = http.get(f"/api/sessions/{session_id}/events", params={"limit": 500}).json()["events"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # from two writers: no gap, no duplicate
    return events


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


async def test_a_second_replica_serves_prompts_and_stops_for_the_first_ones_sandbox(replicas: Replicas) -> None:
    llm, database = replicas.llm, replicas.database
    a = replicas.start("a")
    session_id = replicas.session_on(a)
    async with Client(a, session_id, a.token) as on_a:
        await on_a.wait(lambda m: _status(m, "ready"), "A's sandbox ready", 120)
    sandbox = sandbox_processes(session_id)
    assert sandbox and served_by(database, session_id) == "replica-a"

    b = replicas.start("b")
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
        end = await on_b.wait(lambda m: m["type"] == "execution_complete" and m["message_id"] == first, "the stop", 60)
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
    events = stored_events(b, session_id)
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


async def test_a_replica_killed_mid_prompt_hands_its_sandbox_to_a_peer_and_the_prompt_completes(
    replicas: Replicas,
) -> None:
    """SIGKILL of the replica serving a sandbox while its answer streams: the peer adopts the sandbox
    once the dead one's beat is stale, the sandbox reconnects to it and re-sends what was not stored,
    and the prompt completes with each event stored once. (The model request in flight was cut with
    the dead replica's relay: OpenCode asks again, so the answer keeps the cut-off part.)"""
    answer = "slow " * 300
    a = replicas.start("a")
    session_id = replicas.session_on(a)
    b = replicas.start("b")
    await until(lambda: _session(b, session_id)["status"] == "ready", "A's sandbox ready", 120)
    sandbox = sandbox_processes(session_id)
    async with Client(b, session_id, b.token) as on_b:
        replicas.llm.add(Turn(text=answer, chunk_delay_s=0.05, chunk_size=5), Turn(text="Retried after the kill."))
        await on_b.send({"type": "prompt", "content": "Long answer", "client_request_id": "k1"})
        prompt = (await on_b.wait(lambda m: m["type"] == "prompt_accepted", "accepted"))["message_id"]
        await until(lambda: len([m for m in on_b.received if m["type"] == "token"]) >= 10, "mid-answer", 60)
        kill(a)
        end = await on_b.wait(lambda m: m["type"] == "execution_complete" and m["message_id"] == prompt, "the end", 150)
        assert end["data"]["success"] is True, end
    assert served_by(replicas.database, session_id) == "replica-b"
    assert set(sandbox) <= set(sandbox_processes(session_id))  # adopted, not replaced
    events = stored_events(b, session_id)
    assert [e["type"] for e in events if e["message_id"] == prompt].count("execution_complete") == 1
    [text] = [e["data"]["text"] for e in events if e["type"] == "text" and e["message_id"] == prompt]
    cut, _, retried = text.partition("Retried")
    assert cut and answer.startswith(cut) and retried == " after the kill.", text  # nothing twice


async def test_a_replica_killed_with_its_sandbox_leaves_the_prompt_failed_and_the_next_one_runs_on_a_peer(
    replicas: Replicas,
) -> None:
    """SIGKILL of the serving replica and of its sandbox mid-prompt: within a minute the peer shows the
    prompt failed with the reason, and the next prompt runs on a new sandbox it starts."""
    a = replicas.start("a")
    session_id = replicas.session_on(a)
    b = replicas.start("b")
    await until(lambda: _session(b, session_id)["status"] == "ready", "A's sandbox ready", 120)
    async with Client(b, session_id, b.token) as on_b:
        replicas.llm.add(Turn(text="slow " * 300, chunk_delay_s=0.05, chunk_size=5), Turn(text="On a new sandbox."))
        await on_b.send({"type": "prompt", "content": "Long answer", "client_request_id": "d1"})
        doomed = (await on_b.wait(lambda m: m["type"] == "prompt_accepted", "accepted"))["message_id"]
        await on_b.wait(lambda m: m["type"] == "token" and m["message_id"] == doomed, "tokens", 60)
        killed_at = asyncio.get_running_loop().time()
        for pid in sandbox_processes(session_id):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        kill(a)
        end = await on_b.wait(
            lambda m: m["type"] == "execution_complete" and m["message_id"] == doomed, "the failure", 60
        )
        assert asyncio.get_running_loop().time() - killed_at < 60
        assert end["data"]["success"] is False and "the sandbox was lost" in end["data"]["error"], end
        await on_b.send({"type": "prompt", "content": "Again", "client_request_id": "d2"})
        again = (await on_b.wait(lambda m: m["type"] == "prompt_accepted" and m["message_id"] != doomed, "2nd"))[
            "message_id"
        ]
        done = await on_b.wait(
            lambda m: m["type"] == "execution_complete" and m["message_id"] == again, "the next answer", 120
        )
        assert done["data"]["success"] is True, done
    assert served_by(replicas.database, session_id) == "replica-b"  # a new sandbox, B's
    stored_events(b, session_id)


@pytest.mark.browser
def test_a_page_served_through_the_balancer_by_b_streams_and_stops_a_prompt_on_as_sandbox(
    replicas: Replicas, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The deploy layout (``deploy/run_local.py``'s HAProxy configuration), with the balancer sending
    the browser to B only while the session's sandbox was started, and is served, by A."""
    haproxy = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    if haproxy is None:
        if IN_CI:
            pytest.fail("haproxy is needed (apt-get install haproxy)")
        pytest.skip("haproxy is not installed")
    balancer_port = free_port()
    public = f"http://127.0.0.1:{balancer_port}"
    replicas.env["INSPECT_PUBLIC_URL"] = public  # every replica's pages open their socket through the balancer
    a = replicas.start("a")
    session_id = replicas.session_on(a)  # through A: its sandbox is A's
    b = replicas.start("b")
    assert "(built earlier)" in b.log_tail(300)  # one frontend build, A's, served by both
    config = tmp_path / "haproxy.cfg"
    config.write_text(haproxy_config(balancer_port, [int(b.url.rsplit(":", 1)[1])]))
    balancer = subprocess.Popen([haproxy, "-db", "-f", str(config)], stdout=subprocess.DEVNULL)
    driver = None
    try:
        deadline = time.monotonic() + 30
        while not _healthy(public):  # HAProxy's first health check of B
            assert time.monotonic() < deadline, "the balancer never passed a request to B"
            time.sleep(0.2)
        driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
        sign_in_with_token(driver, dataclasses.replace(b, url=public), a.token)
        driver.get(f"{public}/sessions/{session_id}")
        WebDriverWait(driver, 60).until(ec.visibility_of_element_located((By.ID, "composer")))
        wait_text(driver, "session-status", "ready", 120)
        replicas.llm.add(Turn(text="Streaming through B. " * 40, chunk_delay_s=0.1, chunk_size=6))
        send(driver, "Explain slowly")
        WebDriverWait(driver, 60).until(lambda d: len(text_of(d, "live-answer")) > 10)  # live, mid-stream
        click(driver, "stop")
        wait_text(driver, "timeline", "Failed: stopped", 60)
        assert served_by(replicas.database, session_id) == "replica-a"
    finally:
        if driver is not None:
            driver.quit()
        balancer.terminate()
        balancer.wait(timeout=10)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False

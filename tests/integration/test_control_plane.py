"""The control plane end to end: a real server process, local sandboxes, the real OpenCode, a scripted model."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import random
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from sandbox.providers.local import bwrap_works
from tests.fakes.llm_server import MODEL, FakeLLM, Turn
from tests.integration.sandbox_harness import git, make_origin, require_opencode, sandbox_processes, until
from tests.integration.stream_client import Client, bash
from tests.servers import RunningServer, start_server

pytestmark = [pytest.mark.timeout(300)]


SERVER_ENV = {"INSPECT_AUTOMATION_TICK_S": "1"}  # the shared ``server`` fixture (conftest) with these


def api(server: RunningServer, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


async def test_two_people_share_one_session_stream(server: RunningServer, llm: FakeLLM, tmp_path: Path) -> None:
    ada = server.create_user("Ada Lovelace", "ada@example.com")
    grace = server.create_user("Grace Hopper", "grace@example.com")
    origin = make_origin(tmp_path)
    with api(server, server.token) as admin:  # registering a repository is for admins (the local user)
        repo = admin.post("/api/repositories", json={"url": str(origin)})
        assert repo.status_code == 201, repo.text
    with api(server, ada) as http:
        created = http.post("/api/sessions", json={"repository_id": repo.json()["id"]})
        assert created.status_code == 201, created.text
        session_id = created.json()["id"]
    async with Client(server, session_id, ada) as one, Client(server, session_id, grace) as two:
        await one.wait(lambda m: m.get("type") == "sandbox_status" and m["data"]["status"] == "ready", "ready", 120)
        llm.add(
            Turn(tool_calls=[bash("echo a > a.txt && git add a.txt && git commit -qm 'From Ada'")]),
            Turn(text="Done one."),
            Turn(tool_calls=[bash("echo b > b.txt && git add b.txt && git commit -qm 'From Grace'")]),
            Turn(text="Done two."),
        )
        await one.send({"type": "prompt", "content": "Add a.txt", "client_request_id": "r1"})
        accepted = await one.wait(lambda m: m["type"] == "prompt_accepted", "accepted")
        await two.send({"type": "prompt", "content": "Add b.txt", "client_request_id": "r2"})
        queued = await two.wait(lambda m: m["type"] == "prompt_accepted", "accepted")
        first, second = accepted["message_id"], queued["message_id"]
        for client in (one, two):
            for mid in (first, second):
                await client.wait(
                    lambda m, mid=mid: m["type"] == "execution_complete" and m["message_id"] == mid,
                    f"completion of {mid}",
                    120,
                )
        # the same ordered stream for everyone, from when both were subscribed (the session was warming
        # before either connected) to the last event both have seen (a snapshot may still be on its way)
        start = max(one.subscribed_at, two.subscribed_at)
        end = min(one.stored()[-1][0], two.stored()[-1][0])
        window = [e for e in one.stored() if start < e[0] <= end]
        assert window == [e for e in two.stored() if start < e[0] <= end]
        assert [t for _, t, _ in window].count("execution_complete") == 2  # both prompts ran in it
        seqs = [s for s, _, _ in one.stored()]
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
        prompts = [m for m in one.received if m["type"] == "prompt"]
        assert [(p["data"]["author"]["name"], p["data"]["content"]) for p in prompts] == [
            ("Ada Lovelace", "Add a.txt"),
            ("Grace Hopper", "Add b.txt"),
        ]
        done = [m for m in one.received if m["type"] == "execution_complete"]
        assert [d["message_id"] for d in done] == [first, second] and all(d["data"]["success"] for d in done)
        assert done[1]["data"]["author"]["name"] == "Grace Hopper"
        texts = "".join(m["data"]["text"] for m in one.received if m["type"] == "token" and m["message_id"] == second)
        assert texts == "Done two."
    workspace = server.data_dir / "sandboxes" / session_id / "workspace"
    log = git("log", "--format=%an|%s", "-2", cwd=workspace).strip().splitlines()
    assert log == ["Grace Hopper|From Grace", "Ada Lovelace|From Ada"]
    with api(server, grace) as http:
        page = http.get(f"/api/sessions/{session_id}/events", params={"after": 0, "limit": 500}).json()
        stored = page["events"]
        assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1))  # no gap, no duplicate
        text_rows = [e for e in stored if e["type"] == "text"]
        assert [r["data"]["text"] for r in text_rows] == ["Done one.", "Done two."]  # one growing row per answer
        detail = http.get(f"/api/sessions/{session_id}").json()
        assert detail["queue"] == [] and detail["session"]["status"] == "ready"


def test_bad_input_gets_clear_errors_never_500(server: RunningServer, tmp_path: Path) -> None:
    token = server.token
    origin = make_origin(tmp_path)
    not_git = tmp_path / "plain"
    not_git.mkdir()
    with api(server, token) as http:

        def error(response: httpx.Response, status: int, code: str | None = None) -> str:
            assert response.status_code == status, response.text
            body = response.json()["error"]
            if code:
                assert body["code"] == code
            assert body["message"]
            return body["message"]

        assert "absolute path" in error(http.post("/api/repositories", json={"url": "relative/dir"}), 422, "bad_url")
        error(http.post("/api/repositories", json={"url": str(tmp_path / "missing")}), 422, "not_found")
        error(http.post("/api/repositories", json={"url": str(not_git)}), 422, "not_a_repository")
        error(http.post("/api/repositories", json={}), 422, "invalid_input")
        repo = http.post("/api/repositories", json={"url": str(origin)}).json()
        error(http.post("/api/repositories", json={"url": str(origin)}), 409, "exists")
        error(http.post("/api/sessions", json={"repository_id": 99999}), 404, "not_found")
        error(http.post("/api/sessions", json={"repository_id": "seven"}), 422, "invalid_input")
        error(http.post("/api/sessions", json={"repository_id": repo["id"], "branch": "-rf"}), 422, "bad_branch")
        session = http.post("/api/sessions", json={"repository_id": repo["id"], "title": "Errors"}).json()
        sid = session["id"]
        error(http.post(f"/api/sessions/{sid}/prompts", json={"content": ""}), 422, "invalid_input")
        error(http.post(f"/api/sessions/{sid}/prompts", json={"content": "x" * 64_001}), 422, "invalid_input")
        error(http.post(f"/api/sessions/{sid}/prompts", json={"content": "hi", "extra": 1}), 422, "invalid_input")
        error(http.post("/api/sessions/nope/prompts", json={"content": "hi"}), 404, "not_found")
        error(http.delete(f"/api/sessions/{sid}/prompts/nope"), 404, "not_found")
        error(http.post(f"/api/sessions/{sid}/stop"), 409, "not_running")
        error(http.get("/api/sessions/nope/events"), 404, "not_found")
        error(http.get(f"/api/sessions/{sid}/events", params={"limit": 0}), 422, "invalid_input")
        error(http.get(f"/api/sessions/{sid}/events", params={"after": 2**64}), 422, "invalid_input")
        assert "NUL" in error(http.post("/api/repositories", json={"url": f"{origin}\x00"}), 422)
        error(http.get(f"/api/sessions/{sid}%00"), 422, "invalid_input")
        chunked = http.post(  # no Content-Length: the server counts what arrives (just past 1 MiB)
            f"/api/sessions/{sid}/prompts",
            content=iter([b'{"content": "', *[b"x" * 65536] * 16]),
            headers={"content-type": "application/json"},
        )
        error(chunked, 413, "too_large")
        too_much = {"content": "hi", "context": {"html": "x" * 70_000}}
        error(http.post(f"/api/sessions/{sid}/prompts", json=too_much), 422, "context_too_large")
        assert http.put("/api/secrets/NPM_TOKEN", json={"value": "s3cret"}).status_code == 204
        error(http.put("/api/secrets/NOT-A-NAME", json={"value": "x"}), 422, "bad_key")
        error(http.put("/api/secrets/SANDBOX_TOKEN", json={"value": "x"}), 422, "reserved_key")
        names = http.get("/api/secrets")
        assert names.json() == {"names": ["NPM_TOKEN"]} and "s3cret" not in names.text
        assert http.put(f"/api/repositories/{repo['id']}/secrets/NPM_TOKEN", json={"value": "repo"}).status_code == 204
        error(http.put("/api/repositories/99999/secrets/NPM_TOKEN", json={"value": "x"}), 404, "not_found")
        assert http.post(f"/api/sessions/{sid}/archive").json()["archived"] is True
        error(http.post(f"/api/sessions/{sid}/prompts", json={"content": "hi"}), 409, "archived")
        assert http.post(f"/api/sessions/{sid}/unarchive").json()["archived"] is False
    error(httpx.get(f"{server.url}/api/sessions", timeout=10), 401, "unauthorized")


async def test_a_signed_webhook_starts_an_automation_run_whose_session_answers(
    server: RunningServer, llm: FakeLLM, tmp_path: Path
) -> None:
    origin = make_origin(tmp_path)
    with api(server, server.token) as http:
        repo = http.post("/api/repositories", json={"url": str(origin)})
        assert repo.status_code == 201, repo.text
        created = http.post(
            "/api/automations",
            json={
                "name": "When a deploy fails",
                "trigger": "webhook",
                "filters": [{"path": "status", "equals": "failed"}],
                "repository_ids": [repo.json()["id"]],
                "template": "Deploy {{ payload.id }} failed. Find out why.",
            },
        )
        assert created.status_code == 201, created.text
        automation = created.json()
        secret, url = automation.pop("webhook_secret"), automation["webhook_url"]
        assert http.get(f"/api/automations/{automation['id']}").json().get("webhook_secret") is None  # shown once
    body = json.dumps({"status": "failed", "id": 42}).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as anyone:  # a webhook sender has no API token
        for headers in ({}, {"X-Inspect-Signature-256": "sha256=" + "0" * 64}, {"Authorization": "Bearer whsec_x"}):
            refused = await anyone.post(url, content=body, headers=headers)
            assert refused.status_code == 401, refused.text
        nobody = await anyone.post(
            "/api/automations/999999/webhook", content=body, headers={"Authorization": "Bearer x"}
        )
        assert nobody.status_code == 401  # as for a bad signature: which ids exist is not told
        not_json = await anyone.post(url, content=b"[1]", headers={"Authorization": f"Bearer {secret}"})
        assert not_json.status_code == 422
        llm.add(Turn(text="It ran out of disk."))
        accepted = await anyone.post(url, content=body, headers={"X-Inspect-Signature-256": signature})
        assert accepted.status_code == 202, accepted.text
        [run] = accepted.json()["runs"]
        other = json.dumps({"status": "ok"}).encode()
        skipped = await anyone.post(url, content=other, headers={"Authorization": f"Bearer {secret}"})
        assert [r["status"] for r in skipped.json()["runs"]] == ["skipped"]
    assert run["status"] == "running" and run["prompt"] == "Deploy 42 failed. Find out why."
    with api(server, server.token) as http:

        def finished() -> dict[str, Any] | None:
            runs = http.get(f"/api/automations/{automation['id']}/runs").json()["runs"]
            mine = next(r for r in runs if r["id"] == run["id"])
            return mine if mine["status"] not in ("queued", "running") else None

        ended = await until(finished, "the run to end", 120)
        assert ended["status"] == "succeeded" and ended["duration_s"] > 0
        assert len(http.get(f"/api/automations/{automation['id']}/runs").json()["runs"]) == 2  # nothing for the 401s
        events = http.get(f"/api/sessions/{run['session_id']}/events").json()["events"]
        prompt = next(e for e in events if e["type"] == "prompt")
        assert prompt["data"]["content"] == "Deploy 42 failed. Find out why."
        assert "It ran out of disk." in [e["data"].get("text") for e in events if e["type"] == "text"]


async def test_websocket_rejects_bad_subscribe_and_survives_bad_messages(server: RunningServer, tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    with api(server, server.token) as http:
        repo = http.post("/api/repositories", json={"url": str(origin)}).json()
        sid = http.post("/api/sessions", json={"repository_id": repo["id"]}).json()["id"]
    url = server.url.replace("http://", "ws://") + f"/api/sessions/{sid}/ws"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "subscribe", "token": "insp_wrong"}))
        assert json.loads(await ws.recv())["error"]["code"] == "unauthorized"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd.code == 4401
    with api(server, server.token) as http:
        issued = http.post(f"/api/sessions/{sid}/client-token")
        assert issued.status_code == 201
        client_token = issued.json()["client_token"]
        assert client_token.startswith("cli_")
        other = http.post("/api/sessions", json={"repository_id": repo["id"]}).json()["id"]
    other_url = server.url.replace("http://", "ws://") + f"/api/sessions/{other}/ws"
    async with websockets.connect(other_url) as ws:  # a client token is for its own session only
        await ws.send(json.dumps({"type": "subscribe", "token": client_token}))
        assert json.loads(await ws.recv())["error"]["code"] == "unauthorized"
    async with Client(server, sid, client_token) as client:
        await client.send({"type": "dance"})
        await client._ws.send("not json")
        await client.send({"type": "prompt", "content": ""})
        await client.wait(lambda m: m["type"] == "error" and m["error"]["code"] == "invalid_input", "invalid prompt")
        errors = [m for m in client.received if m["type"] == "error"]
        assert len(errors) == 3
        await client.send({"type": "presence"})
        here = await client.wait(lambda m: m["type"] == "presence" and m["event"] == "here", "presence")
        assert set(here["user"]) == {"id", "name"} and here["user"]["id"]  # the one shape every client sends

    # resuming from a cursor: the snapshot's events are the rows changed since, and none past the end
    async def resumed(cursor: int) -> dict[str, Any]:
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"type": "subscribe", "token": server.token, "cursor": cursor}))
            return json.loads(await ws.recv())

    # (the session's sandbox is booting meanwhile: rows may change between two looks, never go back)
    whole = await resumed(0)
    revs = [e["rev"] for e in whole["events"]]
    assert whole["type"] == "snapshot" and revs and revs == sorted(revs) and whole["cursor"] >= revs[0]
    later = await resumed(revs[0])
    assert all(e["rev"] > revs[0] for e in later["events"])
    assert {e["seq"] for e in whole["events"] if e["rev"] > revs[0]} <= {e["seq"] for e in later["events"]}
    assert all(e["rev"] > revs[-1] for e in (await resumed(revs[-1]))["events"])


def _pooled(server: RunningServer) -> list[Path]:
    """The warm pool's sandboxes that finished booting (OpenCode warm, waiting for a session)."""
    return sorted(p.parent.parent for p in (server.data_dir / "sandboxes").glob(".standby-*/state/standby-ready"))


async def test_a_new_session_is_handed_a_sandbox_from_the_warm_pool(
    server: RunningServer, llm: FakeLLM, tmp_path: Path
) -> None:
    origin = make_origin(tmp_path, {".inspect/start.sh": "echo started >> .start-runs\n"})
    with api(server, server.token) as http:
        repo_id = http.post("/api/repositories", json={"url": str(origin)}).json()["id"]
        assert http.post(f"/api/repositories/{repo_id}/rebuild").status_code == 202

        def image_ready() -> bool:
            image = http.get(f"/api/repositories/{repo_id}/image").json()["image"]
            return bool(image) and image["status"] == "ready"

        await until(image_ready, "the image")
    if not bwrap_works():
        pytest.skip("no bubblewrap here: no warm pool")
    [pooled] = await until(lambda: _pooled(server), "a pooled sandbox")

    with api(server, server.token) as http:
        sid = http.post("/api/sessions", json={"repository_id": repo_id}).json()["id"]
    async with Client(server, sid, server.token) as client:
        # a pooled start can be over before the subscription: read the history the snapshot brings too
        history = client.received[0]["events"]

        def seen() -> list[dict[str, Any]]:
            # an event stored between the subscription and the snapshot's read comes in both: once each
            stored: set[int] = set()
            found = []
            for m in history + client.received:
                if "seq" in m and m["seq"] in stored:
                    continue
                stored.update([m["seq"]] if "seq" in m else [])
                found.append(m)
            return found

        await until(lambda: any(_status(m, "ready") for m in seen()), "ready", 60)
        [spawning] = [m for m in seen() if _status(m, "spawning")]
        assert spawning["data"]["boot_mode"] == "image"
        root = server.data_dir / "sandboxes" / sid
        assert not pooled.exists() and f"claimed for session {sid}" in (root / "supervisor.log").read_text()
        assert (root / "workspace" / ".start-runs").read_text() == "started\n"  # while pooled, not again
        llm.add(Turn(tool_calls=[bash("git branch --show-current")]), Turn(text="On the session branch."))
        await client.send({"type": "prompt", "content": "Which branch?"})
        done = await client.wait(lambda m: m["type"] == "execution_complete", "completion", 90)
        assert done["data"]["success"]
    refill = await until(lambda: _pooled(server), "the pool to refill")
    assert pooled not in refill


def _session_setup(server: RunningServer, origin: Path) -> str:
    with api(server, server.token) as http:
        repo = http.post("/api/repositories", json={"url": str(origin)})
        assert repo.status_code == 201, repo.text
        return http.post("/api/sessions", json={"repository_id": repo.json()["id"]}).json()["id"]


def _status(m: dict[str, Any], status: str) -> bool:
    return m.get("type") == "sandbox_status" and m["data"]["status"] == status


@pytest.fixture(scope="module")
def quick_server(tmp_path_factory: pytest.TempPathFactory, llm: FakeLLM) -> Iterator[RunningServer]:
    """A server whose sandboxes sleep after a few idle seconds."""
    require_opencode()
    running = start_server(
        tmp_path_factory.mktemp("quick"),
        INSPECT_LLM_BASE_URL=llm.base_url,
        INSPECT_LLM_MODEL=MODEL,
        INSPECT_IDLE_TIMEOUT_S="3",
        INSPECT_EXECUTION_TIMEOUT_S="10",
    )
    yield running
    running.stop()


async def test_idle_sandbox_is_snapshotted_stopped_and_restored(
    quick_server: RunningServer, llm: FakeLLM, tmp_path: Path
) -> None:
    sid = _session_setup(quick_server, make_origin(tmp_path))
    async with Client(quick_server, sid, quick_server.token) as client:
        await client.wait(lambda m: _status(m, "ready"), "ready", 120)
        llm.add(
            Turn(tool_calls=[bash("echo kept > kept.txt && git add kept.txt && git commit -qm keep")]),
            Turn(text="Kept."),
        )
        await client.send({"type": "prompt", "content": "Keep a file"})
        await client.wait(lambda m: m["type"] == "execution_complete", "first completion", 90)
        stopped = await client.wait(lambda m: _status(m, "stopped"), "idle stop", 60)
        assert "idle" in stopped["data"]["reason"]
        llm.add(Turn(tool_calls=[bash("cat kept.txt")]), Turn(text="Still there."))
        await client.send({"type": "prompt", "content": "Is the file still there?"})
        spawning = await client.wait(lambda m: _status(m, "spawning") and m["seq"] > stopped["seq"], "respawn", 60)
        assert spawning["data"]["boot_mode"] == "snapshot_restore"
        await client.wait(lambda m: _status(m, "ready") and m["seq"] > spawning["seq"], "ready again", 60)
        log = (quick_server.data_dir / "sandboxes" / sid / "supervisor.log").read_text()
        assert "parked; waiting to be claimed" in log and f"claimed for session {sid}" in log  # resumed, not copied
        done = await client.wait(
            lambda m: m["type"] == "execution_complete" and m["seq"] > spawning["seq"], "second completion", 120
        )
        assert done["data"]["success"]
        cat = await client.wait(
            lambda m: (
                m["type"] == "tool_call"
                and m["data"]["tool"] == "bash"
                and m["data"]["status"] == "completed"
                and m["seq"] > spawning["seq"]
            ),
            "cat output",
        )
        assert "kept" in cat["data"]["output"]


async def test_a_prompt_running_too_long_is_stopped(quick_server: RunningServer, llm: FakeLLM, tmp_path: Path) -> None:
    sid = _session_setup(quick_server, make_origin(tmp_path))
    async with Client(quick_server, sid, quick_server.token) as client:
        await client.wait(lambda m: _status(m, "ready"), "ready", 120)
        llm.add(Turn(text="endless " * 300, chunk_delay_s=0.2, chunk_size=8), Turn(text="Quick one."))
        await client.send({"type": "prompt", "content": "Never stop talking"})
        await client.send({"type": "prompt", "content": "Then a quick one"})
        timed_out = await client.wait(lambda m: m["type"] == "execution_complete", "the timeout", 60)
        assert timed_out["data"]["success"] is False and "longer than 10s" in timed_out["data"]["error"]
        nxt = await client.wait(
            lambda m: m["type"] == "execution_complete" and m["message_id"] != timed_out["message_id"], "next", 90
        )
        assert nxt["data"]["success"] is True
    with api(quick_server, quick_server.token) as http:
        events = http.get(f"/api/sessions/{sid}/events", params={"limit": 500}).json()["events"]
    done = [e for e in events if e["type"] == "execution_complete"]
    assert len(done) == 2  # the sandbox's own "stopped" completion is not stored a second time


async def test_three_failed_spawns_trip_the_breaker(quick_server: RunningServer, tmp_path: Path) -> None:
    origin = make_origin(tmp_path, {".inspect/start.sh": "echo 'database is not configured' >&2\nexit 1\n"})
    sid = _session_setup(quick_server, origin)
    async with Client(quick_server, sid, quick_server.token) as client:
        await client.wait(lambda m: _status(m, "failed"), "first failure", 90)
        await client.send({"type": "prompt", "content": "Please try"})
        tripped = await client.wait(
            lambda m: _status(m, "failed") and "3 times" in m["data"].get("reason", ""), "the breaker", 180
        )
        assert "database is not configured" in tripped["data"]["reason"]
        await asyncio.sleep(8)  # no endless respawn loop
    with api(quick_server, quick_server.token) as http:
        events = http.get(f"/api/sessions/{sid}/events", params={"limit": 500}).json()["events"]
        assert len([e for e in events if _status(e, "spawning")]) == 3
        detail = http.get(f"/api/sessions/{sid}").json()
        assert detail["session"]["status"] == "failed" and "3 times" in detail["session"]["status_reason"]
        assert [q["status"] for q in detail["queue"]] == ["pending"]  # the prompt waits for a person


async def test_a_prompt_streaming_through_a_server_restart_completes(
    tmp_path_factory: pytest.TempPathFactory, llm: FakeLLM, tmp_path: Path
) -> None:
    """A deploy: SIGTERM, then a new server. Sandboxes outlive the server; the new one adopts them,
    their prompts go on, and every event is stored once, in order. A sandbox whose processes died
    while no server ran is reported failed.

    The model's stream runs through the server's relay, so the restart cuts it and OpenCode asks the
    model again (the next scripted turn): the answer holds the cut-off part, then the retried one."""
    require_opencode()
    workdir = tmp_path_factory.mktemp("restart")
    env = {"INSPECT_LLM_BASE_URL": llm.base_url, "INSPECT_LLM_MODEL": MODEL}
    first = start_server(workdir, **env)
    answer = "slow " * 400  # 20 s of streaming
    try:
        streaming = _session_setup(first, make_origin(tmp_path / "a"))
        doomed = _session_setup(first, make_origin(tmp_path / "b"))
        for sid in (streaming, doomed):
            await until(lambda sid=sid: _session(first, sid)["status"] == "ready", "both sandboxes ready", 120)
        async with Client(first, streaming, first.token) as client:
            llm.add(
                Turn(text=answer, chunk_delay_s=0.05, chunk_size=5),
                Turn(text="Retried after the restart."),
                Turn(text="Then this, answered."),
            )
            await client.send({"type": "prompt", "content": "Long answer", "client_request_id": "p1"})
            await client.send({"type": "prompt", "content": "Then this", "client_request_id": "p2"})
            await client.wait(lambda m: m["type"] == "token", "the first tokens", 60)
            await asyncio.sleep(0.5)
    except BaseException:
        first.stop()
        raise
    first.stop(keep_sandboxes=True)
    survivors = sandbox_processes(streaming)
    assert survivors, "the streaming session's sandbox did not outlive the server"
    for pid in sandbox_processes(doomed):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    second = start_server(workdir, port=int(first.url.rsplit(":", 1)[1]), **env)
    try:
        await until(lambda: len(_outcomes(second, streaming)) >= 2, "both prompts to end", 180, every=0.5)
        with api(second, second.token) as http:
            events = http.get(f"/api/sessions/{streaming}/events", params={"limit": 500}).json()["events"]
            lost = http.get(f"/api/sessions/{doomed}/events", params={"limit": 500}).json()["events"]
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # no gap, no duplicate
        prompts = {e["message_id"]: e["data"]["content"] for e in events if e["type"] == "prompt"}
        ends = [e for e in events if e["type"] == "execution_complete"]
        outcomes = [(prompts[e["message_id"]], e["data"]["success"]) for e in ends]
        assert outcomes == [("Long answer", True), ("Then this", True)]  # each once, in order, both done
        texts = {prompts[e["message_id"]]: e["data"]["text"] for e in events if e["type"] == "text"}
        cut, _, retried = texts["Long answer"].partition("Retried")
        assert cut and answer.startswith(cut) and retried == " after the restart."  # nothing twice, nothing lost
        assert texts["Then this"] == "Then this, answered."
        assert set(survivors) & set(sandbox_processes(streaming)), "the adopted sandbox was replaced"
        failed = [e["data"] for e in lost if e["type"] == "sandbox_status" and e["data"]["status"] == "failed"]
        assert failed and "ended while the server was down" in failed[-1]["reason"]
    finally:
        second.stop()


def _session(server: RunningServer, session_id: str) -> dict[str, Any]:
    with api(server, server.token) as http:
        return http.get(f"/api/sessions/{session_id}").json()["session"]


def _outcomes(server: RunningServer, session_id: str) -> list[dict[str, Any]]:
    with api(server, server.token) as http:
        events = http.get(f"/api/sessions/{session_id}/events", params={"limit": 500}).json()["events"]
    return [e["data"] for e in events if e["type"] == "execution_complete"]


def _supervisor_of(session_id: str) -> int:
    """The pid of the session's sandbox runtime."""
    for pid in sandbox_processes(session_id):
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"sandbox.runtime.supervisor" in argv and not argv[0].endswith(b"bwrap"):
                return pid
    raise LookupError(f"no supervisor for {session_id}")


async def test_a_killed_supervisor_fails_its_prompt_within_seconds(
    server: RunningServer, llm: FakeLLM, tmp_path: Path
) -> None:
    sid = _session_setup(server, make_origin(tmp_path))
    async with Client(server, sid, server.token) as client:
        await client.wait(lambda m: _status(m, "ready"), "ready", 120)
        llm.add(Turn(text="slow " * 600, chunk_delay_s=0.05, chunk_size=5))
        await client.send({"type": "prompt", "content": "Long answer", "client_request_id": "k1"})
        await client.wait(lambda m: m["type"] == "token", "the first tokens", 60)
        os.kill(await asyncio.to_thread(_supervisor_of, sid), signal.SIGKILL)
        killed_at = asyncio.get_running_loop().time()
        done = await client.wait(lambda m: m["type"] == "execution_complete", "the prompt to fail", 30)
        assert asyncio.get_running_loop().time() - killed_at < 10  # not the 90 s heartbeat timeout
        assert done["data"]["success"] is False and "exited" in done["data"]["error"]
    # and nothing of the sandbox is left running (OpenCode, bwrap's pid namespace)
    await until(lambda: not sandbox_processes(sid), "the sandbox's processes to end", 30)


def _agent_of(session_id: str) -> int | None:
    """The pid of the session's OpenCode, if it runs (it may be restarting)."""
    for pid in sandbox_processes(session_id):
        with contextlib.suppress(OSError):
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            if argv0.endswith(b"opencode"):
                return pid
    return None


async def test_every_prompt_ends_exactly_once_while_its_sandbox_is_killed_at_random(
    server: RunningServer, llm: FakeLLM, tmp_path: Path
) -> None:
    """Ten queued prompts while the supervisor or OpenCode is SIGKILLed at random points of them:
    each prompt ends once — one ``execution_complete``, agreeing with its stored status — and the
    session goes on (new sandboxes, a restarted agent, no tripped breaker, nothing left processing)."""
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    sid = _session_setup(server, make_origin(tmp_path))
    kills: list[str] = []
    try:
        await until(lambda: _session(server, sid)["status"] == "ready", "the sandbox to be ready", 120)
        llm.add(*[Turn(text="step " * 24, chunk_delay_s=0.04, chunk_size=3) for _ in range(30)])
        with api(server, server.token) as http:
            ids = [
                _accepted(http.post(f"/api/sessions/{sid}/prompts", json={"content": f"Prompt {i}"}))
                for i in range(10)  # the queue holds 10
            ]
        while len(kills) < 5:
            await asyncio.sleep(rng.uniform(0.3, 2.5))
            # only a ready sandbox: a boot killed three times is the breaker's case, tested on its own
            if _session(server, sid)["status"] not in ("ready", "running"):
                continue
            if rng.random() < 0.5:
                target, pid = "supervisor", await asyncio.to_thread(_supervisor_of, sid)
            else:
                target, pid = "opencode", await asyncio.to_thread(_agent_of, sid)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    kills.append(target)
        await until(lambda: len(_ends(server, sid)) >= len(ids), f"every prompt to end (seed {seed}, {kills})", 180)
        await until(lambda: _session(server, sid)["status"] == "ready", "the session to settle", 60)
    finally:
        llm.clear()
    ends = _ends(server, sid)
    assert sorted(ends) == sorted(ids), f"seed {seed}, kills {kills}"  # each prompt once, none twice
    with api(server, server.token) as http:
        for message_id in ids:
            stored = http.get(f"/api/sessions/{sid}/prompts/{message_id}").json()
            ended = ends[message_id]
            assert stored["status"] == ("completed" if ended["success"] else "failed"), (seed, kills, stored, ended)
            assert ended["success"] or ended["error"]  # a failure says why
    last = ends[ids[-1]]
    assert last["success"], f"the session did not recover (seed {seed}, kills {kills}): {last}"


def _accepted(response: httpx.Response) -> str:
    assert response.status_code == 202, response.text
    return response.json()["message_id"]


def _ends(server: RunningServer, session_id: str) -> dict[str, dict[str, Any]]:
    """Each prompt's ends, by prompt id; a second end of one prompt fails the test right here."""
    with api(server, server.token) as http:
        events = http.get(f"/api/sessions/{session_id}/events", params={"limit": 500}).json()["events"]
    ends: dict[str, dict[str, Any]] = {}
    for event in events:
        if event["type"] == "execution_complete":
            assert event["message_id"] not in ends, f"a prompt ended twice: {event}"
            ends[event["message_id"]] = event["data"]
    return ends


async def test_a_process_killed_for_memory_is_explained_in_the_session(
    server: RunningServer, llm: FakeLLM, tmp_path: Path
) -> None:
    sid = _session_setup(server, make_origin(tmp_path))
    async with Client(server, sid, server.token) as client:
        await client.wait(lambda m: _status(m, "ready"), "ready", 120)
        hog = "python3 -c 'x = b\"x\" * (6 << 30)'; sleep 6"  # over the default 4096 MiB; the sweep runs meanwhile
        llm.add(Turn(tool_calls=[bash(hog)]), Turn(text="It was killed."))
        await client.send({"type": "prompt", "content": "Use all the memory", "client_request_id": "oom"})
        warning = await client.wait(lambda m: m["type"] == "warning" and "memory" in m["data"]["message"], "why", 60)
        assert "memory limit" in warning["data"]["message"]
        done = await client.wait(lambda m: m["type"] == "execution_complete", "the prompt to end", 60)
        assert done["data"]["success"] is True  # the agent lost one process, not its sandbox


async def test_a_host_the_sandbox_may_not_reach_is_one_warning_in_the_session(
    server: RunningServer, llm: FakeLLM, tmp_path: Path
) -> None:
    sid = _session_setup(server, make_origin(tmp_path))
    async with Client(server, sid, server.token) as client:
        await client.wait(lambda m: _status(m, "ready"), "ready", 120)
        twice = "curl -s -o /dev/null --max-time 10 https://example.com/; curl -s -o /dev/null https://example.com/x"
        llm.add(Turn(tool_calls=[bash(twice)]), Turn(text="Refused."))
        await client.send({"type": "prompt", "content": "Send it out", "client_request_id": "egress"})
        await client.wait(lambda m: m["type"] == "execution_complete", "the prompt to end", 60)
        warning = await client.wait(lambda m: m["type"] == "warning" and "example.com" in m["data"]["message"], "", 10)
        assert "INSPECT_EGRESS_ALLOW" in warning["data"]["detail"]  # how to allow it
    with api(server, server.token) as http:
        events = http.get(f"/api/sessions/{sid}/events", params={"limit": 500}).json()["events"]
    refusals = [e for e in events if e["type"] == "warning" and "example.com" in e["data"]["message"]]
    assert len(refusals) == 1  # two refused requests, one warning


async def test_the_boot_watchdog_follows_progress_not_the_clock(
    tmp_path_factory: pytest.TempPathFactory, llm: FakeLLM, tmp_path: Path
) -> None:
    """With INSPECT_SPAWN_TIMEOUT_S=3, a setup.sh that prints a line every 0.5 s for 6 s boots and
    runs its prompt; one that prints nothing and hangs is given up in seconds, naming the step."""
    require_opencode()
    server = start_server(
        tmp_path_factory.mktemp("watchdog"),
        INSPECT_LLM_BASE_URL=llm.base_url,
        INSPECT_LLM_MODEL=MODEL,
        INSPECT_SPAWN_TIMEOUT_S="3",
    )
    try:
        setup = "for i in $(seq 12); do echo installing part $i; sleep 0.5; done\n"
        chatty = make_origin(tmp_path / "chatty", {".inspect/setup.sh": setup})
        silent = make_origin(tmp_path / "silent", {".inspect/setup.sh": "sleep 600\n"})
        working = _session_setup(server, chatty)
        hung = _session_setup(server, silent)
        created = asyncio.get_running_loop().time()
        failed = await until(lambda: _session(server, hung)["status"] == "failed" and _session(server, hung), "", 60)
        assert asyncio.get_running_loop().time() - created < 30  # not the 600 s setup limit
        assert "no progress for 3s" in failed["status_reason"] and "setup" in failed["status_reason"], failed

        llm.add(Turn(text="Set up and answering."))
        with api(server, server.token) as http:
            sent = http.post(f"/api/sessions/{working}/prompts", json={"content": "Go"})
            assert sent.status_code == 202, sent.text
        outcome = await until(lambda: _outcomes(server, working), "the prompt after a 6 s setup", 120, every=0.5)
        assert outcome[0]["success"] is True, outcome
        with api(server, server.token) as http:
            events = http.get(f"/api/sessions/{working}/events", params={"limit": 500}).json()["events"]
        lines = [e["data"].get("detail", "") for e in events if e["type"] == "boot_progress"]
        assert any(line.startswith("installing part") for line in lines)  # the output, shown live
    finally:
        server.stop()

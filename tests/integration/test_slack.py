"""The Slack bot end to end: a real server, real sandboxes and OpenCode, a scripted model (which also
answers the repository classifier), and a loopback Slack (Web API + Socket Mode)."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import new_browser, sign_in_link
from tests.fakes.llm_server import MODEL, FakeLLM, Turn
from tests.fakes.slack import FakeSlack, signed_headers
from tests.integration.sandbox_harness import make_origin, require_opencode, until
from tests.integration.stream_client import bash
from tests.servers import RunningServer, start_server

pytestmark = [pytest.mark.timeout(400)]

SECRET = "slack-signing-secret"
USERS = {
    "U1": {"name": "Ada", "email": "ada@example.com"},  # the server's local user: matched by email
    "U2": {"name": "Grace (Slack)", "email": "grace@slack.example"},  # nobody yet: created by name
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeSlack, FakeLLM, RunningServer, dict]]:
    require_opencode()
    tmp = tmp_path_factory.mktemp("slack")
    repos = {}
    for name in ("widgets", "gadgets"):
        bare = tmp / f"{name}.git"
        shutil.move(make_origin(tmp / name), bare)
        repos[name] = bare
    slack = FakeSlack(users=USERS, channels={"C1": "widget-team", "C2": "random"})
    slack.start_socket_mode()
    with FakeLLM() as llm:
        server = start_server(
            tmp,
            INSPECT_SLACK_BOT_TOKEN="xoxb-test",
            INSPECT_SLACK_SIGNING_SECRET=SECRET,
            INSPECT_SLACK_APP_TOKEN="xapp-test",
            INSPECT_SLACK_API_URL=slack.api_url,
            INSPECT_LLM_BASE_URL=llm.base_url,
            INSPECT_LLM_MODEL=MODEL,
        )
        headers = {"Authorization": f"Bearer {server.token}"}
        ids = {
            name: httpx.post(
                f"{server.url}/api/repositories",
                json={"url": str(path), "description": f"The {name} service"},
                headers=headers,
            ).json()["id"]
            for name, path in repos.items()
        }
        try:
            yield slack, llm, server, ids
        finally:
            server.stop()
            slack.close()


def event(event_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": "event_callback", "team_id": "T1", "event_id": event_id, "event": fields}


async def deliver(server: RunningServer, payload: dict, *, secret: str = SECRET, **header: str) -> httpx.Response:
    body = json.dumps(payload).encode()
    headers = {"content-type": "application/json", **signed_headers(secret, body), **header}
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(f"{server.url}/api/slack/events", content=body, headers=headers)


def in_thread(slack: FakeSlack, thread_ts: str, needle: str) -> list[dict]:
    return [m for m in slack.posted() if m.get("thread_ts") == thread_ts and needle in json.dumps(m)]


def events_of(server: RunningServer, session_id: str) -> list[dict]:
    headers = {"Authorization": f"Bearer {server.token}"}
    return httpx.get(f"{server.url}/api/sessions/{session_id}/events?after=0", headers=headers).json()["events"]


def sessions_of(server: RunningServer) -> list[dict]:
    return httpx.get(f"{server.url}/api/sessions", headers={"Authorization": f"Bearer {server.token}"}).json()[
        "sessions"
    ]


async def test_a_mention_starts_a_session_on_the_right_repository_and_the_thread_steers_it(
    world: tuple[FakeSlack, FakeLLM, RunningServer, dict], tmp_path_factory: pytest.TempPathFactory
) -> None:
    slack, llm, server, _ = world
    llm.add(
        Turn(text='{"repository": "widgets", "confidence": 0.92, "alternatives": ["gadgets"]}'),  # the classifier
        Turn(tool_calls=[bash("echo blue > color.txt && git add color.txt && git commit -qm 'Blue widgets'")]),
        Turn(text="Made the widgets **blue**."),
    )
    # no repository is named in it: the classifier (the scripted model) decides
    mention = event(
        "Ev1", type="app_mention", user="U1", text="<@UBOT> make the buttons blue", channel="C1", ts="100.1"
    )
    slack.say("C1", "100.1", "<@UBOT> make the buttons blue", "U1")
    started = time.monotonic()
    response = await deliver(server, mention)
    assert response.status_code == 200 and time.monotonic() - started < 3  # acknowledged within Slack's 3 s

    working = await until(lambda: in_thread(slack, "100.1", "Working on it"), "working message")
    assert "widgets" in json.dumps(working[0]["blocks"]) and "/sessions/" in json.dumps(working[0]["blocks"])
    done = await until(lambda: in_thread(slack, "100.1", "completed"), "completion message", 180)
    blocks = json.dumps(done[0]["blocks"])
    assert "Made the widgets *blue*." in blocks  # the answer, in Slack's mrkdwn
    assert "completed" in blocks and "widgets" in blocks and "/sessions/" in blocks  # context line + View session
    assert any("bash" in json.dumps(u.get("blocks")) for u in slack.posted("chat.update"))  # progress, in place
    [session] = [s for s in sessions_of(server) if s["source"] == "slack"]
    assert session["repository"] == "widgets"
    classified = json.dumps([r for r in llm.requests if "route requests" in json.dumps(r)])
    assert "widget-team" in classified and "The gadgets service" in classified  # channel name, descriptions

    # the session page says where it came from, with a link to the thread
    browser = new_browser(tmp_path_factory)
    try:
        browser.get(sign_in_link(server))  # the local user's browser, signed in with the printed link
        browser.get(f"{server.url}/sessions/{session['id']}")
        link = WebDriverWait(browser, 60).until(ec.visibility_of_element_located((By.ID, "source-link")))
        assert "from Slack" in link.text
        assert link.get_attribute("href") == "https://slack.example/archives/C1/p100.1"
    finally:
        browser.quit()

    # a reply in the thread is a follow-up prompt of the same session, by the replying person
    llm.add(Turn(text="Also bold now."))
    reply = event(
        "Ev2", type="message", user="U2", text="make them bold too", channel="C1", ts="100.5", thread_ts="100.1"
    )
    assert (await deliver(server, reply)).status_code == 200
    await until(lambda: in_thread(slack, "100.1", "Also bold now."), "the follow-up's answer", 180)
    history = events_of(server, session["id"])
    prompts = [(e["data"]["content"], e["data"]["author"]["name"]) for e in history if e["type"] == "prompt"]
    assert prompts == [("make the buttons blue", "Ada Lovelace"), ("make them bold too", "Grace (Slack)")]

    # a retried delivery, a bad signature and a stale timestamp change nothing: no session, no prompt
    # (the mention's thread is a session now: handled again, it would be a follow-up), no reply
    count, posted = len(sessions_of(server)), len(slack.posted())
    prompted = len([e for e in events_of(server, session["id"]) if e["type"] == "prompt"])
    assert (await deliver(server, mention, **{"x-slack-retry-num": "1"})).status_code == 200
    assert (await deliver(server, event("Ev3", **mention["event"]), secret="wrong")).status_code == 401
    stale = json.dumps(event("Ev4", **mention["event"])).encode()
    old = signed_headers(SECRET, stale, timestamp=int(time.time()) - 600)
    async with httpx.AsyncClient() as client:
        refused = await client.post(f"{server.url}/api/slack/events", content=stale, headers=old)
    assert refused.status_code == 401
    await asyncio.sleep(2)
    assert len(sessions_of(server)) == count and len(slack.posted()) == posted
    assert len([e for e in events_of(server, session["id"]) if e["type"] == "prompt"]) == prompted


async def test_an_ambiguous_request_gets_a_picker_and_the_choice_starts_the_session(
    world: tuple[FakeSlack, FakeLLM, RunningServer, dict],
) -> None:
    slack, llm, server, ids = world
    llm.add(Turn(text='{"repository": "unknown", "confidence": 0.2, "alternatives": ["gadgets", "widgets"]}'))
    slack.say("C2", "200.1", "<@UBOT> the thing is broken", "U1")
    await deliver(
        server,
        event("Ev10", type="app_mention", user="U1", text="<@UBOT> the thing is broken", channel="C2", ts="200.1"),
    )
    [picker] = await until(lambda: in_thread(slack, "200.1", "inspect_pick_repo"), "the picker")
    buttons = json.dumps(picker["blocks"])
    assert buttons.index("gadgets") < buttons.index("widgets")  # the best guess first
    assert not [s for s in sessions_of(server) if s["source"] == "slack" and s["repository"] == "gadgets"]

    llm.add(Turn(text="Fixed the gadget."))
    payload = {
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": "U1"},
        "channel": {"id": "C2"},
        "message": {"ts": picker.get("ts", ""), "thread_ts": "200.1"},
        "actions": [{"action_id": f"inspect_pick_repo_{ids['gadgets']}", "value": str(ids["gadgets"])}],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = {"content-type": "application/x-www-form-urlencoded", **signed_headers(SECRET, body)}
    async with httpx.AsyncClient() as client:
        assert (await client.post(f"{server.url}/api/slack/events", content=body, headers=headers)).status_code == 200
    await until(lambda: in_thread(slack, "200.1", "Fixed the gadget."), "the answer after picking", 180)
    chosen = [s for s in sessions_of(server) if s["source"] == "slack" and s["repository"] == "gadgets"]
    assert len(chosen) == 1


async def test_the_same_flow_over_socket_mode(world: tuple[FakeSlack, FakeLLM, RunningServer, dict]) -> None:
    slack, llm, server, ids = world
    await slack.wait_connected()
    llm.add(Turn(text="Gadgets checked over the socket."))
    # an alias set on the repository routes the request (no model call): "tools" means gadgets
    headers = {"Authorization": f"Bearer {server.token}"}
    gadgets = ids["gadgets"]
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as api:
        changed = await api.patch(f"/api/repositories/{gadgets}", json={"keywords": ["Tools", "internal-tools"]})
        assert changed.status_code == 200 and changed.json()["keywords"] == ["tools", "internal-tools"]
        assert (await api.put("/api/slack/channels/C9", json={"repository_id": 999})).status_code == 404
    slack.say("C1", "300.1", "<@UBOT> check the tools", "U1")
    payload = event("Ev20", type="app_mention", user="U1", text="<@UBOT> check the tools", channel="C1", ts="300.1")
    await slack.push("env-1", "events_api", payload)
    await until(lambda: "env-1" in slack.acks, "the envelope's acknowledgement", 10)
    await until(lambda: in_thread(slack, "300.1", "Working on it"), "working message over Socket Mode")
    await until(lambda: in_thread(slack, "300.1", "Gadgets checked over the socket."), "the answer", 180)
    assert len([s for s in sessions_of(server) if s["source"] == "slack" and s["repository"] == "gadgets"]) == 2


async def test_a_message_in_a_watched_channel_starts_an_automation_run(
    world: tuple[FakeSlack, FakeLLM, RunningServer, dict],
) -> None:
    """Over the Events API wire: a person's plain message holding the phrase, in the channel an
    automation watches, starts a run with the message in its prompt; Slack's retry adds none."""
    _, llm, server, ids = world
    headers = {"Authorization": f"Bearer {server.token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
        created = await http.post(
            "/api/automations",
            json={
                "name": "Deploy alerts",
                "trigger": "slack",
                "channel": "C2",
                "contains": "deploy failed",
                "repository_ids": [ids["widgets"]],
                "template": "Someone wrote in Slack: {{ payload.text }}",
            },
        )
    assert created.status_code == 201, created.text
    llm.add(Turn(text="Looking into the deploy."))
    message = event("Ev-auto-1", type="message", channel="C2", channel_type="channel", user="U1", ts="300.1",
                    text="Heads up: deploy failed on prod")  # fmt: skip
    assert (await deliver(server, message)).status_code == 200
    assert (await deliver(server, message, **{"X-Slack-Retry-Num": "1"})).status_code == 200
    other = event("Ev-auto-2", type="message", channel="C2", channel_type="channel", user="U1", ts="300.2",
                  text="all good here")  # fmt: skip
    assert (await deliver(server, other)).status_code == 200

    def ended() -> list[dict] | None:
        url = f"{server.url}/api/automations/{created.json()['id']}/runs"
        runs = httpx.get(url, headers=headers).json()["runs"]
        return runs if runs and runs[0]["status"] == "succeeded" else None

    [run] = await until(ended, "the run to succeed", 180)
    assert run["prompt"] == "Someone wrote in Slack: Heads up: deploy failed on prod"

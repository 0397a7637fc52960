"""Two people on one session in two real browsers: prompts, streaming, queue, cancel, stop, presence."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from websockets.sync.client import connect

from tests.e2e.conftest import click, screenshot, text_of, wait_text
from tests.fakes.llm_server import FakeLLM, ToolCall, Turn
from tests.integration.sandbox_harness import make_origin, require_opencode
from tests.servers import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

LONG_ANSWER = "Ada's answer streams in slowly, word by word. " * 6


def send(driver: webdriver.Chrome, text: str) -> None:
    box = driver.find_element(By.ID, "composer")
    box.send_keys(text)
    WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "send").is_enabled())
    click(driver, "send")
    WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "composer").get_attribute("value") == "")


def test_two_people_one_session(
    server: RunningServer, llm: FakeLLM, browser: webdriver.Chrome, second_browser: webdriver.Chrome, tmp_path: Path
) -> None:
    require_opencode()
    grace_token = server.create_user("Grace Hopper", "grace@example.com")
    headers = {"Authorization": f"Bearer {server.token}"}
    repo = httpx.post(f"{server.url}/api/repositories", json={"url": str(make_origin(tmp_path))}, headers=headers)
    session = httpx.post(
        f"{server.url}/api/sessions", json={"repository_id": repo.json()["id"], "title": "Pairing"}, headers=headers
    ).json()
    url = f"{server.url}/sessions/{session['id']}"
    ada, grace = browser, second_browser

    grace.get(f"{server.url}/login")
    WebDriverWait(grace, 60).until(ec.visibility_of_element_located((By.ID, "login-token"))).send_keys(grace_token)
    click(grace, "login-submit")
    WebDriverWait(grace, 30).until(lambda d: "Grace Hopper" in text_of(d, "sidebar"))

    ada.get(url)
    grace.get(url)
    for driver in (ada, grace):
        WebDriverWait(driver, 60).until(ec.visibility_of_element_located((By.ID, "composer")))
    # presence: each sees two people
    for driver in (ada, grace):
        WebDriverWait(driver, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#presence .watcher")) == 2)
    wait_text(ada, "session-status", "ready", 120)
    click(ada, "details-toggle")
    limits = text_of(ada, "sandbox-limits")  # what the sandbox may use and reach, in the session's details
    assert "own network" in limits and ("4096 MiB memory" in limits or "no resource limits" in limits), limits

    llm.add(
        Turn(text=LONG_ANSWER, chunk_delay_s=0.12, chunk_size=6),
        Turn(
            tool_calls=[
                ToolCall(
                    "bash",
                    {"command": "echo changelog >> README.md && git commit -qam 'Changelog'", "description": "edit"},
                )
            ]
        ),
        Turn(text="Grace's answer."),
    )
    send(ada, "Please explain the project")
    wait_text(grace, "timeline", "Please explain the project")
    assert "Ada Lovelace" in text_of(grace, "timeline")
    WebDriverWait(grace, 30).until(lambda d: len(text_of(d, "live-answer")) > 10)  # B sees it while it streams
    assert text_of(grace, "live-answer").strip() != LONG_ANSWER.strip()
    screenshot(ada, "session-streaming-ada")
    screenshot(grace, "session-streaming-grace")

    send(grace, "Then add a changelog")
    for driver in (ada, grace):
        wait_text(driver, "queue", "Grace Hopper: Then add a changelog", 30)

    send(ada, "One more thing")
    for driver in (ada, grace):
        wait_text(driver, "queue", "One more thing", 30)

    def cancel_third(d: webdriver.Chrome) -> bool:
        try:
            rows = d.find_elements(By.CSS_SELECTOR, "#queue .queue-row")
            row = next(r for r in rows if "One more thing" in r.text)
            row.find_element(By.CLASS_NAME, "cancel-prompt").click()
            return True
        except (StopIteration, StaleElementReferenceException):
            return False  # React re-rendered the queue: look again

    WebDriverWait(grace, 20).until(cancel_third)
    for driver in (ada, grace):
        WebDriverWait(driver, 30).until(lambda d: "One more thing" not in text_of(d, "queue"))

    click(ada, "stop")
    for driver in (ada, grace):
        wait_text(driver, "timeline", "Failed: stopped", 30)
        wait_text(driver, "timeline", "Grace's answer.", 90)  # the queued prompt ran after the stop
    screenshot(grace, "session-after-stop-grace")
    click(grace, "details-toggle")
    wait_text(grace, "changed-files", "README.md", 30)
    grace.find_element(By.CSS_SELECTOR, "#changed-files .changed-file summary").click()
    WebDriverWait(grace, 10).until(lambda d: "+changelog" in text_of(d, "changed-files"))
    title = grace.find_element(By.ID, "session-title")
    webdriver.ActionChains(grace).double_click(title).perform()
    box = WebDriverWait(grace, 10).until(ec.visibility_of_element_located((By.ID, "title-input")))
    box.clear()
    box.send_keys("Pairing on the changelog\n")
    wait_text(grace, "session-title", "Pairing on the changelog", 20)
    ada.get(server.url + "/")
    WebDriverWait(ada, 30).until(ec.visibility_of_element_located((By.ID, "sessions-list")))
    screenshot(ada, "home")


def seed_long_session(server: RunningServer, events: int = 10_000) -> str:
    """A session with ``events`` stored events (prompts, tool calls, answers, completions)."""
    import sqlalchemy as sa
    from sqlmodel import Session as DBSession
    from sqlmodel import select

    from inspect_app.db import create_db_engine
    from inspect_app.models import Artifact, Event, Message, Participant, Repository, Session, User

    engine = create_db_engine(server.database_url)
    try:
        with DBSession(engine) as db:
            user = db.exec(select(User).where(User.is_local == sa.true())).one()
            repo = Repository(url=f"/srv/long-{events}", name="long")
            db.add(repo)
            db.flush()
            session = Session(
                repository_id=repo.id,
                base_branch="main",
                creator_id=user.id,
                title="Long session",
                status="stopped",
                last_seq=events,
            )  # type: ignore[arg-type]
            db.add(session)
            db.flush()
            db.add(Participant(session_id=session.id, user_id=user.id, role="owner"))  # type: ignore[arg-type]
            db.add(Artifact(session_id=session.id, type="pr", url="http://127.0.0.1:9/pr/7", state="merged"))
            author = {"id": user.id, "name": user.name}
            rows, seq = [], 0
            while seq < events:
                message = Message(
                    session_id=session.id, author_id=user.id, content=f"prompt {seq // 4}", status="completed"
                )  # type: ignore[arg-type]
                db.add(message)
                db.flush()
                for type_, data, key in (
                    ("prompt", {"content": f"prompt number {seq // 4}", "author": author}, None),
                    (
                        "tool_call",
                        {
                            "call_id": f"c{seq}",
                            "tool": "bash",
                            "status": "completed",
                            "args": {"command": f"make test-{seq}"},
                            "output": "ok",
                        },
                        f"tool:c{seq}",
                    ),
                    ("text", {"text": f"Answer number {seq // 4}", "author": author}, f"text:{message.id}"),
                    ("execution_complete", {"success": True, "author": author}, None),
                ):
                    seq += 1
                    rows.append(
                        Event(session_id=session.id, seq=seq, type=type_, data=data, message_id=message.id, key=key)
                    )
            db.add_all(rows[:events])
            db.commit()
            return session.id
    finally:
        engine.dispose()


def test_a_session_with_ten_thousand_events_opens_and_pages_back(
    server: RunningServer, browser: webdriver.Chrome
) -> None:
    sid = seed_long_session(server)
    entry = f"#sidebar a[href$='/sessions/{sid}']"
    browser.get(f"{server.url}/")
    row = WebDriverWait(browser, 60).until(ec.visibility_of_element_located((By.CSS_SELECTOR, entry)))
    assert "merged" in row.text  # the PR state in the sidebar
    assert row.find_elements(By.CSS_SELECTOR, ".unread-dot")  # 10,000 events Ada has not seen

    browser.get(f"{server.url}/sessions/{sid}")
    wait_text(browser, "timeline", "Answer number 2499", 60)
    assert "prompt number 2400" not in text_of(browser, "timeline")  # only the recent page is loaded
    assert browser.execute_script("return window.scrollY") > 0  # opened at the newest, at the bottom
    browser.execute_script("window.scrollTo(0, 0)")  # scrolling up to the top pages in older history
    wait_text(browser, "timeline", "prompt number 2400", 30)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#timeline .timeline-prompt")) == 100
    browser.find_element(By.ID, "composer").send_keys("still responsive")
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "send").is_enabled())
    # writing warms the session's sandbox, which fails (the seeded repository does not exist): those
    # events must have reached this page before it is left, or they are rightly unread afterwards
    wait_text(browser, "timeline", "does not exist", 60)
    wait_text(browser, "boot-progress", "Git sync: failed", 30)

    browser.get(f"{server.url}/")  # seen now: the dot is gone
    row = WebDriverWait(browser, 60).until(ec.visibility_of_element_located((By.CSS_SELECTOR, entry)))
    WebDriverWait(browser, 15).until(lambda d: not d.find_elements(By.CSS_SELECTOR, f"{entry} .unread-dot"))


def test_a_page_that_falls_behind_catches_up_without_a_reload(
    server: RunningServer, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    """A flood of live messages overruns the page's subscription (the hub's limit is small on this
    server), so it gets a resync; a prompt sent in the middle of the flood still shows, and the page
    was never reloaded."""
    headers = {"Authorization": f"Bearer {server.token}"}
    repo = httpx.post(f"{server.url}/api/repositories", json={"url": str(make_origin(tmp_path))}, headers=headers)
    sid = httpx.post(f"{server.url}/api/sessions", json={"repository_id": repo.json()["id"]}, headers=headers).json()[
        "id"
    ]
    browser.get(f"{server.url}/sessions/{sid}")
    WebDriverWait(browser, 60).until(ec.visibility_of_element_located((By.ID, "composer")))
    browser.execute_script("window.__notReloaded = true")
    with connect(f"ws://{server.url.split('//', 1)[1]}/api/sessions/{sid}/ws") as socket:
        socket.send(json.dumps({"type": "subscribe", "token": server.token}))
        # the prompt, then a flood right behind it on the same socket: it reaches the page's queue
        # among hundreds of messages, more than the page drains between two looks
        socket.send(json.dumps({"type": "prompt", "content": "Sent while the page was drowning"}))
        for _ in range(2000):
            socket.send('{"type": "typing"}')
    wait_text(browser, "timeline", "Sent while the page was drowning", 60)
    assert browser.execute_script("return window.__notReloaded") is True
    assert "a follower fell behind and caught up" in server.log_path.read_text()  # it was the catch-up

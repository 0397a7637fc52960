"""The terminal of a live session, in a real browser: a shell in the sandbox as its own user (not
root) in the agent's workspace, where the agent's commit is; what is run shows in the session;
a reload takes the same shell up again; someone who may not prompt the session gets no terminal."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from websockets.sync.client import connect

from tests.e2e.conftest import prompt_and_wait, screenshot
from tests.fakes.llm_server import FakeLLM, Turn
from tests.integration.sandbox_harness import make_origin, require_opencode
from tests.integration.stream_client import bash
from tests.servers import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def screen(driver: webdriver.Chrome) -> str:
    return str(driver.execute_script("return document.querySelector('.xterm-rows')?.innerText || ''"))


def type_line(driver: webdriver.Chrome, text: str) -> None:
    driver.find_element(By.CSS_SELECTOR, ".xterm-helper-textarea").send_keys(text + "\n")


def test_a_terminal_in_the_sandbox(
    server: RunningServer, llm: FakeLLM, browser: webdriver.Chrome, second_browser: webdriver.Chrome, tmp_path: Path
) -> None:
    require_opencode()
    headers = {"Authorization": f"Bearer {server.token}"}
    repo = httpx.post(f"{server.url}/api/repositories", json={"url": str(make_origin(tmp_path))}, headers=headers)
    body = {"repository_id": repo.json()["id"], "title": "Terminal", "model": "llm/scripted"}
    session = httpx.post(f"{server.url}/api/sessions", json=body, headers=headers).json()["id"]
    llm.clear()
    llm.add(
        Turn(tool_calls=[bash("echo x > x.txt && git add x.txt && git commit -qm 'The agent was here'")]),
        Turn(text="Committed."),
    )
    prompt_and_wait(server, session, "Commit")

    browser.get(f"{server.url}/sessions/{session}")
    link = WebDriverWait(browser, 60).until(ec.visibility_of_element_located((By.ID, "open-terminal")))
    assert link.get_attribute("href") == f"{server.url}/terminal/{session}"
    browser.get(f"{server.url}/terminal/{session}")
    WebDriverWait(browser, 120).until(lambda d: d.find_element(By.ID, "state").text == "Connected")
    type_line(browser, "id -u")
    uid = WebDriverWait(browser, 30).until(lambda d: re.search(r"id -u\s*\n\s*(\d+)", screen(d)))
    assert uid.group(1) != "0"  # the sandbox's user, never root
    type_line(browser, "git log -1 --format=%s")
    WebDriverWait(browser, 30).until(lambda d: "The agent was here" in screen(d))
    screenshot(browser, "terminal")
    type_line(browser, "echo shell-$$")
    before = WebDriverWait(browser, 30).until(lambda d: re.search(r"\nshell-(\d+)", screen(d))).group(1)
    browser.refresh()  # the page reloads: the same shell is taken up again
    WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "state").text == "Connected")
    type_line(browser, "echo shell-$$")
    after = WebDriverWait(browser, 30).until(lambda d: re.search(r"\nshell-(\d+)", screen(d))).group(1)
    assert after == before
    events = httpx.get(f"{server.url}/api/sessions/{session}/events", params={"after": 0}, headers=headers).json()
    used = [e["data"] for e in events["events"] if e["type"] == "terminal"]
    assert [(u["action"], u.get("text", "")) for u in used][:3] == [
        ("opened", ""),
        ("ran", "id -u"),
        ("ran", "git log -1 --format=%s"),
    ]
    assert used[0]["by"]["name"] == "Ada Lovelace"

    # nobody signed in: the page sends them to sign in; a socket with a made-up token is refused
    second_browser.delete_all_cookies()
    second_browser.get(f"{server.url}/terminal/{session}")
    WebDriverWait(second_browser, 30).until(lambda d: "/login" in d.current_url)
    with connect(f"{server.url.replace('http', 'ws')}/api/sessions/{session}/terminal") as socket:
        socket.send(json.dumps({"type": "subscribe", "token": "cli_madeup"}))
        refused = json.loads(socket.recv(timeout=10))
    assert refused["type"] == "error"


def test_the_terminal_page_takes_no_script_from_its_address(server: RunningServer, browser: webdriver.Chrome) -> None:
    """A link to /terminal/<something> from anywhere cannot put script into the app's origin."""
    browser.get(f"{server.url}/terminal/x%22%3Bwindow.pwned%3D1%3B%22")  # x";window.pwned=1;"
    assert browser.execute_script("return window.pwned === undefined")
    assert "no such session" in browser.page_source

"""The session's details panel: what a session is and what it changed, also once its sandbox is gone."""

from __future__ import annotations

from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import click, prompt_and_wait, screenshot, text_of, wait_text
from tests.fakes.llm_server import FakeLLM, Turn
from tests.integration.sandbox_harness import make_origin, require_opencode
from tests.integration.stream_client import bash
from tests.servers import RunningServer

EDIT = "printf 'print(\"hello, world\")\\n' > src/app.py && echo new > NOTES.md && git add -A && git commit -qm Greet"


def test_the_files_changed_stay_after_the_sandbox_stops(
    server: RunningServer, llm: FakeLLM, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    require_opencode()
    headers = {"Authorization": f"Bearer {server.token}"}
    origin = make_origin(tmp_path, {"src/app.py": "print('hello')\n"})
    repo = httpx.post(f"{server.url}/api/repositories", json={"url": str(origin)}, headers=headers).json()
    session = httpx.post(
        f"{server.url}/api/sessions", json={"repository_id": repo["id"], "title": "Details"}, headers=headers
    ).json()["id"]
    llm.clear()
    llm.add(
        Turn(tool_calls=[bash(EDIT)]),
        Turn(text="Greeted."),
    )
    prompt_and_wait(server, session, "Greet")

    browser.get(f"{server.url}/sessions/{session}")
    click(browser, "details-toggle")
    wait_text(browser, "changed-files", "src/app.py", 60)  # live from the sandbox
    assert "NOTES.md" in text_of(browser, "changed-files")
    wait_text(browser, "details", "Ada Lovelace (owner)", 30)
    click(browser, "sleep-sandbox")
    wait_text(browser, "session-status", "stopped", 120)
    now = httpx.get(f"{server.url}/api/sessions/{session}", headers=headers).json()
    assert now["session"]["status"] == "stopped" and now["sandbox"]["status"] == "stopped"

    # the sandbox is gone: the page, opened again, still lists what it changed, with each patch
    browser.get(f"{server.url}/sessions/{session}")
    click(browser, "details-toggle")
    wait_text(browser, "changed-files", "src/app.py", 60)
    listed = text_of(browser, "changed-files")
    assert "src/app.py +1 \u22121" in listed and "NOTES.md +1 \u22120 · added" in listed
    summaries = browser.find_elements(By.CSS_SELECTOR, "#changed-files .changed-file summary")
    next(s for s in summaries if "src/app.py" in s.text).click()
    WebDriverWait(browser, 10).until(lambda d: '+print("hello, world")' in text_of(d, "changed-files"))
    assert "Ready" in text_of(browser, "boot-timings") and "Agent done in" in text_of(browser, "boot-timings")
    screenshot(browser, "session-details-after-stop")

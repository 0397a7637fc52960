"""Plan, then build, in the browser: "Plan first" sends a plan prompt (the sandbox refuses the
agent's write), the answer shows as a plan with "Build this", which puts an editable build prompt
carrying the plan in the composer; sent, it builds."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import click, screenshot, wait_text
from tests.fakes.llm_server import FakeLLM, ToolCall, Turn
from tests.integration.sandbox_harness import make_origin, require_opencode
from tests.integration.stream_client import bash
from tests.servers import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
PLAN = "Plan: write hello to notes.txt, then commit it."


def test_plan_first_then_build_this(
    server: RunningServer, llm: FakeLLM, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    require_opencode()
    headers = {"Authorization": f"Bearer {server.token}"}
    repo = httpx.post(f"{server.url}/api/repositories", json={"url": str(make_origin(tmp_path))}, headers=headers)
    body = {"repository_id": repo.json()["id"], "title": "Plan then build", "model": "llm/scripted"}
    session = httpx.post(f"{server.url}/api/sessions", json=body, headers=headers).json()["id"]
    llm.clear()
    llm.add(
        Turn(tool_calls=[ToolCall("write", {"filePath": "notes.txt", "content": "too early"})]),
        Turn(text=PLAN),
        Turn(tool_calls=[bash("echo hello > notes.txt && git add notes.txt && git commit -qm Notes")]),
        Turn(text="Built."),
    )
    browser.get(f"{server.url}/sessions/{session}")
    box = WebDriverWait(browser, 60).until(ec.visibility_of_element_located((By.ID, "composer")))
    wait_text(browser, "session-status", "ready", 120)
    box.send_keys("Add notes")
    click(browser, "plan-toggle")
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "send").text == "Plan")
    click(browser, "send")
    card = WebDriverWait(browser, 120).until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".timeline-plan")))
    assert PLAN in card.text
    workspace = server.data_dir / "sandboxes" / session / "workspace"
    assert not (workspace / "notes.txt").exists()  # the plan's write was refused
    card.find_element(By.CSS_SELECTOR, ".build-this").click()
    WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.ID, "composer").get_attribute("value") == f"Build this plan:\n\n{PLAN}"
    )
    assert browser.find_element(By.ID, "send").text == "Send"  # a build, not another plan
    browser.find_element(By.ID, "composer").send_keys(" Keep it short.")  # editable first
    click(browser, "send")
    WebDriverWait(browser, 120).until(lambda _: (workspace / "notes.txt").exists())
    assert (workspace / "notes.txt").read_text() == "hello\n"
    asked = [m for m in llm.agent_requests()[-1]["messages"] if m.get("role") == "user"]
    assert any(f"{PLAN} Keep it short." in str(m.get("content")) for m in asked)
    screenshot(browser, "plan-then-build")

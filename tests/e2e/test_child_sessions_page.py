"""A parent's page while its agent's child sessions work: a card per child appears and follows the
child live (working, then done) without a reload; the sidebar lists each child under its parent."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import click, screenshot, text_of, wait_text
from tests.fakes.llm_server import FakeLLM, ToolCall, Turn
from tests.integration.sandbox_harness import make_origin, require_opencode
from tests.servers import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
SLOW = "Still reading the repository, slowly. " * 4


def read(driver: webdriver.Chrome, css: str, what: str = "text") -> list[str]:
    """The matching elements' text (or an attribute); [] while React replaces them: the caller's wait
    looks again."""
    try:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        return [e.text if what == "text" else str(e.get_attribute(what)) for e in found]
    except StaleElementReferenceException:
        return []


def statuses(driver: webdriver.Chrome) -> list[str]:
    return read(driver, ".timeline-child .child-status")


def test_a_parents_page_follows_its_children_live(
    server: RunningServer, llm: FakeLLM, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    require_opencode()
    headers = {"Authorization": f"Bearer {server.token}"}
    repo = httpx.post(f"{server.url}/api/repositories", json={"url": str(make_origin(tmp_path))}, headers=headers)
    repo_id = str(repo.json()["id"])
    parent = httpx.post(
        f"{server.url}/api/sessions", json={"repository_id": repo_id, "title": "Fan-out parent"}, headers=headers
    ).json()["id"]
    llm.clear()
    spawn = [
        ToolCall("spawn-session", {"repository": repo_id, "prompt": f"[kid-{n}] Read it", "title": f"Kid {n}"})
        for n in (1, 2)
    ]
    llm.add(
        Turn(when="[fan-out]", tool_calls=spawn),
        Turn(when="[fan-out]", text="Two sessions are on it."),
        # each child answers slowly: its card shows it working before it shows it done
        Turn(when="[kid-1]", text=SLOW, chunk_delay_s=0.25),
        Turn(when="[kid-2]", text=SLOW, chunk_delay_s=0.25),
    )
    browser.get(f"{server.url}/sessions/{parent}")
    WebDriverWait(browser, 60).until(ec.visibility_of_element_located((By.ID, "composer")))
    sent = httpx.post(
        f"{server.url}/api/sessions/{parent}/prompts", json={"content": "[fan-out] Split"}, headers=headers
    )
    assert sent.status_code == 202, sent.text
    WebDriverWait(browser, 180).until(lambda d: len(statuses(d)) == 2 and "working" in statuses(d))
    WebDriverWait(browser, 30).until(lambda d: sorted(read(d, ".timeline-child .child-title")) == ["Kid 1", "Kid 2"])
    WebDriverWait(browser, 180).until(lambda d: statuses(d) == ["done", "done"])  # live: no reload
    children = httpx.get(f"{server.url}/api/sessions/{parent}/children", headers=headers).json()["children"]
    expected = {f"{server.url}/sessions/{c['id']}" for c in children}
    WebDriverWait(browser, 30).until(lambda d: set(read(d, ".timeline-child .child-title", "href")) == expected)
    # the details panel lists them too, with where they stand
    click(browser, "details-toggle")
    wait_text(browser, "details-children", "Kid 1 (done)", 30)
    assert "Kid 2 (done)" in text_of(browser, "details-children")
    click(browser, "details-toggle")
    # the sidebar: both children right under their parent (it refreshes every few seconds)
    WebDriverWait(browser, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#sidebar .sidebar-child")) == 2)

    def children_under_parent(d: webdriver.Chrome) -> bool:
        rows = read(d, "#sidebar .sidebar-session")
        at = next((i for i, text in enumerate(rows) if text.startswith("Fan-out parent")), None)
        return at is not None and sorted(r.split("\n")[0] for r in rows[at + 1 : at + 3]) == ["Kid 1", "Kid 2"]

    WebDriverWait(browser, 30).until(children_under_parent)
    screenshot(browser, "child-sessions")

"""The Automations page: create one with a preview of its prompt, run it, watch three failed runs
in a row pause it (with the reason, on the page and in the API), and resume it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.e2e.conftest import click, screenshot, wait_text
from tests.integration.sandbox_harness import make_origin
from tests.servers import RunningServer

pytestmark = pytest.mark.browser
REASON = (
    "paused after 3 failed runs in a row; the last: "
    "the prompt template could not be rendered: ZeroDivisionError: division by zero"
)


def row_of(browser: webdriver.Chrome, name: str) -> WebElement | None:
    rows = browser.find_elements(By.CSS_SELECTOR, "#automation-list .automation-row")
    try:
        return next((r for r in rows if name in r.text), None)
    except StaleElementReferenceException:  # re-rendered meanwhile: look again
        return None


def status_of(browser: webdriver.Chrome, name: str) -> str:
    row = row_of(browser, name)
    try:
        return row.find_element(By.CSS_SELECTOR, ".automation-status").text if row is not None else ""
    except StaleElementReferenceException:
        return ""


def open_with_a_repository(server: RunningServer, browser: webdriver.Chrome, tmp_path: Path) -> int:
    """A repository of this test's own, registered; the Automations page open. Returns its id."""
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}) as http:
        repo = http.post("/api/repositories", json={"url": str(make_origin(tmp_path))})
        assert repo.status_code == 201, repo.text
    browser.get(f"{server.url}/automations")
    return int(repo.json()["id"])


def test_three_failed_runs_pause_an_automation_on_the_page_and_in_the_api(
    server: RunningServer, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    repo_id = open_with_a_repository(server, browser, tmp_path)
    wait = WebDriverWait(browser, 60)
    name = wait.until(ec.visibility_of_element_located((By.ID, "automation-name")))
    name.send_keys("Broken triage")
    Select(browser.find_element(By.ID, "automation-repo")).select_by_value(str(repo_id))
    template = browser.find_element(By.ID, "automation-template")
    template.clear()
    template.send_keys("Triage {{ repository }}: {{ 1 / 0 }}")
    click(browser, "automation-preview")
    wait_text(browser, "automations-error", "ZeroDivisionError: division by zero")  # seen before creating it
    click(browser, "automation-create")
    wait_text(browser, "automations-message", "Created Broken triage")
    wait.until(lambda d: row_of(d, "Broken triage") is not None)

    for number in (1, 2, 3):
        row = row_of(browser, "Broken triage")
        assert row is not None
        row.find_element(By.CSS_SELECTOR, ".run-now").click()
        wait_text(browser, "automations-message", f"Run #{number}: failed")
    wait.until(lambda d: status_of(d, "Broken triage") == "paused")
    row = row_of(browser, "Broken triage")
    assert row is not None
    assert REASON in row.find_element(By.CSS_SELECTOR, ".automation-reason").text
    statuses = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#automation-runs .run-status")]
    assert statuses == ["failed", "failed", "failed"]
    screenshot(browser, "automations-paused")
    row = row_of(browser, "Broken triage")
    assert row is not None
    row.find_element(By.CSS_SELECTOR, ".run-now").click()  # a paused automation does not run
    wait_text(browser, "automations-error", "paused: resume it first")

    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}) as http:
        listed = http.get("/api/automations").json()["automations"]
        mine = next(a for a in listed if a["name"] == "Broken triage")
        assert (mine["status"], mine["paused_reason"], mine["last_run"]["status"]) == ("paused", REASON, "failed")

    row = row_of(browser, "Broken triage")
    assert row is not None
    row.find_element(By.CSS_SELECTOR, ".resume").click()
    wait_text(browser, "automations-message", "Resumed")
    wait.until(lambda d: status_of(d, "Broken triage") == "active")


def test_the_form_asks_for_what_each_trigger_needs(
    server: RunningServer, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    repo_id = open_with_a_repository(server, browser, tmp_path)
    wait = WebDriverWait(browser, 60)
    wait.until(ec.visibility_of_element_located((By.ID, "automation-cron")))  # a schedule, to begin with
    Select(browser.find_element(By.ID, "automation-trigger")).select_by_value("slack")
    wait.until(ec.visibility_of_element_located((By.ID, "automation-channel"))).send_keys("C0ALERTS")
    assert browser.find_elements(By.ID, "automation-cron") == []
    browser.find_element(By.ID, "automation-contains").send_keys("deploy failed")
    browser.find_element(By.ID, "automation-name").send_keys("Alert triage")
    Select(browser.find_element(By.ID, "automation-repo")).select_by_value(str(repo_id))
    click(browser, "automation-create")
    wait_text(browser, "automations-message", "Created Alert triage")
    wait_text(browser, "automation-list", "Slack C0ALERTS: messages holding “deploy failed”")
    Select(browser.find_element(By.ID, "automation-trigger")).select_by_value("github")
    events = wait.until(ec.visibility_of_element_located((By.ID, "automation-events")))
    events.clear()
    events.send_keys("check_run.failed, made.up")
    name = browser.find_element(By.ID, "automation-name")
    name.clear()
    name.send_keys("Fix CI")
    click(browser, "automation-create")
    wait_text(browser, "automations-error", "events: one or more of issues.labeled")  # made.up is no event

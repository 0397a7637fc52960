"""Settings (repositories, write-only secrets, API tokens) and Stats, in the browser."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.e2e.conftest import click, screenshot, text_of, wait_text
from tests.fakes.llm_server import FakeLLM, Turn
from tests.integration.sandbox_harness import make_origin
from tests.servers import RunningServer

pytestmark = pytest.mark.browser


def test_settings_manage_repositories_secrets_and_tokens(
    server: RunningServer, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    origin = make_origin(tmp_path)
    wait = WebDriverWait(browser, 60)
    browser.get(f"{server.url}/settings")
    wait.until(ec.visibility_of_element_located((By.ID, "repo-url"))).send_keys(str(tmp_path / "nowhere"))
    click(browser, "repo-add")
    error = wait.until(ec.visibility_of_element_located((By.ID, "settings-error")))
    assert "does not exist" in error.text  # a clear error, nothing added
    browser.find_element(By.ID, "repo-url").send_keys(str(origin))
    click(browser, "repo-add")
    wait_text(browser, "repo-list", str(origin))  # other tests' repositories are called origin too

    # Rebuild now: the image is built in the background; its status changes on the page, no reload
    def row() -> str:
        texts = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#repo-list .repo-row")]
        return next((t for t in texts if str(origin) in t), "")

    rows = browser.find_elements(By.CSS_SELECTOR, "#repo-list .repo-row")
    next(r for r in rows if str(origin) in r.text).find_element(By.CSS_SELECTOR, ".rebuild").click()
    wait.until(lambda d: "Building the image" in d.page_source)
    # the page had no image for it when the build was asked for: it shows the result by itself
    WebDriverWait(browser, 90).until(lambda _: "ready ·" in row())
    screenshot(browser, "settings-repositories")

    browser.find_element(By.ID, "secret-key").send_keys("NPM_TOKEN")
    browser.find_element(By.ID, "secret-value").send_keys("very-secret-value")
    click(browser, "secret-save")
    wait.until(lambda d: "Saved secret NPM_TOKEN" in d.page_source)
    browser.find_element(By.ID, "secret-key").send_keys("DEPLOY_KEY")
    browser.find_element(By.ID, "secret-value").send_keys("repo-only-value")
    Select(browser.find_element(By.ID, "secret-scope")).select_by_visible_text("origin")
    click(browser, "secret-save")
    wait.until(lambda d: "Saved secret DEPLOY_KEY" in d.page_source)
    rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#secret-list .secret-row")]
    assert any("NPM_TOKEN" in r and "all repositories" in r for r in rows), rows
    assert any("DEPLOY_KEY" in r and "origin" in r for r in rows), rows
    assert "very-secret-value" not in browser.page_source and "repo-only-value" not in browser.page_source

    # the default model: a malformed name is refused with a reason, a good one is used from now on
    browser.find_element(By.ID, "model-input").send_keys("just-a-name")
    click(browser, "model-save")
    wait_text(browser, "settings-error", "provider/model")
    browser.find_element(By.ID, "model-input").send_keys("anthropic/claude-sonnet-4-5")
    click(browser, "model-save")
    wait_text(browser, "default-model", "anthropic/claude-sonnet-4-5")
    Select(browser.find_element(By.ID, "provider-select")).select_by_visible_text("Anthropic")
    browser.find_element(By.ID, "provider-key").send_keys("sk-ant-test-key")
    click(browser, "provider-save")
    wait.until(lambda d: "Saved ANTHROPIC_API_KEY" in d.page_source)
    assert "sk-ant-test-key" not in browser.page_source
    # the shared server's default back to the scripted model: the tests after this one prompt on it
    browser.find_element(By.ID, "model-input").send_keys("llm/scripted")
    click(browser, "model-save")
    wait_text(browser, "default-model", "llm/scripted")

    browser.find_element(By.NAME, "name").send_keys("laptop")
    browser.find_element(By.XPATH, "//button[text()='Create token']").click()
    wait.until(lambda d: "Copy this token now" in d.page_source)
    assert "insp_" in browser.page_source
    screenshot(browser, "settings")
    click(browser, "color-mode")  # the dark theme, for the screenshot reviewers look at
    wait.until(lambda d: "dark" in (d.find_element(By.TAG_NAME, "html").get_attribute("class") or ""))
    screenshot(browser, "settings-dark")


def test_stats_page_shows_figures_and_chart(
    server: RunningServer, browser: webdriver.Chrome, llm: FakeLLM, tmp_path: Path
) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    priced = httpx.put(
        f"{server.url}/api/settings/prices", json={"llm/scripted": {"input": 3, "output": 15}}, headers=headers
    )
    assert priced.status_code == 200, priced.text
    # one prompt of Ada's, so there is something to cost (the real OpenCode reports its step's tokens)
    repo = httpx.post(f"{server.url}/api/repositories", json={"url": str(make_origin(tmp_path))}, headers=headers)
    body = {"repository_id": repo.json()["id"], "model": "llm/scripted"}
    sid = httpx.post(f"{server.url}/api/sessions", json=body, headers=headers).json()["id"]
    llm.add(Turn(text="Costed."))
    httpx.post(f"{server.url}/api/sessions/{sid}/prompts", json={"content": "Cost me"}, headers=headers)
    deadline = time.monotonic() + 120
    while Decimal(httpx.get(f"{server.url}/api/sessions/{sid}", headers=headers).json()["cost"]["dollars"]) == 0:
        assert time.monotonic() < deadline, "the prompt's cost was never recorded"
        time.sleep(0.5)
    browser.get(f"{server.url}/stats")
    figures = WebDriverWait(browser, 60).until(ec.visibility_of_element_located((By.ID, "stats-figures")))
    assert "Humans prompting" in figures.text and "Merge rate" in figures.text
    WebDriverWait(browser, 30).until(
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, "#sessions-chart .recharts-bar-rectangle")
            or d.find_elements(By.CSS_SELECTOR, "#sessions-chart svg")
        )
    )
    # what the agent cost, by person: the page says what the API says
    table = WebDriverWait(browser, 30).until(ec.visibility_of_element_located((By.ID, "cost-by-person")))
    figures = httpx.get(f"{server.url}/api/stats/costs", params={"days": 30}, headers=headers).json()
    [ada] = [row for row in figures["by_person"] if row["name"] == "Ada Lovelace"]
    assert int(ada["prompts"]) >= 1 and Decimal(ada["dollars"]) > 0
    WebDriverWait(browser, 30).until(lambda _: "Ada Lovelace" in table.text)
    assert text_of(browser, "cost-figures").startswith("Total\n$")
    screenshot(browser, "stats")


def test_an_admin_gives_agents_a_skill_and_a_person_a_budget(server: RunningServer, browser: webdriver.Chrome) -> None:
    browser.get(f"{server.url}/settings")
    WebDriverWait(browser, 60).until(ec.visibility_of_element_located((By.ID, "extension-add")))
    Select(browser.find_element(By.ID, "extension-kind")).select_by_value("skill")
    browser.find_element(By.ID, "extension-name").send_keys("house-style")
    browser.find_element(By.CSS_SELECTOR, "textarea[name=config]").send_keys("Use tabs, never spaces.")
    click(browser, "extension-add")
    wait_text(browser, "extension-list", "house-style")
    headers = {"Authorization": f"Bearer {server.token}"}
    listed = httpx.get(f"{server.url}/api/agent-extensions", headers=headers).json()["extensions"]
    assert {"kind": "skill", "name": "house-style", "repository_id": None} in [
        {k: e[k] for k in ("kind", "name", "repository_id")} for e in listed
    ]
    assert [e["config"] for e in listed if e["name"] == "house-style"] == [{"content": "Use tabs, never spaces."}]
    # a wrong one is refused with the reason, and nothing is added
    Select(browser.find_element(By.ID, "extension-kind")).select_by_value("mcp_local")
    browser.find_element(By.ID, "extension-name").send_keys("broken")
    browser.find_element(By.CSS_SELECTOR, "textarea[name=config]").send_keys('{"command": "not a list"}')
    click(browser, "extension-add")
    wait_text(browser, "agent-settings-error", "list of 1-20 arguments")
    assert "broken" not in text_of(browser, "extension-list")

    Select(browser.find_element(By.ID, "budget-user")).select_by_visible_text("Ada Lovelace")
    browser.find_element(By.ID, "budget-amount").send_keys("25")
    click(browser, "budget-save")
    wait_text(browser, "budget-list", "budget $25.00")
    me = httpx.get(f"{server.url}/api/me/spending", headers=headers).json()
    assert me["monthly_usd"] == 25
    httpx.put(f"{server.url}/api/users/{me_id(server)}/budget", json={"monthly_usd": None}, headers=headers)


def me_id(server: RunningServer) -> int:
    return httpx.get(f"{server.url}/api/me", headers={"Authorization": f"Bearer {server.token}"}).json()["id"]

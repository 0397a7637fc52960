"""The production server: health, API auth, and the home page in a real browser."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlmodel import Session as DBSession
from sqlmodel import select

from inspect_app.db import create_db_engine
from inspect_app.models import Repository, Session, User
from tests.e2e.conftest import choose_repository, click, screenshot, text_of, wait_text
from tests.fakes.llm_server import FakeLLM, Turn
from tests.integration.sandbox_harness import make_origin, require_opencode
from tests.servers import RunningServer

pytestmark = pytest.mark.browser


def test_health_reports_database_and_migrations(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}/api/health", timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True, "backend": "sqlite"}
    assert body["migrations"]["up_to_date"] is True
    assert body["version"]
    assert body["sandboxes"] == {"provider": "local", "confinement": "bubblewrap"}  # bubblewrap is a prerequisite


def test_api_requires_a_bearer_token(server: RunningServer) -> None:
    denied = httpx.get(f"{server.url}/api/me", timeout=10)
    assert denied.status_code == 401
    assert denied.json()["error"]["code"] == "unauthorized"
    wrong = httpx.get(f"{server.url}/api/me", headers={"Authorization": "Bearer insp_wrong"}, timeout=10)
    assert wrong.status_code == 401
    me = httpx.get(f"{server.url}/api/me", headers={"Authorization": f"Bearer {server.token}"}, timeout=10)
    assert me.status_code == 200
    assert me.json()["name"] == "Ada Lovelace"


def test_openapi_docs_are_served(server: RunningServer) -> None:
    assert httpx.get(f"{server.url}/api/openapi.json", timeout=10).json()["info"]["title"] == "Inspect API"
    assert httpx.get(f"{server.url}/api/docs", timeout=10).status_code == 200


def test_home_page_shows_sessions_from_the_database(server: RunningServer, browser: webdriver.Chrome) -> None:
    browser.get(server.url + "/")
    wait = WebDriverWait(browser, 60)
    empty = wait.until(ec.visibility_of_element_located((By.ID, "sessions-empty")))
    assert "No sessions yet" in empty.text
    wait_text(browser, "sidebar", "Ada Lovelace")
    assert "Built with Reflex" not in browser.page_source

    engine = create_db_engine(server.database_url)
    try:
        with DBSession(engine) as db:
            user = db.exec(select(User).where(User.is_local == sa.true())).one()
            repo = Repository(url="/srv/git/demo", name="demo")
            db.add(repo)
            db.flush()
            db.add(Session(repository_id=repo.id, base_branch="main", creator_id=user.id, title="Fix the login bug"))  # type: ignore[arg-type]
            db.commit()
    finally:
        engine.dispose()

    browser.get(server.url + "/")
    card = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#sessions-list .session-card")))
    assert "Fix the login bug" in card.text
    assert "demo @ main" in card.text
    wait_text(browser, "sidebar", "Fix the login bug")


def test_sidebar_search_and_phone_width(server: RunningServer, browser: webdriver.Chrome) -> None:
    browser.get(server.url + "/")
    search = WebDriverWait(browser, 60).until(ec.visibility_of_element_located((By.ID, "sessions-search")))
    search.send_keys("no-such-session-zzz")
    wait_text(browser, "sidebar", "Nothing here yet")
    search.clear()
    search.send_keys("login")
    wait_text(browser, "sidebar", "Fix the login bug")
    search.send_keys(Keys.CONTROL, "a")
    search.send_keys(Keys.DELETE)  # the search stays with the tab: leave it empty for the next tests
    time.sleep(1)  # the search box is debounced
    browser.get(server.url + "/")
    WebDriverWait(browser, 30).until(lambda d: "Fix the login bug" in text_of(d, "sidebar"))
    assert browser.find_element(By.ID, "sessions-search").get_attribute("value") == ""
    browser.set_window_size(390, 844)
    try:
        bar = WebDriverWait(browser, 10).until(ec.visibility_of_element_located((By.ID, "mobile-bar")))
        assert bar.is_displayed() and not browser.find_element(By.ID, "sidebar").is_displayed()
        screenshot(browser, "home-phone")
    finally:
        browser.set_window_size(1280, 900)


def test_new_session_composer_warms_the_sandbox_and_starts(
    server: RunningServer, llm: FakeLLM, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    require_opencode()
    origin = make_origin(tmp_path)
    headers = {"Authorization": f"Bearer {server.token}"}
    assert httpx.post(f"{server.url}/api/repositories", json={"url": str(origin)}, headers=headers).status_code == 201
    browser.get(server.url + "/")
    wait = WebDriverWait(browser, 60)

    wait.until(ec.visibility_of_element_located((By.ID, "branch"))).send_keys("bad..branch")
    time.sleep(0.6)  # the branch field is debounced
    browser.find_element(By.ID, "repo-filter").send_keys("orig")
    choose_repository(browser, "origin")
    wait_text(browser, "new-session", "not a valid branch name")  # refused before anything starts
    browser.find_element(By.ID, "branch").clear()
    browser.find_element(By.ID, "branch").send_keys("main")
    time.sleep(0.6)
    llm.add(Turn(text="Started from the composer."))
    browser.find_element(By.ID, "new-prompt").send_keys("Say hello from the composer")
    wait_text(browser, "new-session", "Sandbox warming up")  # it warmed while they wrote
    click(browser, "start-session")
    wait.until(lambda d: "/sessions/" in d.current_url)
    wait_text(browser, "timeline", "Say hello from the composer")
    wait_text(browser, "timeline", "Started from the composer.", 120)
    assert "origin" in text_of(browser, "session-header") and "main" in text_of(browser, "session-header")

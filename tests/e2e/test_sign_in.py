"""Signing a browser in and out, in local mode: the session lives in an HttpOnly cookie only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import click, new_browser, sign_in_with_token, text_of
from tests.servers import RunningServer

pytestmark = pytest.mark.browser


@pytest.fixture
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    driver = new_browser(tmp_path_factory)
    yield driver
    driver.quit()


def test_without_a_session_pages_go_to_login(server: RunningServer, fresh: webdriver.Chrome) -> None:
    fresh.get(f"{server.url}/settings")
    WebDriverWait(fresh, 30).until(lambda d: d.current_url.endswith("/login"))
    assert fresh.find_element(By.ID, "login-token").is_displayed()


def test_a_token_kept_in_local_storage_by_an_older_version_moves_to_the_cookie(
    server: RunningServer, fresh: webdriver.Chrome
) -> None:
    token = server.create_user("Grace Hopper", "grace.storage@example.com")
    fresh.get(f"{server.url}/login")
    fresh.execute_script("localStorage.setItem('inspect_token', arguments[0])", token)
    fresh.get(f"{server.url}/")  # no cookie yet: the server sends the page to /login, which moves it
    WebDriverWait(fresh, 60).until(lambda d: "Grace Hopper" in text_of(d, "sidebar"))
    assert fresh.execute_script("return localStorage.getItem('inspect_token')") is None
    cookie = fresh.get_cookie("inspect_session")
    assert cookie and cookie["httpOnly"] and cookie["value"] != token
    assert "inspect_session" not in fresh.execute_script("return document.cookie")  # no script reads it


def test_signing_out_ends_the_session(server: RunningServer, fresh: webdriver.Chrome) -> None:
    sign_in_with_token(fresh, server, server.create_user("Grace Hopper", "grace.out@example.com"))
    WebDriverWait(fresh, 60).until(lambda d: "Grace Hopper" in text_of(d, "sidebar"))
    fresh.find_element(By.CSS_SELECTOR, "#sign-out button").click()
    WebDriverWait(fresh, 30).until(lambda d: d.current_url.endswith("/login"))
    assert fresh.get_cookie("inspect_session") is None
    fresh.get(f"{server.url}/")
    WebDriverWait(fresh, 30).until(lambda d: d.current_url.endswith("/login"))


def test_a_wrong_token_is_refused_with_a_reason(server: RunningServer, fresh: webdriver.Chrome) -> None:
    fresh.get(f"{server.url}/login")
    fresh.find_element(By.ID, "login-token").send_keys("insp_wrong")
    click(fresh, "login-submit")
    WebDriverWait(fresh, 30).until(lambda d: "not valid" in text_of(d, "login-error"))
    assert fresh.get_cookie("inspect_session") is None

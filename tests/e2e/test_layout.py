"""How the pages fit: the sidebar gives a session's title its whole width (badges go under it); at a
phone's width (390 px) no page scrolls sideways and session titles stay readable. Screenshots of
the session page, light and dark, at desktop and phone widths, are saved for review."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import click, screenshot
from tests.integration.sandbox_harness import make_origin
from tests.servers import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
TITLE = "Make the login page load faster on slow phones"


def sideways(driver: webdriver.Chrome) -> int:
    """How far the page can scroll sideways, in pixels (0: it fits)."""
    return int(driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth"))


def in_view(driver: webdriver.Chrome, element_id: str) -> bool:
    """Whether the element lies wholly inside the window (nothing pushed it below the fold)."""
    return bool(
        driver.execute_script(
            "const r = document.getElementById(arguments[0]).getBoundingClientRect();"
            "return r.top >= 0 && r.bottom <= window.innerHeight && r.height > 0;",
            element_id,
        )
    )


def shown_width(driver: webdriver.Chrome, selector: str, text: str) -> float:
    """The width given to the title element showing ``text``."""
    for element in driver.find_elements(By.CSS_SELECTOR, selector):
        if element.text.startswith(text[:12]) or text.startswith(element.text.rstrip("…")[:12]):
            return float(element.rect["width"])
    raise AssertionError(f"no {selector} shows {text!r}")


def test_titles_have_room_and_no_page_scrolls_sideways(
    server: RunningServer, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    repo = httpx.post(f"{server.url}/api/repositories", json={"url": str(make_origin(tmp_path))}, headers=headers)
    body = {"repository_id": repo.json()["id"], "title": TITLE}
    session = httpx.post(f"{server.url}/api/sessions", json=body, headers=headers).json()["id"]
    browser.set_window_size(1280, 900)
    try:
        browser.get(f"{server.url}/sessions/{session}")
        WebDriverWait(browser, 60).until(ec.visibility_of_element_located((By.ID, "composer")))
        WebDriverWait(browser, 30).until(lambda d: TITLE[:12] in d.find_element(By.ID, "sidebar").text)
        assert shown_width(browser, "#sidebar .sidebar-title", TITLE) >= 190  # the sidebar's width, not a few letters
        screenshot(browser, "session-desktop-light")
        click(browser, "color-mode")
        WebDriverWait(browser, 10).until(
            lambda d: "dark" in (d.find_element(By.TAG_NAME, "html").get_attribute("class") or "")
        )
        screenshot(browser, "session-desktop-dark")
        browser.set_window_size(1280, 420)  # a short window: the sessions list scrolls, the controls stay
        WebDriverWait(browser, 10).until(lambda d: in_view(d, "color-mode"))
        click(browser, "color-mode")  # back to light, clicked where it is
        WebDriverWait(browser, 10).until(
            lambda d: "dark" not in (d.find_element(By.TAG_NAME, "html").get_attribute("class") or "")
        )
        click(browser, "color-mode")

        browser.set_window_size(390, 844)
        for path in ("/", f"/sessions/{session}", "/settings", "/stats", "/automations"):
            browser.get(f"{server.url}{path}")
            WebDriverWait(browser, 60).until(ec.visibility_of_element_located((By.ID, "mobile-bar")))
            WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
            assert sideways(browser) <= 0, f"{path} scrolls sideways by {sideways(browser)} px at 390 px"
            if path == "/":
                WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".session-card"))
                assert shown_width(browser, ".session-card .session-card-title", TITLE) >= 100  # 12+ characters
            if path.startswith("/sessions/"):
                screenshot(browser, "session-phone-dark")
                click(browser, "color-mode-phone")
                WebDriverWait(browser, 10).until(
                    lambda d: "dark" not in (d.find_element(By.TAG_NAME, "html").get_attribute("class") or "")
                )
                screenshot(browser, "session-phone-light")
    finally:
        browser.set_window_size(1280, 900)

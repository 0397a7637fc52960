"""Live previews: a workspace's dev server, seen through its own origin, and only by people signed in.

The sample repository's ``.inspect/start.sh`` starts ``tests/fixtures/preview_app/serve.py`` on a
port ``.inspect/preview`` declares (and declares a second port nothing listens on).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests import png
from tests.e2e.conftest import prompt_and_wait, screenshot
from tests.fakes.llm_server import FakeLLM, ToolCall, Turn
from tests.integration.sandbox_harness import make_origin, require_opencode
from tests.servers import RunningServer

APP = (Path(__file__).resolve().parents[1] / "fixtures" / "preview_app" / "serve.py").read_text()
PORT, IDLE_PORT = 18765, 18766
START = f"""#!/bin/bash
nohup python3 .inspect/serve.py {PORT} > /tmp/serve.log 2>&1 &
for _ in $(seq 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', {PORT}))" 2>/dev/null && exit 0
  sleep 0.1
done
exit 1
"""


def ready_session(server: RunningServer, tmp_path: Path) -> str:
    require_opencode()
    headers = {"Authorization": f"Bearer {server.token}"}
    origin = make_origin(
        tmp_path,
        {
            ".inspect/serve.py": APP,
            ".inspect/start.sh": START,
            ".inspect/preview": f"{PORT} Web app\n{IDLE_PORT}  # declared, nothing listens\n",
        },
    )
    repo = httpx.post(f"{server.url}/api/repositories", json={"url": str(origin)}, headers=headers).json()
    body = {"repository_id": repo["id"], "title": "Preview"}
    session = httpx.post(f"{server.url}/api/sessions", json=body, headers=headers).json()["id"]
    deadline = time.monotonic() + 120
    while True:
        events = httpx.get(f"{server.url}/api/sessions/{session}/events", params={"after": 0}, headers=headers)
        ready = [e for e in events.json()["events"] if e["type"] == "sandbox_status" and e["data"]["status"] == "ready"]
        if ready:
            assert [p["port"] for p in ready[-1]["data"]["previews"]] == [PORT, IDLE_PORT]
            return str(session)
        assert time.monotonic() < deadline, "the sandbox did not become ready"
        time.sleep(0.5)


def at_preview(server: RunningServer, url: str, **kwargs: object) -> httpx.Response:
    """A request to a preview URL (``http://<host>:<preview port>/…``) from a client that does not
    resolve ``*.localhost``: to 127.0.0.1, with the preview's host named."""
    parts = urlsplit(url)
    target = f"http://127.0.0.1:{server.preview_port}{parts.path}" + (f"?{parts.query}" if parts.query else "")
    headers = {"Host": parts.netloc, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    return httpx.get(target, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def session(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    return ready_session(server, tmp_path_factory.mktemp("preview"))


def test_a_preview_is_served_at_its_own_origin_only_to_people_signed_in(server: RunningServer, session: str) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    host = f"{session}-{PORT}.localhost:{server.preview_port}"

    # nobody signed in: the preview origin refuses; the app will not hand out a pass either
    refused = at_preview(server, f"http://{host}/")
    assert refused.status_code == 401 and "Hello from the sandbox" not in refused.text
    assert httpx.get(f"{server.url}/api/sessions/{session}/previews/{PORT}").status_code == 401
    forged = at_preview(server, f"http://{host}/", headers={"Cookie": "inspect_preview=e30.bm90LWEtc2lnbmF0dXJl"})
    assert forged.status_code == 401

    # signed in: the app redirects to the preview's own origin with a pass, traded for its cookie
    entry = httpx.get(f"{server.url}/api/sessions/{session}/previews/{PORT}", headers=headers)
    assert entry.status_code == 303
    location = entry.headers["location"]
    assert location.startswith(f"http://{host}/__inspect/enter?pass=")
    entered = at_preview(server, location)
    assert entered.status_code == 303 and entered.headers["location"] == "/"
    cookie = entered.cookies["inspect_preview"]
    assert "HttpOnly" in entered.headers["set-cookie"] and "Domain" not in entered.headers["set-cookie"]
    page = at_preview(server, f"http://{host}/", cookies={"inspect_preview": cookie})
    assert page.status_code == 200 and "Hello from the sandbox" in page.text

    # the sandbox's server never sees the preview's cookie, and gets one request per connection
    echoed = at_preview(server, f"http://{host}/headers", cookies={"inspect_preview": cookie, "theirs": "kept"})
    assert "theirs=kept" in echoed.text and "inspect_preview" not in echoed.text
    assert "Connection: close" in echoed.text

    # the pass is the port's own: another port of the same session, or a made-up one, is refused
    other = at_preview(server, f"http://{session}-{IDLE_PORT}.localhost/", cookies={"inspect_preview": cookie})
    assert other.status_code == 401
    # a declared port nothing listens on: said plainly
    idle_entry = httpx.get(f"{server.url}/api/sessions/{session}/previews/{IDLE_PORT}", headers=headers)
    idle_cookie = at_preview(server, idle_entry.headers["location"]).cookies["inspect_preview"]
    idle = at_preview(server, f"http://{session}-{IDLE_PORT}.localhost/", cookies={"inspect_preview": idle_cookie})
    assert idle.status_code == 502 and "nothing is listening" in idle.text
    # an expired or replayed-elsewhere entry pass does not open another session's preview
    elsewhere = at_preview(server, location.replace(f"{session}-{PORT}", f"{'0' * 16}-{PORT}"))
    assert elsewhere.status_code == 401

    # the port is reachable only through the preview origin: not from the host directly
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", PORT), timeout=2):
        pass


def test_an_upgraded_connection_streams_both_ways(server: RunningServer, session: str) -> None:
    """What a dev server's WebSocket (hot reload) needs: after the upgrade, bytes flow as they come."""
    headers = {"Authorization": f"Bearer {server.token}"}
    entry = httpx.get(f"{server.url}/api/sessions/{session}/previews/{PORT}", headers=headers).headers["location"]
    cookie = at_preview(server, entry).cookies["inspect_preview"]
    with socket.create_connection(("127.0.0.1", server.preview_port), timeout=15) as conn:
        conn.sendall(
            f"GET /ws HTTP/1.1\r\nHost: {session}-{PORT}.localhost\r\nConnection: Upgrade\r\nUpgrade: echo\r\n"
            f"Cookie: inspect_preview={cookie}\r\n\r\n".encode()
        )
        reader = conn.makefile("rb")
        assert reader.readline().startswith(b"HTTP/1.1 101")
        while reader.readline() not in (b"\r\n", b""):
            pass
        for word in (b"one", b"two"):
            conn.sendall(word + b"\n")
            assert reader.readline() == b"echo: " + word + b"\n"


def test_the_session_page_links_the_preview_and_the_preview_cannot_act_as_the_person(
    server: RunningServer, session: str, browser: webdriver.Chrome
) -> None:
    browser.get(f"{server.url}/sessions/{session}")
    link = WebDriverWait(browser, 60).until(ec.visibility_of_element_located((By.CLASS_NAME, "preview-link")))
    assert "Web app" in link.text
    browser.get(link.get_attribute("href") or "")
    heading = WebDriverWait(browser, 60).until(ec.visibility_of_element_located((By.ID, "heading")))
    assert heading.text == "Hello from the sandbox"
    origin = browser.execute_script("return location.origin")
    assert origin == f"http://{session}-{PORT}.localhost:{server.preview_port}"
    assert urlsplit(origin).netloc != urlsplit(server.url).netloc
    screenshot(browser, "preview")
    # the preview's own script asks the app who is signed in: it learns nothing
    answer = browser.execute_async_script(
        """const done = arguments[arguments.length - 1];
        fetch(arguments[0] + "/api/me", {credentials: "include"})
          .then(r => r.text().then(t => done("status " + r.status + " " + t)))
          .catch(e => done("refused: " + e));""",
        server.url,
    )
    assert "Ada" not in answer and "ada@example.com" not in answer
    assert answer.startswith("refused") or answer.startswith("status 401")


def test_the_agent_screenshots_the_preview_and_the_session_shows_it(
    server: RunningServer, session: str, llm: FakeLLM, browser: webdriver.Chrome
) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    llm.clear()
    llm.add(
        Turn(
            tool_calls=[
                ToolCall("screenshot", {"url": f"http://127.0.0.1:{PORT}/", "caption": "Before: the home page"})
            ]
        ),
        Turn(text="Here is how it looks."),
    )
    message_id = prompt_and_wait(server, session, "Show me the page")
    events = httpx.get(f"{server.url}/api/sessions/{session}/events", params={"after": 0}, headers=headers).json()
    tool = [e["data"] for e in events["events"] if e["type"] == "tool_call" and e["data"]["tool"] == "screenshot"]
    assert tool and tool[-1]["status"] == "completed", tool
    shots = [e["data"] for e in events["events"] if e["type"] == "artifact" and e["data"]["kind"] == "screenshot"]
    assert len(shots) == 1 and shots[0]["meta"]["caption"] == "Before: the home page"
    assert shots[0]["meta"]["message_id"] == message_id
    url = shots[0]["url"]
    assert url.startswith(f"{server.url}/media/") and url in tool[-1]["output"]

    # anyone can fetch it (GitHub and Slack do, signed in nowhere): the page's colour at a known point
    picture = httpx.get(url)
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    image = png.decode(picture.content)
    assert (image.width, image.height) == (1280, 800)
    assert image.pixel(640, 600) == (12, 150, 200)  # the page's background, below its heading

    # the timeline shows it inline
    browser.get(f"{server.url}/sessions/{session}")
    shown = WebDriverWait(browser, 60).until(ec.visibility_of_element_located((By.CLASS_NAME, "screenshot-image")))
    WebDriverWait(browser, 30).until(lambda _: browser.execute_script("return arguments[0].naturalWidth", shown) > 0)
    assert browser.execute_script("return arguments[0].naturalWidth", shown) == 1280
    screenshot(browser, "session-with-screenshot")

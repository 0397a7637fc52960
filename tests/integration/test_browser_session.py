"""A hostile web page must not drive Inspect: the attacks on the UI's live socket and the session
cookie, run against the real server in local mode (no GitHub sign-in), and seen to fail.

The attack: a script opens Reflex's state socket (``/_event``) and sends the events the Settings
page sends to mint an API token. It must fail from a foreign Origin, from ``Origin: null``, without
the session cookie, and from a foreign Origin *with* a valid cookie — over WebSocket and polling —
and nothing may change (no token minted). The same events from the app's own origin with the
cookie do mint one: the check that the attack is real.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import socketio
import sqlalchemy as sa
from sqlmodel import Session as DBSession
from sqlmodel import select

from inspect_app.db import create_db_engine
from inspect_app.models import ApiToken
from inspect_app.ui.pages.settings_state import SettingsState
from inspect_app.ui.state import AppState
from tests.servers import RunningServer, start_server

EXTENSION = "chrome-extension://abcdefghijklmnopabcdefghijklmnop"
EVIL = "https://evil.example"
# the events' names as the page sends them (Reflex names a handler by its state's full path)
LOAD_IDENTITY = f"{AppState.get_full_name()}.load_identity"
CREATE_TOKEN = f"{SettingsState.get_full_name()}.create_token"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("browser-session"), INSPECT_EXTENSION_ORIGINS=EXTENSION)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def engine(server: RunningServer) -> Iterator[sa.Engine]:
    engine = create_db_engine(server.database_url)
    yield engine
    engine.dispose()


def one_time_link(server: RunningServer) -> str:
    found = re.search(r"inspect: sign in \(once, within \d+ min\): (\S+)", server.log_path.read_text())
    assert found, server.log_tail()
    return found.group(1)


@pytest.fixture(scope="module")
def cookie(server: RunningServer) -> str:
    """A browser session, from the one-time link (the first and only time it works)."""
    signed_in = httpx.get(one_time_link(server), timeout=30)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
    return signed_in.cookies["inspect_session"]


def tokens_named(engine: sa.Engine, name: str) -> list[ApiToken]:
    with DBSession(engine) as db:
        return list(db.exec(select(ApiToken).where(ApiToken.name == name)).all())


def event(name: str, payload: dict, path: str = "/settings") -> dict:
    return {"name": name, "payload": payload, "router_data": {"pathname": path, "query": {}, "asPath": path}}


async def drive_socket(server: RunningServer, *, origin: str | None, cookie: str, token_name: str) -> list[dict]:
    """Do what a hostile page's script would: open the socket, become someone, mint a token.
    Returns the state updates received; raises socketio's ConnectionError when refused."""
    client = socketio.AsyncClient(reconnection=False)
    updates: list[dict] = []
    minted = asyncio.Event()

    @client.on("event", namespace="/_event")
    async def _update(data: dict) -> None:
        updates.append(data)
        if "Copy this token now" in str(data):
            minted.set()

    headers = {"Cookie": f"inspect_session={cookie}"} if cookie else {}
    if origin is not None:
        headers["Origin"] = origin
    await client.connect(
        f"{server.url}?token={uuid.uuid4()}",
        headers=headers,
        transports=["websocket"],
        namespaces=["/_event"],
        socketio_path="/_event",
        wait_timeout=20,
    )
    try:
        await client.emit("event", event(LOAD_IDENTITY, {}), namespace="/_event")
        await client.emit("event", event(CREATE_TOKEN, {"form": {"name": token_name}}), namespace="/_event")
        await asyncio.wait_for(minted.wait(), 30)
    finally:
        await client.disconnect()
    return updates


@pytest.mark.parametrize(
    ("case", "origin", "with_cookie"),
    [
        ("foreign-origin", EVIL, False),
        ("null-origin", "null", False),
        ("no-origin", None, True),
        ("same-origin-no-cookie", "", False),  # "" stands for the server's own origin
        ("foreign-origin-with-cookie", EVIL, True),
        ("same-site-other-port-with-cookie", "http://127.0.0.1:1", True),  # SameSite=Lax sends it there
    ],
)
async def test_a_refused_websocket_gets_no_identity_and_changes_nothing(
    server: RunningServer, engine: sa.Engine, cookie: str, case: str, origin: str | None, with_cookie: bool
) -> None:
    name = f"attack-{case}"
    with pytest.raises(socketio.exceptions.ConnectionError):
        await drive_socket(
            server, origin=server.url if origin == "" else origin, cookie=cookie if with_cookie else "", token_name=name
        )
    await asyncio.sleep(0)  # nothing to wait for: a refused handshake never reached Reflex
    assert tokens_named(engine, name) == []


@pytest.mark.parametrize(
    ("origin", "with_cookie"), [(EVIL, False), ("null", False), ("", False), (EVIL, True), (None, True)]
)
def test_the_polling_transport_is_refused_the_same_way(
    server: RunningServer, cookie: str, origin: str | None, with_cookie: bool
) -> None:
    headers = {"Cookie": f"inspect_session={cookie}"} if with_cookie else {}
    if origin is not None:
        headers["Origin"] = origin or server.url
    answer = httpx.get(f"{server.url}/_event/?EIO=4&transport=polling&token={uuid.uuid4()}", headers=headers)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"


async def test_the_apps_own_page_with_the_cookie_works(server: RunningServer, engine: sa.Engine, cookie: str) -> None:
    """The control: the same script from the app's origin, with the cookie, is the local user."""
    updates = await drive_socket(server, origin=server.url, cookie=cookie, token_name="from-the-settings-page")
    assert "Ada Lovelace" in str(updates)
    [minted] = tokens_named(engine, "from-the-settings-page")
    assert minted.user_id > 0


async def test_the_extension_origin_is_allowed(server: RunningServer, engine: sa.Engine, cookie: str) -> None:
    await drive_socket(server, origin=EXTENSION, cookie=cookie, token_name="from-the-extension")
    assert len(tokens_named(engine, "from-the-extension")) == 1


def test_the_one_time_link_works_once(server: RunningServer, cookie: str) -> None:
    assert cookie  # the module's cookie used the link
    again = httpx.get(one_time_link(server), timeout=30)
    assert again.status_code == 303 and again.headers["location"] == "/login?error=link"
    assert "inspect_session" not in again.headers.get("set-cookie", "")
    link_file = server.data_dir / "login-link"
    assert not link_file.exists()  # used up; only a hash and an expiry were ever written there


def test_the_cookie_is_http_only(server: RunningServer, tmp_path: Path) -> None:
    answer = httpx.post(
        f"{server.url}/api/auth/session", data={"token": server.token}, headers={"Origin": server.url}, timeout=30
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    set_cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in set_cookie
    # cross-site for the extension's frame (this server has an extension origin): Secure with it
    assert "SameSite=none" in set_cookie and "Secure" in set_cookie
    # the cookie holds a session of its own, not the pasted token (signing out must not revoke that)
    assert answer.cookies["inspect_session"] != server.token


def test_signing_in_with_a_token_checks_origin_and_token(server: RunningServer) -> None:
    url = f"{server.url}/api/auth/session"
    foreign = httpx.post(url, data={"token": server.token}, headers={"Origin": EVIL})
    assert foreign.status_code == 403 and "set-cookie" not in foreign.headers
    wrong = httpx.post(url, data={"token": "insp_wrong"}, headers={"Origin": server.url})
    assert wrong.status_code == 303 and wrong.headers["location"] == "/login?error=token"
    assert "set-cookie" not in wrong.headers


def test_pages_send_a_browser_without_a_session_to_login(server: RunningServer, cookie: str) -> None:
    html = {"Accept": "text/html"}
    for path in ("/", "/settings", "/sessions/abc"):
        answer = httpx.get(server.url + path, headers=html)
        assert answer.status_code == 303 and answer.headers["location"] == "/login", path
        jar = {"inspect_session": cookie}
        signed_in = httpx.get(server.url + path, headers=html, cookies=jar, follow_redirects=True)
        assert signed_in.status_code == 200 and signed_in.url.path.rstrip("/") == path.rstrip("/"), path
        assert signed_in.headers["cache-control"] == "no-cache"  # a cached page would skip this check
    assert httpx.get(server.url + "/login", headers=html).status_code == 200
    framed = httpx.get(server.url + "/extension", headers=html)
    assert framed.status_code == 401 and "Sign in to Inspect first" in framed.text  # /login may not be framed


def test_cookie_authenticated_api_writes_check_origin(server: RunningServer, cookie: str) -> None:
    url = f"{server.url}/api/repositories"
    body = {"url": "/nonexistent/repository"}
    for origin in (EVIL, "null", None):
        headers = {"Origin": origin} if origin else {}
        refused = httpx.post(url, json=body, headers=headers, cookies={"inspect_session": cookie})
        assert refused.status_code == 403, origin
    # the app's own origin reaches the route (which then judges the repository)
    own = httpx.post(url, json=body, headers={"Origin": server.url}, cookies={"inspect_session": cookie})
    assert own.status_code not in (401, 403)
    # a bearer token is not something another page can send: Origin does not matter then
    bearer = httpx.post(url, json=body, headers={"Origin": EVIL, "Authorization": f"Bearer {server.token}"})
    assert bearer.status_code not in (401, 403)
    # nor may another origin read with the cookie (the CORS layer would hand it the answer)
    read = httpx.get(f"{server.url}/api/me", headers={"Origin": EVIL}, cookies={"inspect_session": cookie})
    assert read.status_code == 403


async def test_signing_out_ends_the_session(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        signed_in = await http.post("/api/auth/session", data={"token": server.token}, headers={"Origin": server.url})
        session = signed_in.cookies["inspect_session"]
        jar = {"Cookie": f"inspect_session={session}"}
        foreign = await http.post("/api/auth/logout", headers={**jar, "Origin": EVIL})
        assert foreign.status_code == 403  # another site cannot sign the person out
        out = await http.post("/api/auth/logout", headers={**jar, "Origin": server.url})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert 'inspect_session=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    with pytest.raises(socketio.exceptions.ConnectionError):
        await drive_socket(server, origin=server.url, cookie=session, token_name="after-sign-out")

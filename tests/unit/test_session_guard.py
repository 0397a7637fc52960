"""The session guard's rules (pure): who may use the socket, write with the cookie, load a page."""

from __future__ import annotations

from dataclasses import replace

import pytest

from inspect_app.api.auth import framed_cookie
from inspect_app.api.session_guard import Seen, allowed_origins, origin_of, rule, seen_from
from inspect_app.settings import Settings

APP = "http://127.0.0.1:3000"
EXTENSION = "chrome-extension://abcdefghijklmnop"
ALLOWED = allowed_origins(APP + "/", [EXTENSION])
SOCKET = Seen(
    kind="websocket", method="GET", path="/_event/", origin=APP, session="s", bearer=False, accepts_html=False
)


def test_allowed_origins_are_the_public_url_its_loopback_aliases_and_the_extension() -> None:
    assert {APP, "http://localhost:3000", "http://[::1]:3000", EXTENSION} == ALLOWED
    assert allowed_origins("https://inspect.example.com/", []) == {"https://inspect.example.com"}
    assert origin_of("HTTPS://Inspect.Example.com:443/x") == "https://inspect.example.com"
    assert origin_of("http://[::1]:8080/") == "http://[::1]:8080"


@pytest.mark.parametrize("kind", ["websocket", "http"])  # WebSocket and polling
def test_the_socket_needs_an_allowed_origin_then_a_session(kind: str) -> None:
    seen = replace(SOCKET, kind=kind)
    assert rule(seen, ALLOWED) == "needs_session"
    assert rule(replace(seen, origin=EXTENSION), ALLOWED) == "needs_session"
    for origin in ("https://evil.example", "null", None, "http://127.0.0.1:3001", "http://127.0.0.1:3000.evil"):
        assert rule(replace(seen, origin=origin), ALLOWED) == "refuse", origin
    assert rule(replace(seen, path="/_upload"), ALLOWED) == "needs_session"
    assert rule(replace(seen, path="/_upload", origin="null"), ALLOWED) == "refuse"


def test_cookie_authenticated_api_requests_check_origin() -> None:
    api = Seen(
        kind="http", method="POST", path="/api/sessions", origin=APP, session="s", bearer=False, accepts_html=False
    )
    assert rule(api, ALLOWED) == "pass"
    for origin in ("https://evil.example", "null", None):
        assert rule(replace(api, origin=origin), ALLOWED) == "refuse", origin
    assert rule(replace(api, method="DELETE", origin=None), ALLOWED) == "refuse"
    # reads: a foreign Origin with the cookie is another page reading through CORS; none is a plain load
    assert rule(replace(api, method="GET", origin="https://evil.example"), ALLOWED) == "refuse"
    assert rule(replace(api, method="GET", origin=None), ALLOWED) == "pass"
    # a bearer token, or no cookie at all: the cookie is not what authenticates
    assert rule(replace(api, origin="https://evil.example", bearer=True), ALLOWED) == "pass"
    assert rule(replace(api, origin="https://evil.example", session=""), ALLOWED) == "pass"
    # signing in (or out) from another page is refused even without a cookie
    sign_in = replace(api, path="/api/auth/session", session="", origin="https://evil.example")
    assert rule(sign_in, ALLOWED) == "refuse"
    assert rule(replace(sign_in, origin=APP), ALLOWED) == "pass"
    # WebSockets under /api authenticate with a token in their first message
    assert rule(replace(api, kind="websocket", method="GET", origin="https://evil.example"), ALLOWED) == "pass"


def test_page_loads_need_a_session_except_sign_in() -> None:
    page = Seen(kind="http", method="GET", path="/settings", origin=None, session="", bearer=False, accepts_html=True)
    assert rule(page, ALLOWED) == "page"
    assert rule(replace(page, path="/extension/abc"), ALLOWED) == "page"
    for public in ("/login", "/denied"):
        assert rule(replace(page, path=public), ALLOWED) == "pass"
    assert rule(replace(page, path="/assets/app.js", accepts_html=False), ALLOWED) == "pass"  # scripts, styles
    assert rule(replace(page, path="/loginx"), ALLOWED) == "page"


def test_media_is_answered_to_anyone() -> None:
    """GitHub's image proxy and Slack fetch screenshots without signing in; a person opens one in a tab."""
    image = Seen(
        kind="http", method="GET", path="/media/k.png", origin=None, session="", bearer=False, accepts_html=True
    )
    assert rule(image, ALLOWED) == "pass"
    assert rule(replace(image, origin="https://evil.example", session="s"), ALLOWED) == "pass"
    assert rule(replace(image, path="/mediax/k.png"), ALLOWED) == "page"  # only the /media tree


def test_seen_from_reads_the_cookie_origin_and_bearer() -> None:
    scope = {
        "type": "websocket",
        "path": "/_event/",
        "headers": [
            (b"origin", b"null"),
            (b"cookie", b"theme=dark"),
            (b"cookie", b"inspect_session=insp_abc"),
            (b"authorization", b"Bearer "),
        ],
    }
    seen = seen_from(scope)
    assert (seen.kind, seen.origin, seen.session, seen.bearer) == ("websocket", "null", "insp_abc", False)
    broken = seen_from({"type": "http", "path": "/", "method": "GET", "headers": [(b"cookie", b'inspect_session="')]})
    assert broken.session == ""


def test_the_cookie_is_cross_site_only_for_the_extension_in_a_secure_context(tmp_path) -> None:
    def settings(**values: str) -> Settings:
        return Settings(_env_file=None, data_dir=tmp_path, **values)  # type: ignore[call-arg]

    assert not framed_cookie(settings())
    assert framed_cookie(settings(extension_origins=EXTENSION))  # http://127.0.0.1: a secure context
    assert framed_cookie(settings(extension_origins=EXTENSION, public_url="https://inspect.example.com"))
    assert not framed_cookie(settings(extension_origins=EXTENSION, public_url="http://inspect.lan:3000"))

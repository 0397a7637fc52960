"""A loopback GitHub speaking just enough of the OAuth web flow and the REST API for sign-in."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse


class FakeGitHub:
    def __init__(
        self,
        *,
        login: str = "ada",
        user_id: int = 1815,
        orgs: list[str] | None = None,
        emails: list[dict[str, Any]] | None = None,
    ) -> None:
        self.login, self.user_id = login, user_id
        self.orgs = orgs or []
        self.emails = emails or [{"email": "ada@example.com", "primary": True, "verified": True}]
        self.token_requests: list[dict[str, list[str]]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(gh: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            return

        def _json(self, payload: Any, status: int = 200) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/login/oauth/authorize":  # the person approves at once
                query = parse_qs(url.query)
                target = query["redirect_uri"][0] + "?" + urlencode({"code": "code-123", "state": query["state"][0]})
                self.send_response(302)
                self.send_header("location", target)
                self.end_headers()
                return
            if self.headers.get("authorization") != "Bearer gho_fake_user_token":
                self._json({"message": "Bad credentials"}, 401)
                return
            routes = {
                "/user": {"id": gh.user_id, "login": gh.login, "name": "Ada Lovelace", "avatar_url": ""},
                "/user/emails": gh.emails,
                "/user/orgs": [{"login": org} for org in gh.orgs],
            }
            if url.path in routes:
                self._json(routes[url.path])
            else:
                self._json({"message": "Not Found"}, 404)

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            gh.token_requests.append(form)
            if urlparse(self.path).path == "/login/oauth/access_token" and form.get("code") == ["code-123"]:
                self._json({"access_token": "gho_fake_user_token", "token_type": "bearer", "scope": "read:user"})
            else:
                self._json({"error": "bad_verification_code"}, 400)

    return Handler

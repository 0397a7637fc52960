"""A loopback GitHub: the OAuth web flow, the REST API PyGithub uses (user, App installations and
tokens, repositories, branches, pull requests) and git's smart HTTP protocol (real ``git
http-backend`` over bare repositories), with the credentials each one demands on github.com.

- OAuth: the person approves at once; the code exchange returns ``USER_TOKEN``.
- App: requests signed with an RS256 JWT of the App's key (checked with PyJWT against the public
  key); installation tokens (``ghs_…``) expire after an hour.
- git: HTTP Basic with an installation token as the password, as GitHub Apps do.

Every API request is recorded (method, path, Authorization, JSON body) for tests to assert on.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

USER_TOKEN = "gho_fake_user_token"
INSTALLATION_ID = 4242
APP_ID = "31337"


def app_key_pem() -> tuple[str, str]:
    """A fresh App key pair: (private PEM for the server, public PEM for the fake)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@dataclass
class Call:
    method: str
    path: str
    authorization: str
    body: Any


@dataclass
class Pull:
    number: int
    owner: str
    name: str
    head: str
    base: str
    title: str
    body: str
    draft: bool
    state: str = "open"
    merged: bool = False
    head_sha: str = "0" * 40
    head_repo: str = ""  # owner/name the head branch lives in ("" = the pull request's own repository)


@dataclass
class FakeGitHub:
    login: str = "ada"
    user_id: int = 1815
    orgs: list[str] = field(default_factory=list)
    emails: list[dict[str, Any]] = field(
        default_factory=lambda: [{"email": "ada@example.com", "primary": True, "verified": True}]
    )
    public_email: str | None = None
    app_public_key: str = ""  # set to accept App JWTs signed with the matching private key
    git_root: Path | None = None  # bare repositories at <git_root>/<owner>/<name>.git
    refuse_pulls: set[str] = field(default_factory=set)  # "user" / "installation": those tokens get 403
    port: int = 0  # a fixed one: GitHub "coming back" where the server has been trying

    def __post_init__(self) -> None:
        self.token_requests: list[dict[str, list[str]]] = []
        self.calls: list[Call] = []
        self.pulls: list[Pull] = []
        self.installation_tokens: dict[str, datetime] = {}
        self.read_only_tokens: set[str] = set()  # minted with permissions {"contents": "read"}
        self.git_requests: list[tuple[str, str]] = []  # (path, user) of each git HTTP request
        self.comments: list[tuple[str, int, str]] = []  # (owner/name, issue or pull number, body) posted
        self.reviews: list[tuple[str, int, str, str]] = []  # (owner/name, pull number, event, body) posted
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- state helpers for tests -----------------------------------------------------------------
    def calls_to(self, method: str, path: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path == path]

    def repo_path(self, owner: str, name: str) -> Path:
        assert self.git_root is not None
        return self.git_root / owner / f"{name}.git"

    # --- auth ------------------------------------------------------------------------------------
    def app_jwt_ok(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not self.app_public_key:
            return False
        try:
            claims = jwt.decode(token, self.app_public_key, algorithms=["RS256"])
        except jwt.PyJWTError:
            return False
        return str(claims.get("iss")) == APP_ID

    def installation_token_ok(self, token: str) -> bool:
        expires = self.installation_tokens.get(token)
        return expires is not None and expires > datetime.now(UTC)

    def mint_installation_token(self, permissions: dict[str, str] | None = None) -> tuple[str, datetime]:
        """A token with the App's permissions, or fewer: GitHub narrows a token to the ``permissions``
        asked for (only ``contents: read`` is modelled: such a token can fetch but not push)."""
        token, expires = f"ghs_{secrets.token_urlsafe(24)}", datetime.now(UTC) + timedelta(hours=1)
        self.installation_tokens[token] = expires
        if (permissions or {}).get("contents") == "read":
            self.read_only_tokens.add(token)
        return token, expires

    def token_kind(self, authorization: str) -> str:
        """'user', 'installation', or '' for the REST API's ``token``/``Bearer`` credentials."""
        _, _, token = authorization.partition(" ")
        if token == USER_TOKEN:
            return "user"
        if self.installation_token_ok(token):
            return "installation"
        return ""

    # --- JSON shapes -----------------------------------------------------------------------------
    def repo_json(self, owner: str, name: str) -> dict[str, Any]:
        return {
            "id": abs(hash((owner, name))) % 10**6,
            "name": name,
            "full_name": f"{owner}/{name}",
            "owner": {"login": owner},
            "private": True,
            "default_branch": "main",
            "description": f"The {name} service",
            "url": f"{self.url}/repos/{owner}/{name}",
            "html_url": f"{self.url}/{owner}/{name}",
        }

    def pull_json(self, pull: Pull) -> dict[str, Any]:
        base = f"{self.url}/repos/{pull.owner}/{pull.name}"
        return {
            "number": pull.number,
            "title": pull.title,
            "body": pull.body,
            "state": pull.state,
            "merged": pull.merged,
            "draft": pull.draft,
            "url": f"{base}/pulls/{pull.number}",
            "html_url": f"{self.url}/{pull.owner}/{pull.name}/pull/{pull.number}",
            "head": {
                "ref": pull.head,
                "sha": pull.head_sha,
                "label": f"{pull.owner}:{pull.head}",
                "repo": {"full_name": pull.head_repo or f"{pull.owner}/{pull.name}"},
            },
            "base": {"ref": pull.base, "repo": {"full_name": f"{pull.owner}/{pull.name}"}},
        }

    def repositories(self) -> list[tuple[str, str]]:
        if self.git_root is None:
            return []
        return sorted((p.parent.name, p.name.removesuffix(".git")) for p in self.git_root.glob("*/*.git"))


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

        def _body(self) -> bytes:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("content-length") or 0))

        def _record(self, body: bytes) -> tuple[str, Any]:
            path = urlparse(self.path).path
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = body.decode(errors="replace")
            with gh._lock:
                gh.calls.append(Call(self.command, path, self.headers.get("authorization", ""), parsed))
            return path, parsed

        # --- git smart HTTP ---------------------------------------------------------------------
        def _git(self, body: bytes) -> None:
            import base64

            scheme, _, encoded = self.headers.get("authorization", "").partition(" ")
            user, password = "", ""
            if scheme.lower() == "basic":
                user, _, password = base64.b64decode(encoded).decode().partition(":")
            gh.git_requests.append((urlparse(self.path).path, user))
            if not gh.installation_token_ok(password):
                self.send_response(401)
                self.send_header("www-authenticate", 'Basic realm="GitHub"')
                self.send_header("content-length", "0")
                self.end_headers()
                return
            url = urlparse(self.path)
            pushing = url.path.endswith("/git-receive-pack") or "service=git-receive-pack" in url.query
            if pushing and password in gh.read_only_tokens:
                message = b"remote: Write access to repository not granted."
                self.send_response(403)
                self.send_header("content-length", str(len(message)))
                self.end_headers()
                self.wfile.write(message)
                return
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": str(gh.git_root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": url.path,
                "QUERY_STRING": url.query,
                "REQUEST_METHOD": self.command,
                "CONTENT_TYPE": self.headers.get("content-type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_USER": user,
                "REMOTE_ADDR": "127.0.0.1",
                "HTTP_CONTENT_ENCODING": self.headers.get("content-encoding", ""),
                "GIT_PROTOCOL": self.headers.get("git-protocol", ""),
            }
            result = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60)
            head, _, payload = result.stdout.partition(b"\r\n\r\n")
            if not _:
                head, _, payload = result.stdout.partition(b"\n\n")
            status = 200
            headers = []
            for line in head.decode(errors="replace").splitlines():
                key, _, value = line.partition(":")
                if key.lower() == "status":
                    status = int(value.strip().split()[0])
                elif key:
                    headers.append((key, value.strip()))
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        # --- HTTP verbs -------------------------------------------------------------------------
        def do_GET(self) -> None:
            url = urlparse(self.path)
            if ".git/" in url.path:
                self._git(b"")
                return
            if url.path == "/login/oauth/authorize":  # the person approves at once
                query = parse_qs(url.query)
                target = query["redirect_uri"][0] + "?" + urlencode({"code": "code-123", "state": query["state"][0]})
                self.send_response(302)
                self.send_header("location", target)
                self.end_headers()
                return
            path, _ = self._record(b"")
            auth = self.headers.get("authorization", "")
            if path == "/app/installations":
                if not gh.app_jwt_ok(auth):
                    self._json({"message": "A JSON web token could not be decoded"}, 401)
                    return
                self._json([{"id": INSTALLATION_ID, "app_id": int(APP_ID), "account": {"login": "acme"}}])
                return
            parts = path.strip("/").split("/")
            if len(parts) == 4 and parts[0] == "repos" and parts[3] == "installation":
                if not gh.app_jwt_ok(auth):
                    self._json({"message": "A JSON web token could not be decoded"}, 401)
                    return
                if (parts[1], parts[2]) not in gh.repositories():
                    self._json({"message": "Not Found"}, 404)
                    return
                self._json({"id": INSTALLATION_ID, "app_id": int(APP_ID), "account": {"login": parts[1]}})
                return
            kind = gh.token_kind(auth)
            if path in ("/user", "/user/emails", "/user/orgs"):
                if kind != "user":
                    self._json({"message": "Bad credentials"}, 401)
                    return
                self._json(
                    {
                        "/user": {
                            "id": gh.user_id,
                            "login": gh.login,
                            "name": "Ada Lovelace",
                            "avatar_url": "",
                            "email": gh.public_email,
                        },
                        "/user/emails": gh.emails,
                        "/user/orgs": [{"login": org} for org in gh.orgs],
                    }[path]
                )
                return
            if not kind:
                self._json({"message": "Bad credentials"}, 401)
                return
            if path == "/installation/repositories":
                repos = [gh.repo_json(o, n) for o, n in gh.repositories()]
                self._json({"total_count": len(repos), "repositories": repos})
                return
            if len(parts) >= 3 and parts[0] == "repos" and (parts[1], parts[2]) in gh.repositories():
                owner, name, rest = parts[1], parts[2], parts[3:]
                if not rest:
                    self._json(gh.repo_json(owner, name))
                elif rest == ["branches"]:
                    refs = subprocess.run(
                        ["git", "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads"],
                        cwd=gh.repo_path(owner, name),
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout.split("\n")
                    self._json([{"name": r.split()[0], "commit": {"sha": r.split()[1]}} for r in refs if r.strip()])
                elif len(rest) == 2 and rest[0] == "branches":
                    sha = subprocess.run(
                        ["git", "rev-parse", "--verify", "-q", f"refs/heads/{rest[1]}"],
                        cwd=gh.repo_path(owner, name),
                        capture_output=True,
                        text=True,
                    ).stdout.strip()
                    found = {"name": rest[1], "commit": {"sha": sha, "url": ""}, "protected": False}
                    self._json(found if sha else {"message": "Branch not found"}, 200 if sha else 404)
                elif rest == ["pulls"]:
                    query = parse_qs(url.query)
                    head = query.get("head", [""])[0].partition(":")[2]
                    state = query.get("state", ["open"])[0]
                    found = [
                        gh.pull_json(p)
                        for p in gh.pulls
                        if (p.owner, p.name) == (owner, name)
                        and (not head or p.head == head)
                        and (state == "all" or p.state == state)
                    ]
                    self._json(found)
                elif len(rest) == 2 and rest[0] == "pulls":
                    pull = next((p for p in gh.pulls if p.number == int(rest[1])), None)
                    self._json(gh.pull_json(pull) if pull else {"message": "Not Found"}, 200 if pull else 404)
                else:
                    self._json({"message": "Not Found"}, 404)
                return
            self._json({"message": "Not Found"}, 404)

        def do_POST(self) -> None:
            body = self._body()
            url = urlparse(self.path)
            if ".git/" in url.path:
                self._git(body)
                return
            if url.path == "/login/oauth/access_token":
                form = parse_qs(body.decode())
                gh.token_requests.append(form)
                if form.get("code") == ["code-123"]:
                    self._json({"access_token": USER_TOKEN, "token_type": "bearer", "scope": "read:user"})
                else:
                    self._json({"error": "bad_verification_code"}, 400)
                return
            path, payload = self._record(body)
            auth = self.headers.get("authorization", "")
            if path == f"/app/installations/{INSTALLATION_ID}/access_tokens":
                if not gh.app_jwt_ok(auth):
                    self._json({"message": "A JSON web token could not be decoded"}, 401)
                    return
                asked = (payload or {}).get("permissions")
                token, expires = gh.mint_installation_token(asked)
                self._json(
                    {
                        "token": token,
                        "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "permissions": asked or {"contents": "write", "pull_requests": "write"},
                        "repository_selection": "all",
                    },
                    201,
                )
                return
            parts = path.strip("/").split("/")
            kind = gh.token_kind(auth)
            if len(parts) == 6 and parts[0] == "repos" and parts[3] == "issues" and parts[5] == "comments" and kind:
                with gh._lock:
                    gh.comments.append((f"{parts[1]}/{parts[2]}", int(parts[4]), payload["body"]))
                    number = len(gh.comments)
                self._json(
                    {
                        "id": number,
                        "body": payload["body"],
                        "user": {"login": "inspect-bot[bot]", "type": "Bot"},
                        "html_url": f"{gh.url}/{parts[1]}/{parts[2]}/pull/{parts[4]}#issuecomment-{number}",
                        "url": f"{gh.url}/repos/{parts[1]}/{parts[2]}/issues/comments/{number}",
                    },
                    201,
                )
                return
            if len(parts) == 6 and parts[0] == "repos" and parts[3] == "pulls" and parts[5] == "reviews" and kind:
                with gh._lock:
                    gh.reviews.append(
                        (f"{parts[1]}/{parts[2]}", int(parts[4]), payload.get("event", ""), payload["body"])
                    )
                    number = len(gh.reviews)
                self._json({"id": number, "body": payload["body"], "state": "COMMENTED", "user": {"type": "Bot"}}, 200)
                return
            if len(parts) == 4 and parts[0] == "repos" and parts[3] == "pulls" and kind:
                if kind in gh.refuse_pulls:
                    self._json({"message": "Resource not accessible by integration"}, 403)
                    return
                with gh._lock:
                    pull = Pull(
                        number=len(gh.pulls) + 1,
                        owner=parts[1],
                        name=parts[2],
                        head=payload["head"],
                        base=payload["base"],
                        title=payload["title"],
                        body=payload.get("body", ""),
                        draft=bool(payload.get("draft", False)),
                    )
                    gh.pulls.append(pull)
                self._json(gh.pull_json(pull), 201)
                return
            self._json({"message": "Not Found"}, 404 if kind else 401)

        def do_PATCH(self) -> None:
            path, payload = self._record(self._body())
            parts = path.strip("/").split("/")
            if not gh.token_kind(self.headers.get("authorization", "")):
                self._json({"message": "Bad credentials"}, 401)
                return
            if len(parts) == 5 and parts[0] == "repos" and parts[3] == "pulls":
                pull = next((p for p in gh.pulls if p.number == int(parts[4])), None)
                if pull is None:
                    self._json({"message": "Not Found"}, 404)
                    return
                pull.title = payload.get("title", pull.title)
                pull.body = payload.get("body", pull.body)
                self._json(gh.pull_json(pull))
                return
            self._json({"message": "Not Found"}, 404)

    return Handler

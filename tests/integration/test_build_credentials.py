"""An image build of a private repository clones with brokered credentials: the build runtime hands
its tool token to git's credential helper, which trades it at the control plane for a GitHub token."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sandbox.runtime.build import build
from tests.fakes.github import FakeGitHub
from tests.integration.sandbox_harness import git, make_origin

TOOL_TOKEN = "sbt_build_token"


@pytest.fixture
def github(tmp_path: Path) -> Iterator[FakeGitHub]:
    fake = FakeGitHub(git_root=tmp_path / "github")
    origin = make_origin(tmp_path / "src")
    target = fake.repo_path("acme", "widgets")
    target.parent.mkdir(parents=True)
    git("clone", "-q", "--bare", str(origin), str(target), cwd=tmp_path)
    yield fake
    fake.close()


@pytest.fixture
def control_plane(github: FakeGitHub) -> Iterator[str]:
    """``/api/sandbox/git-credentials``: an installation token for the build's tool token only."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            return

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            if self.headers.get("authorization") == f"Bearer {TOOL_TOKEN}":
                token, _ = github.mint_installation_token()
                payload, status = {"username": "x-access-token", "password": token, "expires_at": "x"}, 200
            else:
                payload, status = {"error": {"code": "forbidden", "message": "unknown tool token"}}, 403
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_a_private_repository_builds_with_the_builds_tool_token(
    github: FakeGitHub, control_plane: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INSPECT_API_URL", control_plane)
    url = f"{github.url}/acme/widgets.git"

    without = await build(tmp_path / "no-token", url, "main", 60)
    assert without["ok"] is False and without["stage"] == "clone"  # the repository is private

    built = await build(tmp_path / "build", url, "main", 60, tool_token=TOOL_TOKEN)
    assert built["ok"] is True, built
    assert (tmp_path / "build" / "workspace" / "README.md").read_text() == "# demo\n"
    assert any(user == "x-access-token" for _, user in github.git_requests)  # cloned as the App
    assert "ghs_" not in (tmp_path / "build" / "workspace" / ".git" / "config").read_text()  # nothing kept

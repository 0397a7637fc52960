"""The sandbox's git credential helper: git's protocol on stdin/stdout, the control plane over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sandbox.runtime import git_credential
from sandbox.runtime.gitops import credential_helper_env

HELPER = Path(git_credential.__file__)


@pytest.fixture
def control_plane() -> Iterator[tuple[str, list[dict]]]:
    """A loopback stand-in for ``/api/sandbox/git-credentials``: one valid tool token, one host."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            return

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            seen.append({"auth": self.headers.get("authorization"), **body})
            if self.headers.get("authorization") != "Bearer sbt_good" or body["host"] != "git.example":
                payload, status = {"error": {"code": "forbidden", "message": "not for you"}}, 403
            else:
                payload, status = {"username": "x-access-token", "password": "ghs_short", "expires_at": "x"}, 200
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


@pytest.fixture
def token_file(tmp_path: Path) -> str:
    path = tmp_path / "tool-token"
    path.write_text("sbt_good\n")
    return str(path)


def helper(action: str, stdin: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HELPER), action], input=stdin, env=env, capture_output=True, text=True, timeout=30
    )


def test_parse_reads_git_fields_up_to_the_blank_line() -> None:
    assert git_credential.parse("protocol=https\nhost=h\npath=o/r.git\n\nignored=1\n") == {
        "protocol": "https",
        "host": "h",
        "path": "o/r.git",
    }


def test_get_answers_with_what_the_control_plane_gives(control_plane: tuple[str, list[dict]], token_file: str) -> None:
    url, seen = control_plane
    ask = "protocol=https\nhost=git.example\npath=acme/widgets.git\n\n"
    result = helper("get", ask, INSPECT_API_URL=url, INSPECT_TOOL_TOKEN_FILE=token_file)
    assert result.returncode == 0 and result.stdout == "username=x-access-token\npassword=ghs_short\n"
    assert seen[-1] == {
        "auth": "Bearer sbt_good",
        "protocol": "https",
        "host": "git.example",
        "path": "acme/widgets.git",
    }


def test_a_refusal_prints_nothing_for_git_and_a_reason_for_people(
    control_plane: tuple[str, list[dict]], token_file: str
) -> None:
    url, seen = control_plane
    result = helper(
        "get", "protocol=https\nhost=elsewhere\n\n", INSPECT_API_URL=url, INSPECT_TOOL_TOKEN_FILE=token_file
    )
    assert result.returncode == 0 and result.stdout == ""
    assert "not for you" in result.stderr
    nothing = helper("store", "protocol=https\nhost=git.example\npassword=p\n\n", INSPECT_API_URL=url)
    assert nothing.stdout == "" and nothing.returncode == 0  # store/erase keep nothing
    asked = len(seen)
    unclaimed = helper(
        "get", "protocol=https\nhost=git.example\n\n", INSPECT_API_URL=url, INSPECT_TOOL_TOKEN_FILE="/nope"
    )
    assert unclaimed.returncode == 0 and unclaimed.stdout == "" and len(seen) == asked  # no token yet: not asked


def test_every_git_in_the_sandbox_uses_only_this_helper() -> None:
    env = credential_helper_env("/usr/bin/python3", Path("/sandbox/state/tool-token"))
    assert env["INSPECT_TOOL_TOKEN_FILE"] == "/sandbox/state/tool-token"
    pairs = [(env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"]) for i in range(int(env["GIT_CONFIG_COUNT"]))]
    assert pairs[0] == ("credential.helper", "")  # resets any helper configured elsewhere (e.g. "store")
    assert pairs[1][0] == "credential.helper" and str(HELPER) in pairs[1][1]
    assert ("credential.useHttpPath", "true") in pairs

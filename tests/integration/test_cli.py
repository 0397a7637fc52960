"""The terminal client, as a person runs it (``.venv/bin/inspect-cli``, piped), against a real server
with local sandboxes, the real OpenCode and a scripted model: login keeps the token 0600; ``run``
streams a session to its end and exits 0; a failed prompt exits 1; ``--json`` prints one event per
line; ``send`` follows only what is new."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.fakes.llm_server import FakeLLM, Turn
from tests.integration.sandbox_harness import make_origin
from tests.integration.stream_client import bash
from tests.servers import ROOT, RunningServer

pytestmark = [pytest.mark.timeout(400)]
CLI = ROOT / ".venv" / "bin" / "inspect-cli"


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CLI.exists(), f"{CLI} is made by `make deps`"
    return subprocess.run(
        [str(CLI), "--config", str(config), *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_the_terminal_client_runs_a_session_to_its_end(server: RunningServer, llm: FakeLLM, tmp_path: Path) -> None:
    config = tmp_path / "inspect-cli" / "config.json"
    assert cli(config, "repos").returncode == 2  # not signed in yet: said, with how
    assert cli(config, "login", "--url", server.url, "--token", "wrong").returncode == 3
    login = cli(config, "login", "--url", server.url, "--token", server.token)
    assert login.returncode == 0, login.stderr
    assert stat.S_IMODE(config.stat().st_mode) == 0o600 and server.token in config.read_text()

    origin = make_origin(tmp_path / "repo")
    headers = {"Authorization": f"Bearer {server.token}"}
    assert httpx.post(f"{server.url}/api/repositories", json={"url": str(origin)}, headers=headers).is_success
    repos = cli(config, "repos")
    assert repos.returncode == 0 and "origin" in repos.stdout

    llm.add(
        Turn(tool_calls=[bash("echo hi > cli.txt && cat cli.txt")]),
        Turn(text="Made cli.txt for you."),
    )
    run = cli(config, "run", "--repo", "origin", "Make a file")
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    session_id = lines[0].split()[1].rstrip(":")
    assert lines[0] == f"Session {session_id}: {server.url}/sessions/{session_id}"
    assert "> Ada Lovelace: Make a file" in lines
    assert "⚙ bash echo hi > cli.txt && cat cli.txt" in lines, run.stdout  # the call, then how it ended
    assert "  → completed" in lines and "  hi" in lines
    assert "Made cli.txt for you." in lines and lines[-1] == "✓ done"
    assert "\x1b[" not in run.stdout  # piped: plain text

    llm.add(Turn(text="Second answer."))
    sent = cli(config, "send", session_id, "Once more")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "Make a file" not in sent.stdout and "> Ada Lovelace: Once more" in sent.stdout  # only what is new
    assert "Second answer." in sent.stdout

    listed = cli(config, "sessions")
    assert session_id in listed.stdout

    # a prompt that fails (a model nobody configured a key for), in JSON: one event per line, exit 1
    failed = cli(config, "--json", "run", "--repo", "origin", "--model", "anthropic/claude-sonnet-4-5", "Try")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    events = [json.loads(line) for line in failed.stdout.splitlines()]
    assert events[0]["type"] == "session" and events[0]["url"].endswith(f"/sessions/{events[0]['id']}")
    assert events[-1]["type"] == "execution_complete" and events[-1]["data"]["success"] is False
    assert {"prompt", "execution_complete"} <= {e["type"] for e in events}

"""The build runtime (``python -m sandbox.runtime.build``) against a real local repository: the
workspace it leaves becomes an image that every session of the repository boots from, so nothing
secret may stay in it — the build's tool token is gone however the build ends."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sandbox.runtime.build import build

TOKEN = "sbt_build_secret"


def origin(tmp_path: Path, setup: str | None) -> str:
    repo = tmp_path / "origin"
    repo.mkdir()
    people = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL")
    env = {**os.environ, **dict.fromkeys(people, "t")}
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=env)
    if setup is not None:
        (repo / ".inspect").mkdir()
        (repo / ".inspect" / "setup.sh").write_text(setup)
    (repo / "README.md").write_text("hello\n")
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "first"], check=True, env=env)
    return str(repo)


def left_behind(root: Path) -> list[Path]:
    """Every file under the build root that holds the token."""
    return [p for p in root.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]


@pytest.mark.parametrize(
    ("setup", "ok"),
    [
        ('test -s "$INSPECT_TOOL_TOKEN_FILE"\n', True),  # the token is there while setup runs
        ("exit 3\n", False),
        (None, True),
    ],
)
async def test_the_tool_token_is_gone_when_the_build_ends(tmp_path: Path, setup: str | None, ok: bool) -> None:
    root = tmp_path / "sandbox"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SANDBOX_", "GIT_"))}
    outcome = await build(root, origin(tmp_path, setup), "main", 30, tool_token=TOKEN, environ=environ)
    assert outcome["ok"] is ok, outcome
    assert not (root / "state" / "tool-token").exists() and left_behind(root) == []


async def test_a_failed_clone_leaves_no_token_either(tmp_path: Path) -> None:
    root = tmp_path / "sandbox"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SANDBOX_", "GIT_"))}
    outcome = await build(root, str(tmp_path / "missing"), "main", 30, tool_token=TOKEN, environ=environ)
    assert outcome["ok"] is False and outcome["stage"] == "clone"
    assert left_behind(root) == []

"""Bad configuration stops start-up with one clear line naming the setting (no stack trace)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "INSPECT_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [sys.executable, "-m", "inspect_app.serve"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**base, **env},
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"INSPECT_SANDBOX_PROVIDER": "kubernetes"}, "INSPECT_SANDBOX_PROVIDER: Input should be 'local' or 'modal'"),
        (
            {"INSPECT_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none"},
            "INSPECT_DATABASE_URL: cannot connect",
        ),
        ({"INSPECT_SECRET_KEY": "c2hvcnQ="}, "INSPECT_SECRET_KEY: must be 32 bytes"),
        ({"INSPECT_HOST": "0.0.0.0"}, "INSPECT_HOST: local mode"),
        ({"INSPECT_GITHUB_CLIENT_ID": "Iv1.abc"}, "INSPECT_GITHUB_CLIENT_SECRET: required"),
    ],
)
def test_bad_configuration_is_one_line(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    result = _serve(tmp_path, **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("inspect: configuration error: ")
    assert expected in lines[0]
    assert "Traceback" not in result.stderr + result.stdout

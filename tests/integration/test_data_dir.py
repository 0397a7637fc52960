"""The data directory is the server's alone: 0700, and the files in it (database, keys, tokens) 0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from inspect_app.boot import prepare
from inspect_app.settings import Settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_the_data_directory_is_0700_and_its_files_0600(tmp_path: Path, loose_umask: None) -> None:
    data = tmp_path / "data"
    report = prepare(Settings(_env_file=None, data_dir=data))  # type: ignore[call-arg]
    try:
        with report.services.engine.connect() as conn:  # WAL mode: the -wal and -shm files exist now
            conn.execute(sa.text("SELECT 1"))
            assert _mode(data) == 0o700
            names = {p.name: _mode(p) for p in data.iterdir() if p.is_file()}
    finally:
        report.services.engine.dispose()
    assert {"inspect.db", "inspect.db-wal", "secret.key", "local-token"} <= set(names), names
    assert set(names.values()) == {0o600}, names


def test_an_older_data_directory_is_tightened(tmp_path: Path, loose_umask: None) -> None:
    data = tmp_path / "data"
    prepare(Settings(_env_file=None, data_dir=data)).services.engine.dispose()  # type: ignore[call-arg]
    data.chmod(0o755)
    for path in data.iterdir():
        if path.is_file():
            path.chmod(0o644)
    prepare(Settings(_env_file=None, data_dir=data)).services.engine.dispose()  # type: ignore[call-arg]
    assert _mode(data) == 0o700
    assert {_mode(p) for p in data.iterdir() if p.is_file()} == {0o600}

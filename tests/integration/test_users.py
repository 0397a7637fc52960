"""Local single-user mode, personal API tokens and the admin command."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session as DBSession
from sqlmodel import select

from inspect_app.control.data import users
from inspect_app.errors import InvalidInput, Unauthorized
from inspect_app.models import ApiToken

ROOT = Path(__file__).resolve().parents[2]


def test_local_user_and_token_file(engine: sa.Engine, tmp_path: Path) -> None:
    user = users.ensure_local_user(engine, name="Ada", email="ada@example.com", data_dir=tmp_path)
    token_file = tmp_path / "local-token"
    token = token_file.read_text().strip()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert users.user_for_token(engine, token).id == user.id
    # a second start keeps the same user and token
    again = users.ensure_local_user(engine, name="Ada L.", email="ada@example.com", data_dir=tmp_path)
    assert again.id == user.id and again.name == "Ada L."
    assert token_file.read_text().strip() == token
    # the token is stored hashed only
    with DBSession(engine) as db:
        hashes = [row.token_hash for row in db.exec(select(ApiToken)).all()]
    assert token not in hashes and len(hashes) == 1


def test_deleted_token_file_gets_a_new_token(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    users.ensure_local_user(sqlite_engine, name="Ada", email="a@example.com", data_dir=tmp_path)
    (tmp_path / "local-token").unlink()
    users.ensure_local_user(sqlite_engine, name="Ada", email="a@example.com", data_dir=tmp_path)
    assert users.user_for_token(sqlite_engine, (tmp_path / "local-token").read_text().strip()).name == "Ada"


def test_bad_and_revoked_tokens_are_refused(sqlite_engine: sa.Engine) -> None:
    user = users.create_user(sqlite_engine, name="Grace", email="grace@example.com")
    token = users.issue_api_token(sqlite_engine, user.id or 0)
    for bad in ("", "insp_nope", token[:-1], "Bearer " + token):
        with pytest.raises(Unauthorized):
            users.user_for_token(sqlite_engine, bad)
    with DBSession(sqlite_engine) as db:
        token_id = db.exec(select(ApiToken.id)).one()
    users.revoke_api_token(sqlite_engine, user.id or 0, token_id or 0)
    with pytest.raises(Unauthorized):
        users.user_for_token(sqlite_engine, token)


def test_create_user_validates_input(sqlite_engine: sa.Engine) -> None:
    with pytest.raises(InvalidInput):
        users.create_user(sqlite_engine, name="  ", email="x@example.com")
    with pytest.raises(InvalidInput):
        users.create_user(sqlite_engine, name="X", email="not-an-email")


def test_admin_create_user_prints_a_working_token(tmp_path: Path, empty_db_url: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "INSPECT_DATA_DIR": str(tmp_path), "INSPECT_DATABASE_URL": empty_db_url}
    command = ["create-user", "--name", "Grace Hopper", "--email", "grace@example.com"]
    result = subprocess.run(
        [sys.executable, "-m", "inspect_app.admin", *command],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    from inspect_app.db import create_db_engine

    engine = create_db_engine(empty_db_url)
    try:
        assert users.user_for_token(engine, token).name == "Grace Hopper"
    finally:
        engine.dispose()
    bad = subprocess.run(
        [sys.executable, "-m", "inspect_app.admin", "create-token", "--email", "nobody@example.com"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == "inspect admin: no user with email 'nobody@example.com'"

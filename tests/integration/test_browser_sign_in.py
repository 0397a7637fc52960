"""The one-time sign-in link and the pasted-token sign-in (control/browser_sign_in), on each database."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from inspect_app.control.data import auth, browser_sign_in, users
from inspect_app.errors import Unauthorized
from inspect_app.models import utcnow


@pytest.fixture
def local(engine: sa.Engine, tmp_path: Path) -> Path:
    users.ensure_local_user(engine, name="Ada Lovelace", email="ada@example.com", data_dir=tmp_path)
    return tmp_path


def test_a_link_signs_the_local_user_in_once(engine: sa.Engine, local: Path) -> None:
    link = browser_sign_in.issue_login_link(local)
    stored = local / browser_sign_in.LOGIN_LINK_FILE
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert link not in stored.read_text()  # only its hash
    session = browser_sign_in.redeem_login_link(engine, local, link)
    assert auth.user_for_session(engine, session).name == "Ada Lovelace"
    with pytest.raises(Unauthorized):
        browser_sign_in.redeem_login_link(engine, local, link)


def test_a_wrong_token_does_not_use_the_link_up(engine: sa.Engine, local: Path) -> None:
    link = browser_sign_in.issue_login_link(local)
    for wrong in ("lnk_guess", "", link + "x", "insp_" + link[4:]):
        with pytest.raises(Unauthorized):
            browser_sign_in.redeem_login_link(engine, local, wrong)
    assert browser_sign_in.redeem_login_link(engine, local, link)


def test_a_link_expires_and_a_new_one_replaces_the_old(engine: sa.Engine, local: Path) -> None:
    old = browser_sign_in.issue_login_link(local)
    new = browser_sign_in.issue_login_link(local)
    with pytest.raises(Unauthorized):
        browser_sign_in.redeem_login_link(engine, local, old)
    later = utcnow() + browser_sign_in.LOGIN_LINK_TTL + timedelta(seconds=1)
    with pytest.raises(Unauthorized):
        browser_sign_in.redeem_login_link(engine, local, new, now=later)


def test_a_pasted_token_gets_a_session_of_its_own(engine: sa.Engine, local: Path) -> None:
    token = (local / users.LOCAL_TOKEN_FILE).read_text().strip()
    user, session = browser_sign_in.session_for_api_token(engine, token)
    assert session != token and user.name == "Ada Lovelace"
    auth.sign_out(engine, session)  # signing out ends the session, not the pasted token
    assert users.user_for_token(engine, token).name == "Ada Lovelace"
    with pytest.raises(Unauthorized):
        auth.user_for_session(engine, session)
    with pytest.raises(Unauthorized):
        browser_sign_in.session_for_api_token(engine, "insp_not_a_token")

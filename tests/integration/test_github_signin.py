"""GitHub sign-in through the real API app against a loopback GitHub: allowlists, session, sign-out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from sqlmodel import Session as DBSession
from sqlmodel import select

from inspect_app import services
from inspect_app.api.app import build_api
from inspect_app.db import upgrade
from inspect_app.models import Identity
from inspect_app.settings import Settings
from tests.fakes.github import FakeGitHub


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub(orgs=["analytical-engines"])
    yield fake
    fake.close()


def configure(tmp_path: Path, github: FakeGitHub, **allow: str) -> Settings:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        github_client_id="Iv1.test",
        github_client_secret="shh",
        github_web_url=github.url,
        github_api_url=github.url,
        public_url="http://testserver",
        **allow,
    )  # type: ignore[call-arg]
    upgrade(settings.resolved_database_url)
    return settings


@pytest.fixture
async def client_for() -> AsyncIterator:
    made: list[httpx.AsyncClient] = []

    async def make(settings: Settings) -> httpx.AsyncClient:
        services.install(services.build_services(settings))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=build_api()), base_url="http://testserver")
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()
    services.install(None)


async def _sign_in(client: httpx.AsyncClient, github: FakeGitHub) -> httpx.Response:
    start = await client.get("/api/auth/github/login")
    assert start.status_code == 302
    authorize = start.headers["location"]
    assert authorize.startswith(f"{github.url}/login/oauth/authorize")
    assert parse_qs(urlparse(authorize).query)["redirect_uri"] == ["http://testserver/api/auth/github/callback"]
    async with httpx.AsyncClient() as browser:  # the person's browser visits GitHub
        approved = await browser.get(authorize, follow_redirects=False)
    callback = urlparse(approved.headers["location"])
    return await client.get(f"{callback.path}?{callback.query}")


async def test_an_allowed_person_signs_in_and_out(tmp_path: Path, github: FakeGitHub, client_for) -> None:
    settings = configure(tmp_path, github, allowed_orgs="analytical-engines")
    client = await client_for(settings)
    done = await _sign_in(client, github)
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert "inspect_session=" in done.headers["set-cookie"] and "HttpOnly" in done.headers["set-cookie"]
    me = await client.get("/api/me")
    assert me.status_code == 200 and me.json()["login"] == "ada" and me.json()["email"] == "ada@example.com"
    with DBSession(services.current().engine) as db:
        identity = db.exec(select(Identity)).one()
    assert identity.token_ciphertext and b"gho_fake_user_token" not in identity.token_ciphertext
    assert (
        services.current().cipher.decrypt(identity.token_ciphertext, associated="github:1815") == "gho_fake_user_token"
    )
    out = await client.post("/api/auth/logout")
    assert out.status_code == 303
    assert (await client.get("/api/me")).status_code == 401


@pytest.mark.parametrize(
    ("allow", "reason"),
    [
        ({}, "sign-in is closed"),
        ({"allowed_users": "grace"}, "not on this instance's allowlist"),
        ({"allowed_email_domains": "navy.mil"}, "not on this instance's allowlist"),
    ],
)
async def test_everyone_else_is_denied_with_a_reason(
    tmp_path: Path,
    github: FakeGitHub,
    client_for,
    allow: dict,
    reason: str,
) -> None:
    client = await client_for(configure(tmp_path, github, **allow))
    done = await _sign_in(client, github)
    assert done.status_code == 303
    assert done.headers["location"].startswith("/denied?reason=")
    assert reason.replace(" ", "%20").replace("'", "%27") in done.headers["location"]
    assert "inspect_session" not in done.headers.get("set-cookie", "")


async def test_allowed_by_login_or_email_domain(tmp_path: Path, github: FakeGitHub, client_for) -> None:
    client = await client_for(configure(tmp_path, github, allowed_email_domains="example.com"))
    assert (await _sign_in(client, github)).headers["location"] == "/"


async def test_a_forged_callback_is_refused(tmp_path: Path, github: FakeGitHub, client_for) -> None:
    client = await client_for(configure(tmp_path, github, allowed_users="ada"))
    forged = await client.get("/api/auth/github/callback?code=code-123&state=not-the-state")
    assert forged.status_code == 303 and forged.headers["location"].startswith("/denied")
    assert (await client.get("/api/me")).status_code == 401


async def test_the_sign_in_and_denied_pages_need_no_session(tmp_path: Path, github: FakeGitHub, client_for) -> None:
    client = await client_for(configure(tmp_path, github, allowed_users="ada"))
    login = await client.get("/login")
    assert login.status_code == 200 and 'id=github-sign-in href="/api/auth/github/login"' in login.text
    assert "login-token" in login.text and "local-token" not in login.text  # no local user here
    denied = await client.get("/denied", params={"reason": "<script>alert(1)</script> is not allowed"})
    assert denied.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt; is not allowed" in denied.text and "<script>alert" not in denied.text
    # the one-time link is local mode's: with GitHub sign-in there is none to redeem
    assert (await client.get("/login", params={"token": "lnk_anything"})).headers["location"] == "/login?error=link"

"""Roles through the real API app: only admins change secrets, provider keys, settings and repositories."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session as DBSession
from sqlmodel import func, select

from inspect_app import services
from inspect_app.control.crypto import Cipher
from inspect_app.control.data import auth, instance, roles, secrets, users
from inspect_app.errors import Forbidden
from inspect_app.models import InstanceSetting, Repository, Secret
from inspect_app.scm.github_oauth import GitHubProfile
from inspect_app.settings import Settings
from tests.integration.local_api import bearer, local_instance
from tests.integration.sandbox_harness import make_origin

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def instance_for(tmp_path: Path) -> AsyncIterator[tuple[Settings, httpx.AsyncClient]]:
    """A local-mode instance (its local user is the admin) and a client of its API."""
    async with local_instance(tmp_path / "data") as running:
        yield running.settings, running.client


def counts(engine: sa.Engine) -> tuple[int, int, int]:
    with DBSession(engine) as db:
        return tuple(db.exec(select(func.count()).select_from(t)).one() for t in (Secret, Repository, InstanceSetting))  # type: ignore[return-value]


def admin_command(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "INSPECT_DATA_DIR": str(settings.data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "inspect_app.admin", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )


async def test_only_an_admin_changes_secrets_provider_keys_and_repositories(
    instance_for: tuple[Settings, httpx.AsyncClient], tmp_path: Path
) -> None:
    settings, client = instance_for
    engine = services.current().engine
    admin = bearer((settings.data_dir / "local-token").read_text().strip())
    grace_id = users.create_user(engine, name="Grace", email="grace@example.com").id or 0
    grace = bearer(users.issue_api_token(engine, grace_id))
    origin = make_origin(tmp_path)

    repo = await client.post("/api/repositories", json={"url": str(origin)}, headers=admin)
    assert repo.status_code == 201, repo.text
    repo_id = repo.json()["id"]
    assert (await client.put("/api/secrets/NPM_TOKEN", json={"value": "admin"}, headers=admin)).status_code == 204
    assert (await client.get("/api/me", headers=admin)).json()["is_admin"] is True
    assert (await client.get("/api/me", headers=grace)).json()["is_admin"] is False
    before = counts(engine)

    other = make_origin(tmp_path / "other")
    refused = [
        await client.put("/api/secrets/ANTHROPIC_API_KEY", json={"value": "sk-grace"}, headers=grace),
        await client.put("/api/secrets/NPM_TOKEN", json={"value": "grace"}, headers=grace),
        await client.put(f"/api/repositories/{repo_id}/secrets/NPM_TOKEN", json={"value": "grace"}, headers=grace),
        await client.get("/api/secrets", headers=grace),
        await client.post("/api/repositories", json={"url": str(other)}, headers=grace),
        await client.patch(f"/api/repositories/{repo_id}", json={"keywords": ["mine"]}, headers=grace),
        await client.patch(f"/api/repositories/{repo_id}", json={"egress_hosts": ["evil.example"]}, headers=grace),
        await client.post(f"/api/repositories/{repo_id}/rebuild", headers=grace),
        await client.get("/api/github/repositories", headers=grace),
        await client.put("/api/slack/channels/C1", json={"repository_id": repo_id}, headers=grace),
    ]
    for response in refused:
        assert response.status_code == 403, (response.request.url, response.text)
        assert response.json()["error"]["code"] == "admin_only"
    assert counts(engine) == before  # nothing changed
    with DBSession(engine) as db:
        assert db.exec(select(Repository.keywords)).one() == []
        assert db.exec(select(Repository.egress_hosts)).one() == []
    assert secrets.for_sandbox(engine, services.current().cipher, repo_id) == {"NPM_TOKEN": "admin"}
    # an admin sets the repository's own egress hosts; what is no host name is refused, naming it
    allowed = await client.patch(
        f"/api/repositories/{repo_id}", json={"egress_hosts": ["npm.internal.example", ".Corp.Example."]}, headers=admin
    )
    assert allowed.status_code == 200 and allowed.json()["egress_hosts"] == ["npm.internal.example", ".corp.example"]
    url = f"/api/repositories/{repo_id}"
    bad = await client.patch(url, json={"egress_hosts": ["https://x.example/"]}, headers=admin)
    assert bad.status_code == 422 and "https://x.example/" in bad.json()["error"]["message"]
    assert (await client.get("/api/repositories", headers=admin)).json()[0]["egress_hosts"] == allowed.json()[
        "egress_hosts"
    ]
    # what everyone may do: see repositories, and manage their own tokens
    assert (await client.get("/api/repositories", headers=grace)).status_code == 200


def test_settings_handlers_call_functions_that_check_the_role(sqlite_engine: sa.Engine) -> None:
    """The Settings page's handlers call these same functions with the signed-in user's id."""
    grace = users.create_user(sqlite_engine, name="Grace", email="grace@example.com").id or 0
    for attempt in (
        lambda: instance.set_default_model(sqlite_engine, "openai/gpt-5", actor_id=grace),
        lambda: secrets.delete(sqlite_engine, "NPM_TOKEN", actor_id=grace),
        lambda: secrets.listing(sqlite_engine, actor_id=grace),
    ):
        with pytest.raises(Forbidden):
            attempt()
    assert instance.get(sqlite_engine, instance.DEFAULT_MODEL) is None


async def test_grant_and_revoke(instance_for: tuple[Settings, httpx.AsyncClient]) -> None:
    settings, client = instance_for
    engine = services.current().engine
    grace_id = users.create_user(engine, name="Grace", email="grace@example.com").id or 0
    grace = bearer(users.issue_api_token(engine, grace_id))

    granted = admin_command(settings, "grant", "--email", "grace@example.com")
    assert granted.returncode == 0, granted.stderr
    assert "now an admin" in granted.stdout
    assert (await client.put("/api/secrets/OPENAI_API_KEY", json={"value": "sk-1"}, headers=grace)).status_code == 204

    revoked = admin_command(settings, "revoke", "--email", "grace@example.com")
    assert revoked.returncode == 0, revoked.stderr
    assert (await client.put("/api/secrets/OPENAI_API_KEY", json={"value": "sk-2"}, headers=grace)).status_code == 403
    assert secrets.for_sandbox(engine, services.current().cipher, 0) == {"OPENAI_API_KEY": "sk-1"}

    unknown = admin_command(settings, "grant", "--login", "nobody")
    assert unknown.returncode == 2 and "no user with login 'nobody'" in unknown.stderr
    local = admin_command(settings, "revoke", "--email", users.local_user(engine).email)  # type: ignore[union-attr]
    assert "made an admin again at the next local-mode start" in local.stderr


def _profile(login: str, github_id: int) -> GitHubProfile:
    return GitHubProfile(
        id=github_id, login=login, name=login, avatar_url="", emails=[(f"{login}@example.com", True, True)], orgs=[]
    )


def test_admin_users_are_made_admins_when_they_sign_in(settings: Settings, sqlite_engine: sa.Engine) -> None:
    listed = Settings(_env_file=None, data_dir=settings.data_dir, admin_users="Ada, linus")  # type: ignore[call-arg]
    cipher = Cipher(listed.encryption_key())
    auth.check_allowed(listed, _profile("ada", 1))  # an admin needs no allowlist of their own
    with pytest.raises(Forbidden):
        auth.check_allowed(listed, _profile("grace", 2))
    ada, _ = auth.sign_in(sqlite_engine, cipher, _profile("ada", 1), "gho_a", admin_logins=listed.admin_logins)
    grace, _ = auth.sign_in(sqlite_engine, cipher, _profile("grace", 2), "gho_g", admin_logins=listed.admin_logins)
    assert roles.is_admin(sqlite_engine, ada.id or 0) and not roles.is_admin(sqlite_engine, grace.id or 0)
    roles.set_admin(sqlite_engine, admin=True, login="GRACE")  # a grant survives her next sign-in
    auth.sign_in(sqlite_engine, cipher, _profile("grace", 2), "gho_g", admin_logins=listed.admin_logins)
    assert roles.is_admin(sqlite_engine, grace.id or 0)

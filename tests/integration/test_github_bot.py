"""The GitHub bot against a loopback GitHub (its REST API for the pull request and the comments),
through the signed webhook route, with the real control plane and in-loop sandboxes: a mention by an
Inspect user starts a session on the pull request's branch and the bot answers in the thread; a
stranger, a bot and an issue get nothing started; a fork's pull request is worked on without secrets
and nothing is pushed."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import itertools
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from inspect_app import services
from inspect_app.api.app import build_api
from inspect_app.control.automations import presets
from inspect_app.control.automations.github_bot import GitHubBot
from inspect_app.control.data import automations as data
from inspect_app.control.data import bot_replies, pushes, secrets
from inspect_app.db import session_scope, upgrade
from inspect_app.errors import Forbidden
from inspect_app.models import Message, Repository, Session, User
from inspect_app.settings import Settings
from tests.fakes.github import APP_ID, FakeGitHub, Pull, app_key_pem
from tests.fakes.provider import FakeProvider
from tests.integration.sandbox_harness import make_origin, until
from tests.integration.test_automations import github_repository

pytestmark = pytest.mark.timeout(60)
SECRET = "hook-secret"
PUBLIC = "http://inspect.test"


@dataclass
class World:
    github: FakeGitHub
    services: services.Services
    deliveries: itertools.count
    provider: FakeProvider

    async def comment(self, pull: int, login: str, body: str, **extra: Any) -> httpx.Response:
        payload = {
            "action": "created",
            "repository": {"full_name": "acme/widgets"},
            "issue": {"number": pull, "pull_request": {"url": "..."}},
            "comment": {"body": body, "user": {"login": login, "type": "User"}, "author_association": "COLLABORATOR"},
            **extra,
        }
        return await self.deliver("issue_comment", payload)

    async def deliver(self, event: str, payload: dict[str, Any]) -> httpx.Response:
        """A signed delivery to the App's webhook, as GitHub sends it."""
        body_bytes = json.dumps(payload).encode()
        headers = {
            "x-hub-signature-256": "sha256=" + hmac.new(SECRET.encode(), body_bytes, hashlib.sha256).hexdigest(),
            "x-github-event": event,
            "x-github-delivery": f"delivery-{next(self.deliveries)}",
        }
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_api()), base_url="http://t") as http:
            return await http.post("/api/github/webhook", content=body_bytes, headers=headers)

    def said(self, pull: int) -> list[str]:
        return [body for repo, number, body in self.github.comments if (repo, number) == ("acme/widgets", pull)]

    def sessions(self) -> list[Session]:
        with session_scope(self.services.engine) as db:
            return list(db.exec(select(Session).where(Session.source == "github")).all())


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    private, public = app_key_pem()
    root = tmp_path / "git"
    (root / "acme").mkdir(parents=True)
    shutil.move(make_origin(tmp_path), root / "acme" / "widgets.git")
    github = FakeGitHub(app_public_key=public, git_root=root)
    github.pulls += [
        Pull(1, "acme", "widgets", head="faster-login", base="main", title="Speed up login", body="", draft=False),
        Pull(
            2, "acme", "widgets", head="main", base="main", title="From a fork", body="", draft=False,
            head_repo="mallory/widgets",
        ),
    ]  # fmt: skip
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        public_url=PUBLIC,
        github_app_id=APP_ID,
        github_app_private_key=private,
        github_api_url=github.url,
        github_webhook_secret=SECRET,
        github_app_slug="inspect-bot",
    )
    upgrade(settings.resolved_database_url)
    provider = FakeProvider()
    built = services.build_services(settings, provider=provider)
    provider.plane = built.plane
    with session_scope(built.engine) as db:
        db.add(User(name="Ada", email="ada@example.com", login="ada"))
    github_repository(built.engine)
    services.install(built)
    await built.plane.start()
    try:
        yield World(github, built, itertools.count(1), provider)
        assert provider.errors == []
    finally:
        await built.plane.close()
        services.install(None)
        github.close()


async def test_a_mention_starts_a_session_on_the_pull_requests_branch_and_the_bot_answers(world: World) -> None:
    response = await world.comment(1, "ada", "@Inspect-Bot please make the login test pass")
    assert response.status_code == 200, response.text
    [session] = world.sessions()
    assert (session.base_branch, session.branch) == ("faster-login", "faster-login")  # its commits go there
    assert session.source_ref == {"repository": "acme/widgets", "pull": 1}
    link = f"{PUBLIC}/sessions/{session.id}"
    assert world.said(1)[0] == f"On it, @ada: {link}"
    answer = await until(lambda: world.said(1)[1:], "the bot's answer in the thread")
    assert answer == [f"Done as asked.\n\nThe session: {link}"]  # what the agent said, then the link
    with session_scope(world.services.engine) as db:
        [message] = db.exec(select(Message).where(Message.session_id == session.id)).all()
        ada = db.exec(select(User).where(User.login == "ada")).one()
        assert message.author_id == ada.id and message.content.startswith("please make the login test pass\n")
        assert "pull request #1, “Speed up login”, whose branch is faster-login" in message.content

    await world.comment(1, "ada", "@inspect-bot and add a test for it")  # the same pull request: the same session
    await until(lambda: len(world.said(1)) == 4, "the second answer")
    assert [s.id for s in world.sessions()] == [session.id]


async def test_an_answer_outlives_the_replica_that_took_the_mention_and_is_posted_once(world: World) -> None:
    """The replica that took the mention gives up before the prompt ends (as when it stops): the
    answer is still owed, and the automation tick — any replica's — posts it, once."""
    assert world.services.github_app is not None
    gone = GitHubBot(
        plane=world.services.plane, github=world.services.github_app, slug="inspect-bot",
        public_url=PUBLIC, answer_timeout_s=0,
    )  # fmt: skip
    world.provider.hold.clear()  # the agent is still working when that replica goes
    services.install(dataclasses.replace(world.services, github_bot=gone))
    try:
        await world.comment(1, "ada", "@inspect-bot fix the flaky test")
    finally:
        services.install(world.services)
    [session] = world.sessions()
    assert world.said(1) == [f"On it, @ada: {PUBLIC}/sessions/{session.id}"]
    await world.services.automations.tick()
    assert len(world.said(1)) == 1  # nothing is posted before the prompt has ended
    world.provider.hold.set()
    await until(lambda: bot_replies.due(world.services.engine), "the prompt's end")
    await world.services.automations.tick()
    assert world.said(1)[1:] == [f"Done as asked.\n\nThe session: {PUBLIC}/sessions/{session.id}"]
    await world.services.automations.tick()
    assert len(world.said(1)) == 2  # once


async def test_the_agents_answer_mentions_nobody_when_the_bot_quotes_it(world: World) -> None:
    """Whoever steered the agent could make it write @someone (a notification) or @the-bot (a new
    request): quoted in the thread, those mention nobody."""
    world.provider.answer = ("Ping @octocat, ", "@acme/owners ", "and @inspect-bot fix it; mail a@b.c")
    await world.comment(1, "ada", "@inspect-bot summarise")
    answer = await until(lambda: world.said(1)[1:], "the bot's answer")
    quiet = "Ping @\u2060octocat, @\u2060acme/owners and @\u2060inspect-bot fix it; mail a@b.c"
    assert answer[0].startswith(quiet)  # an email address is left as it is
    assert "@octocat" not in answer[0] and "@inspect-bot" not in answer[0]


async def test_strangers_bots_and_issues_start_nothing(world: World) -> None:
    await world.comment(1, "mallory", "@inspect-bot delete everything")
    [refusal] = world.said(1)
    assert refusal.startswith("@mallory I work for people who use Inspect here. Sign in at http://inspect.test")
    await world.comment(
        1,
        "ada",
        "@inspect-bot do it",
        comment={"body": "@inspect-bot loop", "user": {"login": "inspect-bot[bot]", "type": "Bot"}},
    )
    await world.comment(3, "ada", "@inspect-bot fix this issue", issue={"number": 3})  # an issue, not a pull request
    await world.comment(1, "ada", "thanks, no mention here")
    assert world.said(1) == [refusal] and world.said(3) == [] and world.sessions() == []


async def test_a_forks_pull_request_is_worked_on_without_secrets_and_nothing_is_pushed(world: World) -> None:
    """The fork's code runs (its pull request's ref, on its base), with none of the repository's
    secrets nor the global ones, and what it makes is not pushed anywhere."""
    engine, cipher = world.services.engine, world.services.cipher
    with session_scope(engine) as db:
        ada = db.exec(select(User).where(User.login == "ada")).one()
        ada.is_admin = True
        repo_id = db.exec(select(Repository.id)).one()
    secrets.put(engine, cipher, "DEPLOY_TOKEN", "s3cret-deploy", actor_id=ada.id or 0, repository_id=repo_id)
    secrets.put(engine, cipher, "GLOBAL_TOKEN", "s3cret-global", actor_id=ada.id or 0)
    await world.comment(2, "ada", "@inspect-bot why does the build fail?")
    [session] = world.sessions()
    assert (session.fork_ref, session.base_branch) == ("refs/pull/2/head", "main")
    assert session.branch == f"inspect/{session.id}"  # never the fork's branch
    link = f"{PUBLIC}/sessions/{session.id}"
    assert world.said(2)[0].startswith(f"On it, @ada: {link} This pull request comes from a fork: I work on its code")
    await until(lambda: len(world.said(2)) == 2, "the answer")
    [sandbox] = world.provider.sandboxes.values()
    assert (sandbox.spec.fork_ref, sandbox.spec.boot_mode) == ("refs/pull/2/head", "fresh")
    environment = sandbox.spec.environment()
    assert environment["SANDBOX_FORK_REF"] == "refs/pull/2/head"
    assert not {"s3cret-deploy", "s3cret-global"} & set(environment.values())
    with pytest.raises(Forbidden, match="from a fork: nothing it makes is pushed"):
        await world.services.pulls.create(session.id, title="steal", body="", draft=False)
    assert not pushes.ours(engine, repo_id or 0, session.branch[::-1])  # the fake's commit, had it pushed


async def test_the_work_is_pushed_onto_the_pull_requests_branch_or_beside_it_when_that_is_refused(world: World) -> None:
    await world.comment(1, "ada", "@inspect-bot tidy up")
    [session] = world.sessions()
    await until(lambda: len(world.said(1)) == 2, "the answer")  # the sandbox is up, its prompt done
    pulls = world.services.pulls
    onto = await pulls.create(session.id, title="ignored", body="", draft=False)
    assert (onto.kind, onto.url) == ("pr", "https://github.com/acme/widgets/pull/1")
    assert onto.message.startswith("Pushed nigol-rets onto faster-login, the branch of pull request #1")
    assert world.github.calls_to("POST", "/repos/acme/widgets/pulls") == []  # nothing opened
    assert [p.title for p in world.github.pulls] == ["Speed up login", "From a fork"]  # nor edited
    world.provider.refused_branches = {"faster-login"}  # protected: the work goes beside it
    beside = await pulls.create(session.id, title="ignored", body="", draft=False)
    own = f"inspect/{session.id}"
    assert beside.kind == "branch"
    assert beside.url == f"https://github.com/acme/widgets/compare/faster-login...{own}?expand=1"
    assert "Could not push onto faster-login" in beside.message and "protected branch hook declined" in beside.message
    assert own in beside.message


async def test_the_review_preset_reviews_a_new_pull_request_through_the_app(world: World) -> None:
    engine, cipher = world.services.engine, world.services.cipher
    with session_scope(engine) as db:
        ada = db.exec(select(User).where(User.login == "ada")).one()
        repository_id = db.exec(select(Repository)).one().id or 0
        db.expunge(ada)
    with pytest.raises(Forbidden, match="only an admin"):
        presets.set_review(engine, cipher, ada, repository_id, on=True)
    ada.is_admin = True
    with session_scope(engine) as db:
        db.merge(ada)
    review = presets.set_review(engine, cipher, ada, repository_id, on=True)
    assert review is not None and review.trigger_config["review"] is True

    def opened(number: int) -> dict[str, Any]:
        repo = {"full_name": "acme/widgets"}
        return {
            "action": "opened",
            "repository": repo,
            "sender": {"login": "grace", "type": "User"},
            "pull_request": {
                "number": number,
                "html_url": f"https://github.com/acme/widgets/pull/{number}",
                "title": "Speed up login",
                "author_association": "MEMBER",
                "user": {"login": "grace", "type": "User"},
                "head": {"ref": "faster-login", "sha": "a" * 40, "repo": repo},
                "base": {"ref": "main", "repo": repo},
            },
        }

    assert (await world.deliver("pull_request", opened(1))).status_code == 200
    automations = world.services.automations

    async def reviewed() -> list:
        await automations.tick()
        return world.github.reviews

    deadline = asyncio.get_running_loop().time() + 20
    while not await reviewed():
        assert asyncio.get_running_loop().time() < deadline, "no review was posted"
        await asyncio.sleep(0.1)
    [(repo, number, event, body)] = world.github.reviews
    runs = data.runs(engine, review.id or 0)
    assert (repo, number, event) == ("acme/widgets", 1, "COMMENT")
    link = f"{PUBLIC}/sessions/{runs[0].session_id}"
    assert body == f"Done as asked.\n\n— Inspect, Review pull requests: acme/widgets (run #1): {link}"
    assert world.sessions() == []  # the automation's session (source "automation"), not the bot's
    assert "Do not change any file" in runs[0].prompt and '#1, "Speed up login"' in runs[0].prompt
    await automations.tick()
    assert len(world.github.reviews) == 1  # posted once

    off = presets.set_review(engine, cipher, ada, repository_id, on=False)
    assert off is not None and off.status == "paused"
    await world.deliver("pull_request", opened(2))
    assert len(data.runs(engine, review.id or 0)) == 1  # switched off: nothing more

"""Automations on the real control plane (in-loop fake sandboxes), on SQLite and PostgreSQL: a
schedule fires once across schedulers and restarts, a fire missed past the grace window is recorded,
a webhook body is matched and rendered into the run's prompt, runs follow their prompt to the end,
and three failures in a row pause the automation."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import select

from bots.slack.bot import SlackBot
from bots.slack.classifier import Classifier
from inspect_app import services
from inspect_app.api.app import build_api
from inspect_app.control.automations import manage
from inspect_app.control.automations.runner import Automations
from inspect_app.control.data import automations as data
from inspect_app.control.data import pushes
from inspect_app.db import session_scope
from inspect_app.errors import Forbidden, InspectError
from inspect_app.models import Automation, Message, Repository, User
from inspect_app.settings import Settings
from tests.integration.test_plane_core import Core, running_core

pytestmark = pytest.mark.timeout(60)
GRACE_S = 3600
GITHUB_SECRET = "github-webhook-secret"


@pytest.fixture
async def core(empty_db_url: str, tmp_path: Path) -> AsyncIterator[Core]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=tmp_path / "data", database_url=empty_db_url, github_webhook_secret=GITHUB_SECRET
    )
    async with running_core(settings) as running:
        yield running


def runner(core: Core) -> Automations:
    """One replica's scheduler (another instance on the same database is another replica's)."""
    return Automations(engine=core.services.engine, plane=core.services.plane, tick_s=60, grace_s=GRACE_S)


def _first_repository(core: Core) -> int:
    with session_scope(core.services.engine) as db:
        repository = db.exec(select(Repository)).first()
        assert repository is not None
        return repository.id or 0


def scheduled(core: Core, cron: str = "0 9 * * *", **spec: object) -> Automation:
    automation, _ = manage.create(
        core.services.engine,
        core.services.cipher,
        core.user,
        manage.Spec(
            name="Nightly triage",
            trigger="schedule",
            cron=cron,
            timezone="Europe/Berlin",
            repository_ids=[_first_repository(core)],
            template="Triage {{ repository }} as of {{ payload.fired_at }}.",
            **spec,  # type: ignore[arg-type]
        ),
    )
    return automation


def due_now(core: Core, automation: Automation, due: datetime) -> None:
    data.update(core.services.engine, automation.id or 0, next_fire_at=due)


async def settled(core: Core, automations: Automations, automation_id: int, count: int) -> list:
    """Tick until ``count`` runs of the automation have ended."""

    def ended() -> list:
        runs = data.runs(core.services.engine, automation_id)
        return runs if sum(r.finished_at is not None for r in runs) >= count else []

    async def ticking() -> list:
        while not (found := ended()):
            await automations.tick()
            await asyncio.sleep(0.05)
        return found

    return await asyncio.wait_for(ticking(), 20)


async def test_a_due_schedule_runs_once_across_two_schedulers_and_a_restart(core: Core) -> None:
    automation = scheduled(core)
    due = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    due_now(core, automation, due)
    now = due + timedelta(seconds=5)
    core.provider.hold.clear()  # the sandbox answers only when told: the run stays running meanwhile
    one, two = runner(core), runner(core)
    await asyncio.gather(one.tick(now), two.tick(now))  # two replicas at the same moment
    runs = data.runs(core.services.engine, automation.id or 0)
    assert len(runs) == 1 and runs[0].status == "running"
    assert runs[0].prompt == "Triage demo as of 2026-12-04T08:00:00+00:00."
    assert data.get(core.services.engine, automation.id or 0).next_fire_at == datetime(2026, 12, 5, 8, tzinfo=UTC)
    # a server that stopped after claiming the fire, before moving the schedule on, claims it again at start
    due_now(core, automation, due)
    await runner(core).tick(now)
    assert len(data.runs(core.services.engine, automation.id or 0)) == 1
    # the run is a session acting for the person, with the rendered prompt as its prompt
    core.provider.hold.set()
    [run] = await settled(core, one, automation.id or 0, 1)
    assert run.status == "succeeded" and run.session_id
    with session_scope(core.services.engine) as db:
        message = db.get(Message, run.message_id)
        assert message is not None and message.content == run.prompt and message.author_id == core.user.id
    session = core.services.plane.session_snapshot(run.session_id or "")["session"]
    assert session["source"] == "automation" and session["started_by"] == "automation Nightly triage (run #1)"


async def test_a_fire_missed_past_the_grace_window_is_recorded_and_a_recent_one_runs(core: Core) -> None:
    automation = scheduled(core)
    core.provider.hold.clear()  # the run stays running until the test ends
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    due_now(core, automation, now - timedelta(seconds=GRACE_S + 60))  # down for longer than the grace
    await runner(core).tick(now)
    [missed] = data.runs(core.services.engine, automation.id or 0)
    assert missed.status == "missed" and "the server was down" in missed.reason and missed.session_id is None
    due_now(core, automation, now - timedelta(seconds=600))  # ten minutes late: within the grace
    await runner(core).tick(now)
    latest = data.runs(core.services.engine, automation.id or 0)[0]
    assert latest.status == "running" and latest.number == 2


async def test_three_failed_runs_pause_the_automation_and_a_success_resets_the_count(core: Core) -> None:
    automation = scheduled(core)
    automations = runner(core)
    core.provider.failing_prompts = True
    for count in (1, 2):
        await automations.run_now(automation.id or 0)
        await settled(core, automations, automation.id or 0, count)
    assert data.get(core.services.engine, automation.id or 0).failures_in_a_row == 2
    core.provider.failing_prompts = False
    await automations.run_now(automation.id or 0)
    await settled(core, automations, automation.id or 0, 3)
    assert data.get(core.services.engine, automation.id or 0).failures_in_a_row == 0
    core.provider.failing_prompts = True
    for count in (4, 5, 6):
        await automations.run_now(automation.id or 0)
        await settled(core, automations, automation.id or 0, count)
    paused = data.get(core.services.engine, automation.id or 0)
    assert paused.status == "paused"
    assert paused.paused_reason == "paused after 3 failed runs in a row; the last: the agent gave up"
    assert [r.status for r in data.runs(core.services.engine, automation.id or 0)][:3] == ["failed"] * 3
    due_now(core, automation, datetime.now(UTC))  # a paused schedule does not fire
    await automations.tick()
    assert len(data.runs(core.services.engine, automation.id or 0)) == 6
    resumed = manage.update(core.services.engine, core.user, automation.id or 0, manage.Spec(status="active"))
    assert resumed.status == "active" and resumed.failures_in_a_row == 0 and resumed.paused_reason == ""
    assert resumed.next_fire_at is not None and resumed.next_fire_at > datetime.now(UTC)  # from now on


async def test_a_webhook_body_is_matched_rendered_as_data_and_each_delivery_runs_once(core: Core) -> None:
    automation, secret = manage.create(
        core.services.engine,
        core.services.cipher,
        core.user,
        manage.Spec(
            name="Deploy failed",
            trigger="webhook",
            filters=[{"path": "deployment.status", "equals": "failed"}, {"path": "env", "in": ["prod", "staging"]}],
            repository_ids=[_first_repository(core)],
            template="Deploy {{ payload.deployment.id }} failed: {{ payload.deployment.log }}{{ payload.nothing }}",
        ),
    )
    assert secret is not None and secret.startswith("whsec_")
    automations = runner(core)
    body = {"deployment": {"status": "failed", "id": 7, "log": "{{ 7 * 7 }} {% raw %}"}, "env": "prod"}
    [run] = await automations.webhook(automation, body, "delivery-1")
    assert run.prompt == "Deploy 7 failed: {{ 7 * 7 }} {% raw %}"  # the payload is data, never template
    assert await automations.webhook(automation, body, "delivery-1") == []  # the same delivery again
    [skipped] = await automations.webhook(automation, {**body, "env": "dev"}, "delivery-2")
    assert skipped.status == "skipped" and skipped.reason == "env is 'dev', not one of ['prod', 'staging']"
    [missing] = await automations.webhook(automation, {"env": "prod"}, "delivery-3")
    assert missing.status == "skipped" and missing.reason == "the body has no deployment.status"
    assert [r.number for r in data.runs(core.services.engine, automation.id or 0)] == [3, 2, 1]


async def test_a_run_with_no_free_slot_waits_or_is_skipped(core: Core) -> None:
    queueing = scheduled(core)
    automations = runner(core)
    core.provider.hold.clear()  # prompts wait before they answer: the first run keeps its slot
    [first] = await automations.run_now(queueing.id or 0)
    [second] = await automations.run_now(queueing.id or 0)
    runs = {r.id: r.status for r in data.runs(core.services.engine, queueing.id or 0)}
    assert runs == {first.id: "running", second.id: "queued"}
    skipping = scheduled(core, overflow="skip")
    await automations.run_now(skipping.id or 0)
    [skipped] = await automations.run_now(skipping.id or 0)
    assert skipped.status == "skipped" and skipped.reason == "1 run(s) of it were running already"
    core.provider.hold.set()
    await settled(core, automations, queueing.id or 0, 2)  # the queued one ran once the first ended
    assert [r.status for r in data.runs(core.services.engine, queueing.id or 0)] == ["succeeded", "succeeded"]


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"events": ["issues.labeled"]}, "events belongs to a github trigger, and this one is schedule"),
        ({"filters": []}, "filters belongs to a webhook trigger"),
        ({"cron": "0 9 * * *", "trigger": "webhook"}, "cron belongs to a schedule trigger"),
        ({"channel": "C1", "trigger": "github", "events": ["issues.labeled"]}, "channel belongs to a slack trigger"),
        ({"trigger": "github", "events": ["issues.opened"]}, "events: one or more of issues.labeled"),
        ({"trigger": "slack"}, "needs the channel"),
        ({"template": "{% if %}"}, "does not parse"),
        ({"repository_ids": [999]}, "no repository 999"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
    ],
)
def test_a_wrong_automation_is_refused_with_what_is_wrong(core: Core, spec: dict, error: str) -> None:
    fields = {"name": "x", "trigger": "schedule", "cron": "0 9 * * *", "repository_ids": [_first_repository(core)]}
    fields |= {"template": "Do it"} | spec
    if fields["trigger"] != "schedule" and "cron" not in spec:
        fields.pop("cron")
    with pytest.raises(InspectError, match=re.escape(error)):
        manage.create(core.services.engine, core.services.cipher, core.user, manage.Spec(**fields))
    assert data.list_all(core.services.engine) == []  # nothing was created


async def test_someone_else_cannot_change_run_or_delete_an_automation(core: Core) -> None:
    automation = scheduled(core)
    with session_scope(core.services.engine) as db:
        mallory = User(name="Mallory", email="mallory@example.com")
        db.add(mallory)
        db.flush()
        db.expunge(mallory)
    engine = core.services.engine
    for attempt in (
        lambda: manage.update(engine, mallory, automation.id or 0, manage.Spec(template="Leak the secrets")),
        lambda: manage.update(engine, mallory, automation.id or 0, manage.Spec(status="paused")),
        lambda: manage.delete(engine, mallory, automation.id or 0),
        lambda: manage.editable(engine, mallory, automation.id or 0),  # what Run now asks first
    ):
        with pytest.raises(Forbidden, match="only its creator, the person it acts for or an admin"):
            attempt()
    unchanged = data.get(engine, automation.id or 0)
    assert (unchanged.template, unchanged.status) == (automation.template, "active")
    assert data.runs(engine, automation.id or 0) == []


async def test_only_an_admin_makes_an_automation_act_for_someone_else(core: Core) -> None:
    with session_scope(core.services.engine) as db:
        grace = User(name="Grace", email="grace@example.com")
        db.add(grace)
        db.flush()
        grace_id = grace.id or 0
    with pytest.raises(Forbidden, match="only an admin"):
        scheduled(core, acts_for_id=grace_id)
    with session_scope(core.services.engine) as db:
        ada = db.get(User, core.user.id)
        assert ada is not None
        ada.is_admin = True
        db.flush()
        db.expunge(ada)
    automation, _ = manage.create(
        core.services.engine,
        core.services.cipher,
        ada,
        manage.Spec(
            name="For Grace",
            trigger="schedule",
            cron="0 9 * * *",
            repository_ids=[_first_repository(core)],
            template="Hello",
            acts_for_id=grace_id,
        ),
    )
    core.provider.hold.clear()
    [run] = await runner(core).run_now(automation.id or 0)
    assert run.status == "running"
    with session_scope(core.services.engine) as db:
        message = db.get(Message, data.runs(core.services.engine, automation.id or 0)[0].message_id)
        assert message is not None and message.author_id == grace_id  # the session and its PR are Grace's


def github_repository(engine: sa.Engine) -> int:
    """acme/widgets, registered as a repository the GitHub App reaches."""
    with session_scope(engine) as db:
        repo = Repository(
            url="https://github.com/acme/widgets",
            name="acme/widgets",
            kind="github",
            github_owner="acme",
            github_name="widgets",
        )
        db.add(repo)
        db.flush()
        return repo.id or 0


def pull_event(number: int, *, association: str = "COLLABORATOR", bot: bool = False, fork: bool = False) -> dict:
    repo = {"full_name": "acme/widgets", "id": 1}
    head_repo = {"full_name": "stranger/widgets", "id": 2} if fork else repo
    return {
        "action": "opened",
        "repository": repo,
        "sender": {"login": "someone", "type": "Bot" if bot else "User"},
        "pull_request": {
            "number": number,
            "html_url": f"https://github.com/acme/widgets/pull/{number}",
            "title": "Make login faster",
            "author_association": association,
            "user": {"login": "someone", "type": "Bot" if bot else "User"},
            "head": {"ref": f"feature-{number}", "sha": "a" * 40, "repo": head_repo},
            "base": {"ref": "main", "repo": repo},
        },
    }


def check_failed(number: int, *, fork: bool = False, sha: str = "b" * 40) -> dict:
    repo = {"full_name": "acme/widgets", "id": 1}
    return {
        "action": "completed",
        "repository": repo,
        "sender": {"login": "github-actions[bot]", "type": "Bot"},  # CI's own events are what this trigger is for
        "check_run": {
            "name": "tests",
            "conclusion": "failure",
            "head_sha": sha,
            "pull_requests": [
                {
                    "number": number,
                    "head": {"ref": "fix-login", "sha": sha, "repo": {"id": 2 if fork else 1}},
                    "base": {"ref": "main", "repo": {"id": 1}},
                }
            ],
        },
    }


async def test_github_events_start_runs_on_the_pull_requests_branch_for_trusted_people_only(core: Core) -> None:
    repo_id = github_repository(core.services.engine)
    automation, _ = manage.create(
        core.services.engine,
        core.services.cipher,
        core.user,
        manage.Spec(
            name="Fix failing CI",
            trigger="github",
            events=["issues.labeled", "check_run.failed", "pull_request.opened"],
            label="inspect",
            max_concurrent=10,
            repository_ids=[repo_id],
            template="{{ payload.issue.title }}{{ payload.check_run.name }}{{ payload.pull_request.title }}",
        ),
    )
    services.install(core.services)  # what the API's routes use (undone at the end)
    core.provider.hold.clear()
    try:
        await _deliver_github_events(core, automation.id or 0, repo_id)
    finally:
        services.install(None)


async def _deliver_github_events(core: Core, automation_id: int, repo_id: int) -> None:
    deliveries = iter(range(1, 100))

    async def deliver(event: str, payload: dict) -> httpx.Response:
        body = json.dumps(payload).encode()
        signature = "sha256=" + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "x-hub-signature-256": signature,
            "x-github-event": event,
            "x-github-delivery": f"d{next(deliveries)}",
        }
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_api()), base_url="http://t") as http:
            return await http.post("/api/github/webhook", content=body, headers=headers)

    def runs() -> list:
        return data.runs(core.services.engine, automation_id, limit=100)[::-1]

    issue = {"action": "labeled", "repository": {"full_name": "acme/widgets"}, "sender": {"type": "User"}}
    await deliver("issues", {**issue, "label": {"name": "inspect"}, "issue": {"title": "Login is slow"}})
    await deliver("issues", {**issue, "label": {"name": "wontfix"}, "issue": {"title": "Not this one"}})
    assert [(r.status, r.prompt, r.branch) for r in runs()] == [("running", "Login is slow", None)]
    for _ in range(3):  # checks failing on one commit: at most two runs on it
        assert (await deliver("check_run", check_failed(7))).status_code == 200
    await deliver("check_run", check_failed(7, sha="c" * 40))  # someone pushed: a new commit, a new run
    ours = "d" * 40
    pushes.record(core.services.engine, repo_id, ours, None)
    await deliver("check_run", check_failed(7, sha=ours))  # failing on the fix Inspect pushed: no loop
    await deliver("check_run", check_failed(8, fork=True))
    await deliver("pull_request", pull_event(9, association="CONTRIBUTOR"))
    await deliver("pull_request", pull_event(10, bot=True))
    await deliver("pull_request", pull_event(11))
    found = [(r.status, r.branch, r.reason) for r in runs()[1:]]
    assert found[:2] == [("running", "fix-login", "")] * 2
    assert found[2] == ("skipped", None, "it ran 2 times on bbbbbbbbbb already (at most 2)")
    assert found[3] == ("running", "fix-login", "")
    assert found[4] == (
        "skipped",
        None,
        "it is about dddddddddd, a commit Inspect pushed (its own work starts nothing)",
    )
    assert found[5] == ("running", "main", "")  # a fork's: on its base, with the fork's code (below)
    assert found[6] == ("skipped", None, "its author is not an owner, member or collaborator (CONTRIBUTOR)")
    assert found[7] == ("skipped", None, "opened by a bot")
    assert found[8] == ("running", "feature-11", "")
    fork = runs()[6]
    assert fork.fork and fork.pull == 8
    forked = core.services.plane.session_snapshot(fork.session_id or "")["session"]
    assert forked["fork_ref"] == "refs/pull/8/head"
    assert forked["branch"] != "fix-login"  # its work never goes onto the fork's branch
    running = runs()[1]
    snapshot = core.services.plane.session_snapshot(running.session_id or "")["session"]
    assert snapshot["base_branch"] == "fix-login"  # the work starts from the pull request's head


async def test_a_message_in_a_watched_slack_channel_starts_a_run(core: Core) -> None:
    automation, _ = manage.create(
        core.services.engine,
        core.services.cipher,
        core.user,
        manage.Spec(
            name="Triage alerts",
            trigger="slack",
            channel="C0ALERTS",
            contains="deploy failed",
            repository_ids=[_first_repository(core)],
            template="Someone wrote: {{ payload.text }}",
        ),
    )
    bot = SlackBot(
        client=AsyncWebClient(token="xoxb-unused", base_url="http://127.0.0.1:9/"),  # nothing is said back
        plane=core.services.plane,
        classifier=Classifier(base_url="", api_key="", model=""),
        public_url="http://inspect.test",
        automations=runner(core),
    )

    def message(event_id: str, text: str, **extra: object) -> dict:
        event = {"type": "message", "channel": "C0ALERTS", "user": "U1", "text": text, "ts": "1.0", **extra}
        return {"event_id": event_id, "event": event}

    await bot.handle_event(message("E1", "Heads up: Deploy FAILED on prod"))
    await bot.handle_event(message("E1", "Heads up: Deploy FAILED on prod"))  # Slack retries
    await bot.handle_event(message("E2", "all good"))
    await bot.handle_event(message("E3", "deploy failed again", thread_ts="0.5"))  # a thread reply
    await bot.handle_event(message("E4", "deploy failed, says the bot", bot_id="B1"))
    await bot.handle_event(
        {
            **message("E5", "deploy failed"),
            "event": {**message("E5", "x")["event"], "channel": "C0OTHER", "text": "deploy failed"},
        }
    )
    [run] = data.runs(core.services.engine, automation.id or 0)
    assert run.prompt == "Someone wrote: Heads up: Deploy FAILED on prod" and run.source == "slack"

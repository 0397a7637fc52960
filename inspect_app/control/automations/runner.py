"""Firing automations and following their runs to the end.

Every replica runs the same ``tick`` (every ``automation_tick_s``): schedules that are due fire, runs
whose prompt ended are finished, queued runs start when a slot frees, and the GitHub bot's owed
answers are posted. Nothing here needs a leader:
a fire is claimed by a unique row (``data/automations.claim``), a run starts under its automation's
row lock, and a run ends once (``finish``), whichever replica gets there first.

A run is a session on its repository, created for the person the automation acts for (its PR is
theirs), with the rendered template as its one prompt; it succeeds or fails with that prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from inspect_app.control.automations import github_events, schedule, templates
from inspect_app.control.automations.filters import Filter, mismatch
from inspect_app.control.automations.github_bot import GitHubBot
from inspect_app.control.data import automations as data
from inspect_app.control.data import pushes, repositories
from inspect_app.control.plane import ControlPlane
from inspect_app.errors import Conflict, InspectError
from inspect_app.models import Automation, AutomationRun, AutomationStatus, RunStatus, utcnow
from inspect_app.scm.github_app import GitHubApp, inert_mentions

log = logging.getLogger(__name__)

STALLED_START_S = 600  # a run marked running whose session never started (the server stopped meanwhile)
MAX_RUNS_PER_COMMIT = 2  # runs of one automation on one pull request's head commit (two checks failing on it)


class Automations:
    def __init__(
        self,
        *,
        engine: sa.Engine,
        plane: ControlPlane,
        tick_s: float,
        grace_s: float,
        github: GitHubApp | None = None,
        public_url: str = "",
        bot: GitHubBot | None = None,
    ) -> None:
        self._engine = engine
        self._plane = plane
        self._github = github  # posts reviews (automations with "review")
        self._bot = bot  # its owed answers are posted by the tick too (once its prompt ended)
        self._public_url = public_url.rstrip("/")
        self._tick_s = tick_s
        self._grace = timedelta(seconds=grace_s)
        self._loop: asyncio.Task[None] | None = None

    # --- the loop ------------------------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.get_running_loop().create_task(self._tick_forever(), name="automations")

    async def close(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None

    async def _tick_forever(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # one bad tick must not end the schedule; the next one tries again
                log.exception("automation tick failed")
            await asyncio.sleep(self._tick_s)

    async def tick(self, now: datetime | None = None) -> None:
        now = now or utcnow()
        for automation in await asyncio.to_thread(data.due_schedules, self._engine, now):
            await self._fire_schedule(automation, now)
        for ended in await asyncio.to_thread(data.ended_runs, self._engine):
            owner = await asyncio.to_thread(
                data.finish, self._engine, ended.run_id, success=ended.success, reason=ended.reason
            )
            # ``finish`` answers only the replica that ended the run: the review is posted once
            if owner is not None and ended.success and owner.trigger_config.get("review"):
                await self._review(owner, ended.run_id)
        for run_id in await asyncio.to_thread(data.stalled, self._engine, now - timedelta(seconds=STALLED_START_S)):
            reason = "its session did not start (the server stopped while it started)"
            await asyncio.to_thread(data.finish, self._engine, run_id, success=False, reason=reason)
        for run in await asyncio.to_thread(data.queued, self._engine):
            await self._start(run)
        if self._bot is not None:
            await self._bot.answer_owed()

    # --- triggers -------------------------------------------------------------------------------
    async def _fire_schedule(self, automation: Automation, now: datetime) -> None:
        """Fire the due time, or record it missed when the server was down past the grace window; then
        move the schedule on to its next time after now. Claimed before it moves on: a server stopping
        in between claims it again at start and finds it claimed (it runs once, not twice or never);
        a peer doing the same at the same time finds it claimed too."""
        due = automation.next_fire_at
        assert due is not None
        key = f"schedule:{due.isoformat()}"
        if now - due > self._grace:
            late = f"the server was down at {due.isoformat()} ({int((now - due).total_seconds())} s before it ran)"
            await self._claim(automation, key, "schedule", {}, status=RunStatus.MISSED, reason=late)
        else:
            await self._fire(automation, source="schedule", fire_key=key, payload={"fired_at": due.isoformat()})
        config = automation.trigger_config
        following = schedule.next_fire(config["cron"], config["timezone"], now)
        await asyncio.to_thread(data.advance, self._engine, automation.id or 0, seen=due, to=following)

    async def run_now(self, automation_id: int) -> list[AutomationRun]:
        """ "Run now": a fire of its own, whatever the trigger."""
        automation = await asyncio.to_thread(data.get, self._engine, automation_id)
        if automation.status != AutomationStatus.ACTIVE:
            raise Conflict("the automation is paused: resume it first", code="automation_paused")
        return await self._fire(automation, source="manual", fire_key=f"manual:{secrets.token_hex(8)}", payload={})

    async def webhook(self, automation: Automation, body: dict[str, Any], delivery: str) -> list[AutomationRun]:
        """A verified delivery: a run per repository if the body matches, else one skipped run saying
        why (nothing is lost from view). A delivery id seen before starts nothing."""
        key = f"webhook:{delivery}"
        if automation.status != AutomationStatus.ACTIVE:
            return await self._claim(automation, key, "webhook", body, status=RunStatus.SKIPPED, reason="paused")
        why = mismatch(body, [Filter.model_validate(f) for f in automation.trigger_config.get("filters", [])])
        if why is not None:
            return await self._claim(automation, key, "webhook", body, status=RunStatus.SKIPPED, reason=why)
        return await self._fire(automation, source="webhook", fire_key=key, payload=body)

    async def github_event(self, event: str, payload: dict[str, Any], delivery: str) -> list[AutomationRun]:
        """A verified GitHub delivery (``api/github.py`` handles each once): a run for each automation
        watching this event on this repository, on the pull request's head branch where there is one
        (a fork's pull request: on its code, untrusted). One that may not start work (a bot's, a
        stranger's, one caused by Inspect's own push) is recorded as skipped, saying why; one head
        commit gets at most MAX_RUNS_PER_COMMIT runs of one automation."""
        found = github_events.read(event, payload)
        if found is None:
            return []
        repository = await asyncio.to_thread(repositories.by_github_name, self._engine, found.full_name)
        if repository is None:
            return []
        repository_id = repository.id or 0
        why = found.refused
        if not why and await asyncio.to_thread(pushes.ours, self._engine, repository_id, found.head_sha):
            why = f"it is about {found.head_sha[:10]}, a commit Inspect pushed (its own work starts nothing)"
        runs: list[AutomationRun] = []
        for automation in await asyncio.to_thread(data.active, self._engine, "github"):
            config = automation.trigger_config
            if found.kind not in config.get("events", []) or repository_id not in automation.repository_ids:
                continue
            if found.kind == "issues.labeled" and config.get("label") and config["label"] != found.label:
                continue
            # runs on one head commit share a key prefix: they are counted by it
            commit = f"github:pull{found.pull}:{found.head_sha[:12]}:" if found.pull is not None else "github:"
            key, only, skip = f"{commit}{delivery}", [repository_id], why
            if not skip and found.pull is not None:
                done = await asyncio.to_thread(data.claimed_with, self._engine, automation.id or 0, commit)
                if done >= MAX_RUNS_PER_COMMIT:
                    skip = f"it ran {done} times on {found.head_sha[:10]} already (at most {MAX_RUNS_PER_COMMIT})"
            if skip:
                runs += await self._claim(
                    automation, key, "github", payload, status=RunStatus.SKIPPED, reason=skip, only=only
                )
                continue
            runs += await self._fire(
                automation,
                source="github",
                fire_key=key,
                payload=payload,
                only=only,
                branch=found.branch,
                pull=found.pull,
                fork=found.fork,
            )
        return runs

    async def slack_message(self, *, channel: str, text: str, user: str, ts: str, event_id: str) -> list[AutomationRun]:
        """A person's message in a channel (not a thread reply, not a mention of the bot): a run for
        each automation watching that channel whose phrase the message contains."""
        runs: list[AutomationRun] = []
        for automation in await asyncio.to_thread(data.active, self._engine, "slack"):
            config = automation.trigger_config
            if config.get("channel") != channel or str(config.get("contains", "")).lower() not in text.lower():
                continue
            payload = {"text": text, "user": user, "channel": channel, "ts": ts}
            runs += await self._fire(automation, source="slack", fire_key=f"slack:{event_id}", payload=payload)
        return runs

    # --- runs ------------------------------------------------------------------------------------
    async def _fire(
        self,
        automation: Automation,
        *,
        source: str,
        fire_key: str,
        payload: dict[str, Any],
        only: list[int] | None = None,
        branch: str | None = None,
        pull: int | None = None,
        fork: bool = False,
    ) -> list[AutomationRun]:
        """Claim the fire (a run per repository, or per repository in ``only``) and start its runs;
        with ``pull``, they work on that pull request's ``branch``: their commits go onto it (with
        ``fork``, on its code from a fork, based on ``branch``, and nothing is pushed)."""
        claims = []
        slots = await asyncio.to_thread(data.free_slots, self._engine, automation.id or 0)
        names = await asyncio.to_thread(self._repository_names, automation.repository_ids)
        for repository_id in only if only is not None else automation.repository_ids:
            context = {
                "payload": payload,
                "automation": automation.name,
                "repository": names.get(repository_id, ""),
                "source": source,
            }
            try:
                # off the loop: a template is a person's code (its loops may take a while)
                prompt = await asyncio.to_thread(templates.render, automation.template, **context)
            except InspectError as exc:
                claims.append(data.Claim(repository_id, status=RunStatus.FAILED, reason=exc.message))
                continue
            if slots <= 0 and automation.overflow == "skip":
                reason = f"{automation.max_concurrent} run(s) of it were running already"
                claims.append(data.Claim(repository_id, prompt, status=RunStatus.SKIPPED, reason=reason))
                continue
            slots -= 1
            claims.append(data.Claim(repository_id, prompt, branch=branch, pull=pull, fork=fork))
        runs = await asyncio.to_thread(
            data.claim, self._engine, automation.id or 0, fire_key=fire_key, source=source, payload=payload, runs=claims
        )
        for run in runs:
            if run.status == RunStatus.QUEUED:
                await self._start(run)
        return [await asyncio.to_thread(data.run, self._engine, run.id or 0) for run in runs]  # as they are now

    async def _claim(
        self,
        automation: Automation,
        key: str,
        source: str,
        payload: dict[str, Any],
        *,
        status: str,
        reason: str,
        only: list[int] | None = None,
    ) -> list[AutomationRun]:
        """A fire recorded without running (skipped, missed): one run per repository, for the history."""
        repos = only if only is not None else automation.repository_ids
        claims = [data.Claim(repo, status=status, reason=reason) for repo in repos]
        return await asyncio.to_thread(
            data.claim, self._engine, automation.id or 0, fire_key=key, source=source, payload=payload, runs=claims
        )

    async def _start(self, run: AutomationRun) -> None:
        """Start a queued run if its automation has a free slot: a session for the person it acts for,
        with the rendered prompt. A run that cannot start fails, with the reason."""
        started = await asyncio.to_thread(data.start, self._engine, run.id or 0)
        if started is None:
            return  # no free slot, paused, or started by a peer
        try:
            automation = await asyncio.to_thread(data.get, self._engine, started.automation_id)
            user = await self._plane.person(automation.acts_for_id)
            session = await self._plane.create_session(
                repository_id=started.repository_id,
                creator_id=user.id or 0,
                branch=started.branch,
                work_branch=started.branch if started.pull is not None and not started.fork else None,
                fork_pull=started.pull if started.fork else None,
                model=automation.model,
                title=f"{automation.name} #{started.number}",
                source="automation",
                source_ref={
                    "automation_id": automation.id,
                    "automation": automation.name,
                    "run_id": started.id,
                    "run": started.number,
                    **({"pull": started.pull} if started.pull is not None else {}),
                },
            )
            queued = await self._plane.submit_prompt(
                session_id=session.id, user=user, content=started.prompt, source="automation"
            )
        except InspectError as exc:
            await asyncio.to_thread(data.finish, self._engine, started.id or 0, success=False, reason=exc.message)
            return
        await asyncio.to_thread(
            data.attach_session, self._engine, started.id or 0, session_id=session.id, message_id=queued.message.id
        )

    async def _review(self, automation: Automation, run_id: int) -> None:
        """Post what the agent answered as a review of the run's pull request, through the App."""
        run = await asyncio.to_thread(data.run, self._engine, run_id)
        if self._github is None or run.pull is None or run.session_id is None:
            return
        repository = await asyncio.to_thread(repositories.get, self._engine, run.repository_id)
        answer = await asyncio.to_thread(self._plane.answer, run.session_id, run.message_id or "")
        link = f"{self._public_url}/sessions/{run.session_id}"
        body = f"{inert_mentions(answer) or 'No findings.'}\n\n— Inspect, {automation.name} (run #{run.number}): {link}"
        try:
            owner, name = repository.github_owner or "", repository.github_name or ""
            await asyncio.to_thread(self._github.review, owner, name, run.pull, body)
        except InspectError as exc:
            log.warning("could not post the review of run %s: %s", run_id, exc.message)

    def _repository_names(self, repository_ids: list[int]) -> dict[int, str]:
        names = {}
        for repository_id in repository_ids:
            with contextlib.suppress(InspectError):
                names[repository_id] = repositories.get(self._engine, repository_id).name
        return names

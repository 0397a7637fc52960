"""The GitHub bot: an @mention of the App in a pull request starts a session on the pull request's
head branch (or continues the one it started before), acting for the person who wrote it, and the
bot answers in the thread: the session's link at once, what the agent said when it is done. The
answer is owed in the database (``data/bot_replies``): the replica that took the mention posts it
when the prompt ends, or, if that replica is gone, any replica's automation tick does; once.

Only people who use Inspect (their GitHub login is an Inspect user's) get work done; anyone else is
told how to get access, and nothing starts. A pull request from a fork is worked on as a fork's code:
in a session with none of the repository's secrets that pushes nothing (``Session.fork_ref``); the
bot says so, and answers with what the agent found. Bots are not listened to (the App's own comments
included), and each delivery is handled once (``api/github.py``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlmodel import col, select

from inspect_app.control.automations import github_events
from inspect_app.control.data import bot_replies, prompts, repositories, users
from inspect_app.control.plane import ControlPlane
from inspect_app.db import session_scope
from inspect_app.errors import InspectError
from inspect_app.models import MessageStatus, Session
from inspect_app.scm.github_app import GitHubApp, inert_mentions

log = logging.getLogger(__name__)

POLL_S = 2.0
ANSWER_CHARS = 3000  # of the agent's answer, quoted back in the thread


class GitHubBot:
    def __init__(
        self, *, plane: ControlPlane, github: GitHubApp, slug: str, public_url: str, answer_timeout_s: float
    ) -> None:
        self._plane = plane
        self._github = github
        self._slug = slug
        self._public_url = public_url.rstrip("/")
        self._answer_timeout_s = answer_timeout_s

    async def handle(self, event: str, payload: dict[str, Any]) -> str:
        """What the bot did with a verified delivery: ignored | refused | started | continued."""
        found = github_events.mention(event, payload, self._slug)
        if found is None:
            return "ignored"
        owner, _, name = found.full_name.partition("/")
        repository = await asyncio.to_thread(repositories.by_github_name, self._plane.engine, found.full_name)
        if repository is None:
            return "ignored"  # not a repository of this installation's
        person = await asyncio.to_thread(users.by_github_login, self._plane.engine, found.login)
        if person is None:
            await self._say(
                owner,
                name,
                found.pull,
                f"@{found.login} I work for people who use Inspect here. Sign in at {self._public_url} "
                "with your GitHub account (or ask an admin to add you), then mention me again.",
            )
            return "refused"
        if not found.request:
            await self._say(
                owner, name, found.pull, f"@{found.login} Tell me what to change, e.g. “fix the failing test”."
            )
            return "refused"
        head = await asyncio.to_thread(self._github.pull_head, owner, name, found.pull)
        session_id = await asyncio.to_thread(self._session_of, repository.id or 0, found.pull)
        started = session_id is None
        if session_id is None:
            session = await self._plane.create_session(
                repository_id=repository.id or 0,
                creator_id=person.id or 0,
                # a fork's code is worked on from its base, untrusted; else commits go onto the
                # pull request's branch (fast-forward only)
                branch=head.base if head.fork else head.branch,
                work_branch=None if head.fork else head.branch,
                fork_pull=found.pull if head.fork else None,
                title=f"#{found.pull} {head.title}"[:300],
                source="github",
                source_ref={"repository": found.full_name, "pull": found.pull},
            )
            session_id = session.id
        content = (
            f"{found.request}\n\n(Asked by @{found.login} in pull request #{found.pull}, "
            f"“{head.title}”, whose branch is {head.branch}.)"
        )
        queued = await self._plane.submit_prompt(session_id=session_id, user=person, content=content, source="github")
        link = f"{self._public_url}/sessions/{session_id}"
        fork = (
            " This pull request comes from a fork: I work on its code without this repository's secrets, "
            "and I push nothing to it; I will answer here."
            if head.fork
            else ""
        )
        await self._say(owner, name, found.pull, f"On it, @{found.login}: {link}{fork}")
        owed = bot_replies.Owed(queued.message.id, session_id, found.full_name, found.pull)
        await asyncio.to_thread(bot_replies.owe, self._plane.engine, owed)
        # owned by the plane (cancelled when it closes), like its other background work
        self._plane.spawn_task(self._answer_when_done(owed))
        return "started" if started else "continued"

    async def _answer_when_done(self, owed: bot_replies.Owed) -> None:
        """Answer as soon as the prompt ends (the tick's ``answer_owed`` is the fallback: it answers
        when this replica has gone, or once this gives up after ``answer_timeout_s``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._answer_timeout_s
        while loop.time() < deadline:
            message = await asyncio.to_thread(prompts.get, self._plane.engine, owed.session_id, owed.message_id)
            if message.status not in bot_replies.OPEN:
                await self._answer(owed)
                return
            await asyncio.sleep(POLL_S)

    async def answer_owed(self) -> None:
        """Post every answer owed for a prompt that has ended (called by every replica's tick)."""
        for owed in await asyncio.to_thread(bot_replies.due, self._plane.engine):
            await self._answer(owed)

    async def _answer(self, owed: bot_replies.Owed) -> None:
        """Say in the thread what the agent answered (or why it failed), if nobody has yet."""
        engine = self._plane.engine
        if not await asyncio.to_thread(bot_replies.claim, engine, owed.message_id):
            return  # another replica (or this one's other path) answered
        message = await asyncio.to_thread(prompts.get, engine, owed.session_id, owed.message_id)
        link = f"{self._public_url}/sessions/{owed.session_id}"
        if message.status == MessageStatus.COMPLETED:
            answer = await asyncio.to_thread(self._plane.answer, owed.session_id, owed.message_id)
            body = f"{inert_mentions(answer[:ANSWER_CHARS]) or 'Done.'}\n\nThe session: {link}"
        else:
            body = f"That did not work: {message.error or message.status}.\n\nThe session: {link}"
        owner, _, name = owed.repository.partition("/")
        await self._say(owner, name, owed.pull, body)

    async def _say(self, owner: str, name: str, pull: int, body: str) -> None:
        try:
            await asyncio.to_thread(self._github.comment, owner, name, pull, body)
        except InspectError as exc:
            log.warning("could not comment on %s/%s#%d: %s", owner, name, pull, exc.message)

    def _session_of(self, repository_id: int, pull: int) -> str | None:
        """The session the bot started on this pull request before (the newest, not archived)."""
        with session_scope(self._plane.engine) as db:
            rows = db.exec(
                select(Session)
                .where(
                    Session.repository_id == repository_id, Session.source == "github", col(Session.archived).is_(False)
                )
                .order_by(col(Session.created_at).desc())
                .limit(200)
            ).all()
            return next((s.id for s in rows if (s.source_ref or {}).get("pull") == pull), None)

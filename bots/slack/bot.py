"""The Slack bot: a mention or a DM starts a session, thread replies steer it, the thread shows it.

Both connection modes (Events API over HTTP, Socket Mode) hand their payloads to ``SlackBot``,
which acknowledges nothing itself: the edges ack at once and call ``handle_event`` /
``handle_action`` in the background (Slack wants an answer within 3 s).

- each delivery once (``event_id`` recorded), the bot's own and other bots' messages ignored;
- which repository: ``routing.by_rules`` > the classifier > a picker in the thread;
- a "working on it" message per prompt, updated in place with status lines as tools run; then the
  answer, the PR/branch, and a context line (status · model · repository) with a View session link;
- replies in the thread become follow-up prompts of the same session, by the replying person.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Coroutine
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack import views
from bots.slack.classifier import Classifier
from bots.slack.routing import Candidate, Decision, by_rules
from inspect_app.control.automations.runner import Automations
from inspect_app.control.data import repositories, sessions, slack, webhooks
from inspect_app.control.event_data import CompleteData, StartedData, TextData, ToolCallData, data_of
from inspect_app.control.events import session_channel, tool_detail
from inspect_app.control.follow import Follower
from inspect_app.control.hub import Subscription
from inspect_app.control.plane import ControlPlane, artifacts
from inspect_app.errors import InspectError
from inspect_app.models import User

log = logging.getLogger(__name__)

UPDATE_EVERY_S = 1.5  # the progress message changes at most this often
WATCH_LIMIT_S = 4 * 3600
MENTION = re.compile(r"<@[A-Z0-9]+>")


def _tool_line(call: ToolCallData) -> str:
    icon = {"completed": ":white_check_mark:", "error": ":x:"}.get(call.status, ":gear:")
    return f"{icon} {call.tool or 'tool'} {tool_detail(call.args)[:80]}".rstrip()


class SlackBot:
    def __init__(
        self,
        *,
        client: AsyncWebClient,
        plane: ControlPlane,
        classifier: Classifier,
        public_url: str,
        automations: Automations | None = None,
    ) -> None:
        self.client = client
        self._automations = automations  # watched channels start runs (``control/automations``)
        self._plane = plane
        self._classifier = classifier
        self._public_url = public_url.rstrip("/")
        self._tasks: set[asyncio.Task[Any]] = set()
        self.bot_user_id = ""

    @property
    def _engine(self) -> Any:
        return self._plane.engine

    async def start(self) -> None:
        """Learn our own user id (to ignore our messages and strip our mention). Raises when Slack
        cannot be reached or refuses the token: the caller retries (``integrations.keep_trying``)."""
        try:
            self.bot_user_id = str((await self.client.auth_test(timeout=10))["user_id"])
        except SlackApiError as exc:
            raise RuntimeError(f"Slack refused auth.test: {exc.response.get('error')}") from None

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("Slack task failed", exc_info=task.exception())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- events ----------------------------------------------------------------------------------
    async def handle_event(self, envelope: dict[str, Any]) -> None:
        event = envelope.get("event") or {}
        event_id = str(envelope.get("event_id") or "")
        kind = event.get("type")
        if (
            not event_id
            or kind not in ("app_mention", "message")
            or event.get("bot_id")
            or event.get("subtype")
            or not event.get("user")
            or event.get("user") == self.bot_user_id
        ):
            return  # bots (us included), edits, joins, other events: not requests
        channel, text = str(event.get("channel", "")), str(event.get("text", ""))
        thread_ts = str(event.get("thread_ts") or event.get("ts") or "")
        # a plain channel message counts only as a reply in a session's thread (a mention there comes
        # as app_mention too); decided before any database work: the bot hears every message
        in_channel = kind == "message" and event.get("channel_type") != "im"
        mentioned = bool(self.bot_user_id) and f"<@{self.bot_user_id}>" in text
        if in_channel and not event.get("thread_ts") and not mentioned and self._automations is not None:
            # a person's message in a channel: an automation may watch it (each event claimed once)
            await self._automations.slack_message(
                channel=channel, text=text, user=str(event["user"]), ts=str(event.get("ts", "")), event_id=event_id
            )
            return
        if in_channel and (not event.get("thread_ts") or mentioned):
            return
        if not await asyncio.to_thread(webhooks.first_delivery, self._engine, f"slack:{event_id}", "slack"):
            return  # a retry of something handled already
        existing = await asyncio.to_thread(slack.thread_session, self._engine, channel, thread_ts)
        if in_channel and existing is None:
            return
        request = MENTION.sub("", text).strip()
        if not request:
            await self._say(channel, thread_ts, "Tell me what to change, e.g. “fix the typo on the pricing page”.")
            return
        try:
            await self._route(envelope, event, channel, thread_ts, request, existing)
        except InspectError as exc:
            await self._post(channel, thread_ts, f"Could not do that: {exc.message}", views.error(exc.message))

    async def _route(
        self, envelope: dict, event: dict, channel: str, thread_ts: str, request: str, existing: str | None
    ) -> None:
        person = await self._person(str(event["user"]))
        if existing:
            await self._prompt(existing, person, request, channel, thread_ts)
            return
        candidates = await asyncio.to_thread(self._candidates)
        if not candidates:
            message = "No repositories are set up yet: add one in Inspect's Settings."
            await self._post(channel, thread_ts, message, views.error(message))
            return
        linked = await asyncio.to_thread(slack.channel_repository, self._engine, channel)
        decision = by_rules(request, candidates, linked) or await self._classify(
            channel, thread_ts, request, candidates
        )
        if decision.repository_id is None:
            by_id = {c.id: c for c in candidates}
            guesses = [views.Choice(i, by_id[i].name) for i in decision.guesses if i in by_id]
            everything = [views.Choice(c.id, c.name) for c in candidates]
            await self._post(channel, thread_ts, "Which repository?", views.picker(guesses, everything))
            return
        await self._start(envelope.get("team_id", ""), channel, thread_ts, person, decision.repository_id, request)

    async def _classify(self, channel: str, thread_ts: str, request: str, candidates: list[Candidate]) -> Decision:
        name, thread = channel, []
        with contextlib.suppress(SlackApiError):
            name = str((await self.client.conversations_info(channel=channel))["channel"].get("name", channel))
        with contextlib.suppress(SlackApiError):
            replies = await self.client.conversations_replies(channel=channel, ts=thread_ts, limit=20)
            messages: list[dict[str, Any]] = replies.get("messages", [])
            thread = [str(m.get("text", "")) for m in messages][:-1]
        return await self._classifier.classify(message=request, thread=thread, channel=name, candidates=candidates)

    def _candidates(self) -> list[Candidate]:
        return [
            Candidate(id=r.id or 0, name=r.name, description=r.description, keywords=tuple(r.keywords or ()))
            for r in repositories.list_all(self._engine)
        ]

    # --- actions (the picker) ------------------------------------------------------------------
    async def handle_action(self, payload: dict[str, Any]) -> None:
        action: dict[str, Any] = next(iter(payload.get("actions") or []), {})
        action_id = str(action.get("action_id", ""))
        if not action_id.startswith(views.PICK_ACTION):
            return  # e.g. the View session link button
        value = action.get("value") or (action.get("selected_option") or {}).get("value") or ""
        channel = str((payload.get("channel") or {}).get("id") or (payload.get("container") or {}).get("channel_id"))
        message = payload.get("message") or {}
        thread_ts = str(message.get("thread_ts") or (payload.get("container") or {}).get("thread_ts") or "")
        if not value.isdigit() or not channel or not thread_ts:
            return
        if await asyncio.to_thread(slack.thread_session, self._engine, channel, thread_ts):
            return  # someone chose already
        replies = await self.client.conversations_replies(channel=channel, ts=thread_ts, limit=1)
        root = (replies.get("messages") or [{}])[0]
        request = MENTION.sub("", str(root.get("text", ""))).strip()
        person = await self._person(str((payload.get("user") or {}).get("id", "")))
        with contextlib.suppress(SlackApiError):  # the picker has done its job
            await self.client.chat_update(
                channel=channel, ts=str(message.get("ts", "")), text="Repository chosen", blocks=[]
            )
        try:
            await self._start(
                str((payload.get("team") or {}).get("id", "")), channel, thread_ts, person, int(value), request
            )
        except InspectError as exc:
            await self._post(channel, thread_ts, f"Could not do that: {exc.message}", views.error(exc.message))

    # --- sessions and prompts ------------------------------------------------------------------
    async def _person(self, slack_user: str) -> User:
        email, name = "", slack_user
        try:
            profile = (await self.client.users_info(user=slack_user))["user"]
            details = profile.get("profile", {})
            email = str(details.get("email") or "")
            name = str(details.get("display_name") or details.get("real_name") or profile.get("name") or slack_user)
        except SlackApiError as exc:
            log.warning("users.info %s: %s", slack_user, exc.response.get("error"))
        return await asyncio.to_thread(slack.person, self._engine, email=email, name=name)

    async def _start(self, team: str, channel: str, thread_ts: str, person: User, repo_id: int, request: str) -> None:
        permalink = ""
        with contextlib.suppress(SlackApiError):
            permalink = str((await self.client.chat_getPermalink(channel=channel, message_ts=thread_ts))["permalink"])
        session = await self._plane.create_session(
            repository_id=repo_id,
            creator_id=person.id or 0,
            source="slack",
            source_ref={"channel": channel, "thread_ts": thread_ts, "team": team, "permalink": permalink},
        )
        await asyncio.to_thread(
            slack.link_thread, self._engine, team=team, channel=channel, thread_ts=thread_ts, session_id=session.id
        )
        await self._prompt(session.id, person, request, channel, thread_ts)

    async def _prompt(self, session_id: str, person: User, request: str, channel: str, thread_ts: str) -> None:
        # subscribed before the prompt exists: the hub replays nothing, and a warm sandbox can finish
        # a short prompt before a Slack round trip is over
        subscription = await self._plane.hub.subscribe(session_channel(session_id))
        try:
            session = await asyncio.to_thread(sessions.get, self._engine, session_id)
            follower = Follower(self._plane.events, session_id, session.last_rev)  # catches up if it falls behind
            queued = await self._plane.submit_prompt(
                session_id=session_id, user=person, content=request, source="slack"
            )
            repo = await asyncio.to_thread(self._repository_name, session_id)
            url = f"{self._public_url}/sessions/{session_id}"
            status = ["Queued behind the running prompt…"] if queued.position > 0 else []
            posted = await self._post(channel, thread_ts, f"Working on it in {repo}", views.working(repo, url, status))
        except BaseException:
            subscription.close()
            raise
        self.spawn(self._watch(subscription, follower, queued.message.id, channel, thread_ts, posted, repo))

    def _repository_name(self, session_id: str) -> str:
        session = sessions.get(self._engine, session_id)
        return repositories.get(self._engine, session.repository_id).name

    async def _watch(
        self,
        subscription: Subscription,
        follower: Follower,
        message_id: str,
        channel: str,
        thread_ts: str,
        working_ts: str,
        repo: str,
    ) -> None:
        """Follow one prompt on the hub: progress into the working message, then the result."""
        session_id = follower.session_id
        url = f"{self._public_url}/sessions/{session_id}"
        lines: dict[str, str] = {}
        shown, last_update, deadline = "", 0.0, time.monotonic() + WATCH_LIMIT_S
        try:
            while time.monotonic() < deadline:
                taken = await follower.take(subscription, 1.0)
                if taken is None:
                    return
                for event in taken.events:
                    if event.get("message_id") != message_id:
                        continue
                    match data_of(event):
                        case ToolCallData() as call:
                            lines[call.call_id] = _tool_line(call)
                        case StartedData():
                            lines.setdefault("_started", ":arrow_forward: Started")
                        case CompleteData() as end:
                            done = (channel, thread_ts, working_ts, repo, list(lines.values()))
                            await self._finish(session_id, message_id, end, *done)
                            return
                text = "\n".join(lines.values())
                if working_ts and text != shown and time.monotonic() - last_update >= UPDATE_EVERY_S:
                    shown, last_update = text, time.monotonic()
                    with contextlib.suppress(SlackApiError):
                        await self.client.chat_update(
                            channel=channel,
                            ts=working_ts,
                            text=f"Working on it in {repo}",
                            blocks=views.working(repo, url, list(lines.values())),
                        )
        finally:
            subscription.close()

    async def _finish(
        self,
        session_id: str,
        message_id: str,
        end: CompleteData,
        channel: str,
        thread_ts: str,
        working_ts: str,
        repo: str,
        lines: list[str],
    ) -> None:
        rows = await asyncio.to_thread(self._plane.events.answers, session_id, [message_id])
        answer = TextData.model_validate(rows[0].data).text if rows else ""
        found = await asyncio.to_thread(artifacts, self._engine, session_id)
        # this prompt's screenshots, with the session's pull request or branch
        found = [a for a in found if a["kind"] != "screenshot" or a["meta"].get("message_id") == message_id]
        session = await asyncio.to_thread(sessions.get, self._engine, session_id)
        success = end.success
        url = f"{self._public_url}/sessions/{session_id}"
        if working_ts:
            done = ":white_check_mark: Done" if success else ":x: Stopped"
            with contextlib.suppress(SlackApiError):
                await self.client.chat_update(
                    channel=channel, ts=working_ts, text=done, blocks=views.working(repo, url, [*lines, done])
                )
        blocks = views.finished(
            answer=answer,
            success=success,
            error=end.error or "",
            artifacts=found,
            session_url=url,
            model=session.model,
            repository=repo,
        )
        await self._post(channel, thread_ts, views.trim(answer, 300) or ("Done" if success else "Failed"), blocks)

    # --- Slack calls -----------------------------------------------------------------------------
    async def _post(self, channel: str, thread_ts: str, text: str, blocks: list[dict[str, Any]]) -> str:
        try:
            response = await self.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=text, blocks=blocks
            )
        except SlackApiError as exc:
            images = [b for b in blocks if b.get("type") == "image"]
            if exc.response.get("error") == "invalid_blocks" and images:
                # Slack fetches an image as it posts, and refuses the whole message when it cannot
                # (a public URL it cannot reach): the answer goes without its screenshots
                log.warning(
                    "Slack could not show the screenshots (%s); posting without them", exc.response.get("error")
                )
                return await self._post(channel, thread_ts, text, [b for b in blocks if b not in images])
            log.error("chat.postMessage to %s failed: %s", channel, exc.response.get("error"))
            return ""
        return str(response.get("ts", ""))

    async def _say(self, channel: str, thread_ts: str, text: str) -> None:
        await self._post(channel, thread_ts, text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}])

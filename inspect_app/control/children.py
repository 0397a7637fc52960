"""Child sessions: a session's agent starts others (research across repositories, many small pull
requests from one big task) with its tools, follows them, prompts and cancels them.

A child is an ordinary session with ``parent_id``, created for the person whose prompt was running
in the parent when it was spawned (its commits and pull requests are theirs). The rules
(``refusal``, pure) hold wherever a child is asked for:

- one level: a child cannot spawn;
- at most MAX_CHILDREN per parent;
- the parent's own repository, or one its repository allows (``Repository.child_repositories``,
  set by an admin: a child can print its repository's secrets into its answer, which the parent's
  agent reads, and with it whoever steers that agent);
- never from a fork's session (``fork_ref``): its children would hold the secrets it may not.

The parent's timeline holds one ``child`` event per child, upserted whenever the child changes
(spawned, prompted, its prompt ended, a pull request recorded), so every client shows a live card.
Stopping or archiving the parent stops its children.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict

import sqlalchemy as sa

from inspect_app.control.data import children as data
from inspect_app.control.data import prompts, repositories
from inspect_app.control.data import sessions as sessions_ctl
from inspect_app.control.event_data import ChildData
from inspect_app.control.plane import ControlPlane
from inspect_app.errors import Conflict, Forbidden, InspectError, NotFound
from inspect_app.models import Repository, Session, User

MAX_CHILDREN = 10
REMEMBERED = 10_000  # sessions whose parent (or none) is kept in memory


def refusal(parent: Session, parent_repo: Repository, target_id: int, children: int) -> str | None:
    """Why ``parent`` may not spawn a child on repository ``target_id``, or None when it may."""
    if parent.parent_id is not None:
        return "a child session cannot start sessions of its own (one level only)"
    if parent.fork_ref:
        return "a session on a fork's code cannot start sessions (they would have the secrets it has not)"
    if children >= MAX_CHILDREN:
        return f"this session has started {children} sessions already (at most {MAX_CHILDREN})"
    if target_id != parent_repo.id and target_id not in (parent_repo.child_repositories or []):
        return (
            f"{parent_repo.name} does not allow its sessions to start sessions on that repository "
            "(an admin can allow it in the repository's settings: child repositories)"
        )
    return None


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0][:80] if lines else ""


class Children:
    def __init__(self, plane: ControlPlane, *, public_url: str) -> None:
        self._plane = plane
        self._public_url = public_url.rstrip("/")
        # a session's parent never changes: remembered, for the most recently asked sessions
        self._parent_of: OrderedDict[str, str | None] = OrderedDict()
        plane.watch(self._changed)

    @property
    def _engine(self) -> sa.Engine:
        return self._plane.engine

    def link(self, session_id: str) -> str:
        return f"{self._public_url}/sessions/{session_id}"

    async def spawn(
        self,
        parent_id: str,
        *,
        repository: str,
        prompt: str,
        branch: str | None = None,
        model: str = "",
        title: str = "",
    ) -> data.ChildRow:
        """Start a child on ``repository`` (its name, e.g. ``acme/widgets``, or its id) with ``prompt``."""
        parent = await asyncio.to_thread(sessions_ctl.get, self._engine, parent_id)
        parent_repo = await asyncio.to_thread(repositories.get, self._engine, parent.repository_id)
        target = await asyncio.to_thread(self._repository, repository)
        count = await asyncio.to_thread(data.count, self._engine, parent_id)
        why = refusal(parent, parent_repo, target.id or 0, count)
        if why is not None:
            raise Forbidden(why, code="child_refused")
        person = await self._acting(parent)
        child = await self._plane.create_session(
            repository_id=target.id or 0,
            creator_id=person.id or 0,
            branch=branch or None,
            model=model,
            title=title or _first_line(prompt),
            source="child",
            source_ref={"parent": parent_id},
            parent_id=parent_id,
        )
        self._remember(child.id, parent_id)
        await self._plane.submit_prompt(session_id=child.id, user=person, content=prompt, source="child")
        return await self._announce(child.id)

    async def status(self, parent_id: str, child_id: str) -> tuple[data.ChildRow, str]:
        """The child as the parent sees it, and what its newest prompt answered ("" while working)."""
        found = await self._own(parent_id, child_id)
        answer = ""
        if found.status == "done":
            answer = await asyncio.to_thread(self._plane.answer, child_id, found.prompt_id)
        elif found.status in ("failed", "stopped"):
            message = await asyncio.to_thread(prompts.get, self._engine, child_id, found.prompt_id)
            answer = message.error
        return found, answer

    async def send(self, parent_id: str, child_id: str, prompt: str) -> data.ChildRow:
        """Queue another prompt in the child, as the person the parent works for now."""
        await self._own(parent_id, child_id)
        parent = await asyncio.to_thread(sessions_ctl.get, self._engine, parent_id)
        person = await self._acting(parent)
        await self._plane.submit_prompt(session_id=child_id, user=person, content=prompt, source="child")
        return await self._announce(child_id)

    async def cancel(self, parent_id: str, child_id: str, user: User | None = None) -> data.ChildRow:
        """Stop what the child is doing: its waiting prompts are cancelled, the running one stopped."""
        await self._own(parent_id, child_id)
        if user is None:
            user = await self._acting(await asyncio.to_thread(sessions_ctl.get, self._engine, parent_id))
        for queued in await asyncio.to_thread(prompts.queue, self._engine, child_id):
            with contextlib.suppress(InspectError):  # started or ended meanwhile
                await self._plane.cancel_prompt(session_id=child_id, message_id=queued.id, user=user)
        with contextlib.suppress(Conflict):  # nothing running
            await self._plane.stop(session_id=child_id, user=user)
        return await self._announce(child_id)

    async def stop_parent(self, parent_id: str, user: User) -> None:
        """Stop a session's running prompt, and its children's work (Conflict when neither runs)."""
        try:
            await self._plane.stop(session_id=parent_id, user=user)
        except Conflict:
            if not await self._any_working(parent_id):
                raise
        await self.stop_all(parent_id, user)

    async def _any_working(self, parent_id: str) -> bool:
        return any(row.status == "working" for row in await self.listing(parent_id))

    async def set_archived(self, session_id: str, archived: bool, user: User) -> Session:
        """Archive (or bring back) a session; archiving stops its children's work."""
        session = await asyncio.to_thread(sessions_ctl.set_archived, self._engine, session_id, archived)
        if archived:
            await self.stop_all(session_id, user)
        return session

    async def stop_all(self, parent_id: str, user: User) -> None:
        """The parent stopped or was archived: so are its children's prompts."""
        for child_id in await asyncio.to_thread(data.ids, self._engine, parent_id):
            await self.cancel(parent_id, child_id, user)

    async def listing(self, parent_id: str) -> list[data.ChildRow]:
        rows = []
        for child_id in await asyncio.to_thread(data.ids, self._engine, parent_id):
            found = await asyncio.to_thread(data.row, self._engine, child_id)
            if found is not None:
                rows.append(found)
        return rows

    # --- helpers -------------------------------------------------------------------------------------
    def _repository(self, name: str) -> Repository:
        if name.strip().isdigit():
            return repositories.get(self._engine, int(name))
        for repo in repositories.list_all(self._engine):
            if repo.name.lower() == name.strip().lower():
                return repo
        raise NotFound(f"no repository named {name!r}; the repositories are listed in Inspect")

    async def _acting(self, parent: Session) -> User:
        """The person whose prompt runs in the parent now (else the parent's creator)."""
        running = await asyncio.to_thread(prompts.processing, self._engine, parent.id)
        return await self._plane.person(running.author_id if running else parent.creator_id)

    async def _own(self, parent_id: str, child_id: str) -> data.ChildRow:
        found = await asyncio.to_thread(data.row, self._engine, child_id)
        if found is None or await self._parent(child_id) != parent_id:
            raise NotFound(f"session {child_id} is not a session this one started")
        return found

    async def _parent(self, session_id: str) -> str | None:
        if session_id in self._parent_of:
            self._parent_of.move_to_end(session_id)
            return self._parent_of[session_id]
        try:
            session = await asyncio.to_thread(sessions_ctl.get, self._engine, session_id)
        except NotFound:
            return None
        self._remember(session_id, session.parent_id)
        return session.parent_id

    def _remember(self, session_id: str, parent_id: str | None) -> None:
        self._parent_of[session_id] = parent_id
        if len(self._parent_of) > REMEMBERED:
            self._parent_of.popitem(last=False)

    async def _changed(self, session_id: str) -> None:
        if await self._parent(session_id) is not None:
            await self._announce(session_id)

    async def _announce(self, child_id: str) -> data.ChildRow:
        """Upsert the child's card in its parent's timeline."""
        found = await asyncio.to_thread(data.row, self._engine, child_id)
        parent_id = await self._parent(child_id)
        if found is None or parent_id is None:
            raise NotFound(f"no child session {child_id}")
        card = ChildData(
            child_id=found.id, title=found.title, repository=found.repository, status=found.status, pr_url=found.pr_url
        )
        await self._plane.events.append(parent_id, "child", card.stored(), key=f"child:{child_id}", mode="upsert")
        return found

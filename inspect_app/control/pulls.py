"""Pull requests: push the session branch through the sandbox, then open the PR as the prompting person.

The flow behind the agent's ``create-pull-request`` tool (ARCHITECTURE §5):

1. the sandbox is told to push the session branch (``push`` over the bridge; git asks the control
   plane for credentials through its credential helper, see ``credentials_for``);
2. GitHub repositories: the PR is opened with the prompting user's OAuth token, so nobody approves
   their own agent's work; without one (or when it is refused) the App opens it; when neither can,
   a ``branch`` artifact with a compare URL is recorded instead. Asking again updates the same PR;
3. local repositories: the branch is pushed to the local remote; the artifact is the branch;
4. a session working on an existing pull request (the GitHub bot's, an automation's on a failed
   check) pushes onto that pull request's branch, fast-forward only, and opens nothing.

The artifact is stored (one ``pr`` row per session, updated in place) and announced as an event,
so every client shows it live.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlparse

import sqlalchemy as sa
from sqlmodel import col, select

from inspect_app.control import screenshots
from inspect_app.control.crypto import Cipher
from inspect_app.control.data import auth, prompts, pushes, repositories
from inspect_app.control.data import sessions as sessions_ctl
from inspect_app.control.data.sandboxes import ToolCaller
from inspect_app.control.event_data import ArtifactData
from inspect_app.control.links import NotLinked, push_reply
from inspect_app.control.plane import ControlPlane
from inspect_app.db import session_scope
from inspect_app.errors import Conflict, Forbidden, InspectError, NotFound
from inspect_app.models import Artifact, Repository, Session, User, utcnow
from inspect_app.scm.github_app import GitHubApp, GitHubError, PullRequestInfo
from sandbox.protocol import PushCommand
from sandbox.providers.base import ProviderError

log = logging.getLogger(__name__)

PUSH_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class PullResult:
    kind: str  # pr | branch
    url: str
    state: str
    opened_as: str  # user | app | "" (no pull request)
    message: str  # what the agent is told


@dataclass(frozen=True)
class GitCredentials:
    username: str
    password: str
    expires_at: datetime


class Pulls:
    def __init__(
        self,
        *,
        plane: ControlPlane,
        cipher: Cipher,
        github: GitHubApp | None,
        web_url: str,
        git_relay_host: str | None = None,
    ) -> None:
        self._plane = plane
        self._cipher = cipher
        self._github = github
        self._web = web_url.rstrip("/")
        # A sandbox on its own network reaches a plain-http git host at its relay port, which leads to
        # that host and nowhere else: credentials asked for there go to the same place.
        self._git_hosts = {(urlparse(self._web).netloc or "").lower(), *([git_relay_host] if git_relay_host else [])}

    @property
    def _engine(self) -> sa.Engine:
        return self._plane.engine

    # --- git credentials for a sandbox -----------------------------------------------------------
    async def credentials_for(self, caller: ToolCaller, *, host: str, path: str) -> GitCredentials:
        """A short-lived installation token for the caller's own GitHub repository, nothing else; one
        that can only read it for a session running a fork's code (it clones, it cannot push)."""
        repo = await asyncio.to_thread(repositories.get, self._engine, caller.repository_id)
        if repo.kind != "github" or self._github is None:
            raise NotFound("this repository needs no credentials from Inspect")
        if host.lower() not in self._git_hosts:
            raise Forbidden(f"credentials are only given for {urlparse(self._web).netloc}")
        wanted = path.strip("/").removesuffix(".git").lower()
        if path and wanted != f"{repo.github_owner}/{repo.github_name}".lower():
            raise Forbidden("credentials are only given for the session's repository")
        fork = caller.session_id is not None and bool(
            (await asyncio.to_thread(sessions_ctl.get, self._engine, caller.session_id)).fork_ref
        )
        token, expires = await asyncio.to_thread(
            functools.partial(self._github.installation_token, read_only=fork),
            repo.github_owner or "",
            repo.github_name or "",
        )
        return GitCredentials(username="x-access-token", password=token, expires_at=expires)

    # --- push and pull request -------------------------------------------------------------------
    async def create(self, session_id: str, *, title: str, body: str, draft: bool) -> PullResult:
        session = await asyncio.to_thread(sessions_ctl.get, self._engine, session_id)
        if session.fork_ref:
            raise Forbidden(
                "this session runs the code of a pull request from a fork: nothing it makes is pushed "
                "(it has no secrets and a read-only token); say what to change instead",
                code="fork_session",
            )
        repo = await asyncio.to_thread(repositories.get, self._engine, session.repository_id)
        running = await asyncio.to_thread(prompts.processing, self._engine, session.id)
        author = await self._plane.person(running.author_id if running else session.creator_id)
        pull = (session.source_ref or {}).get("pull")
        if repo.kind == "github" and isinstance(pull, int) and session.branch == session.base_branch:
            result, meta = await self._onto_pull(session, repo, pull)  # work on an existing pull request
            await self._record(session.id, result, meta)
            return result
        commit = await self._push(session, session.branch)
        if repo.kind != "github":
            try:  # the sandbox may not write the person's repository: it bundled the branch for us
                await self._plane.lifecycle.provider.deliver_branch(session.id, session.branch, repo.url)
            except ProviderError as exc:
                raise Conflict(f"git push failed: {exc}", code="push_failed") from None
            result = PullResult(
                kind="branch",
                url="",
                state="pushed",
                opened_as="",
                message=f"Pushed {session.branch} ({commit[:10]}) to the repository. It is a local repository, "
                "so there is no pull request; the session page shows the changes.",
            )
            meta = {"branch": session.branch, "base": session.base_branch, "commit": commit}
        else:
            shots = await asyncio.to_thread(screenshots.of_session, self._engine, session.id)
            body = "\n\n".join(part for part in (body.rstrip(), screenshots.markdown(shots)) if part)
            result, meta = await self._open_on_github(session, repo, author, title, body, draft)
            meta["commit"] = commit
        await self._record(session.id, result, meta)
        return result

    async def _onto_pull(self, session: Session, repo: Repository, pull: int) -> tuple[PullResult, dict[str, Any]]:
        """Push onto the pull request's own branch: a fast-forward only (git refuses anything else,
        so nobody's commits are lost). Where that is refused (a protected branch, or one that moved
        on meanwhile) the work goes to a branch of the session's own, with a link to compare it. The
        pull request itself is left as its author wrote it."""
        owner, name, branch = repo.github_owner or "", repo.github_name or "", session.branch
        try:
            commit = await self._push(session, branch)
        except Conflict as exc:
            if exc.code != "push_failed":
                raise
            fallback = sessions_ctl.work_branch_for(session.id)
            commit = await self._push(session, fallback)
            compare = f"{self._web}/{owner}/{name}/compare/{quote(branch)}...{quote(fallback)}?expand=1"
            message = (
                f"Could not push onto {branch}, the branch of pull request #{pull} ({exc.message}); pushed "
                f"{fallback} instead. Compare it with the pull request's branch here: {compare}"
            )
            result = PullResult(kind="branch", url=compare, state="pushed", opened_as="", message=message)
            return result, {"branch": fallback, "base": branch, "commit": commit}
        url = f"{self._web}/{owner}/{name}/pull/{pull}"
        message = f"Pushed {commit[:10]} onto {branch}, the branch of pull request #{pull}: {url}"
        result = PullResult(kind="pr", url=url, state="open", opened_as="", message=message)
        return result, {"number": pull, "commit": commit, "pushed_onto": branch}

    async def _push(self, session: Session, branch: str) -> str:
        """Have the sandbox push HEAD to ``branch``; the commit, remembered as Inspect's own."""
        session_id = session.id
        if await self._plane.links.reach(session_id) is None:  # this replica's, or through the one serving it
            raise Conflict("the sandbox is not connected; try again in a moment", code="sandbox_not_ready")
        try:
            ok, detail = await self._plane.links.request(
                session_id, PushCommand(branch=branch), reply=push_reply(branch), timeout=PUSH_TIMEOUT_S
            )
        except NotLinked:
            raise Conflict("the sandbox did not take the push command", code="sandbox_not_ready") from None
        except TimeoutError:
            raise InspectError(f"the push of {branch} did not finish within {PUSH_TIMEOUT_S:.0f}s") from None
        if not ok:
            raise Conflict(f"git push failed: {detail}", code="push_failed")
        await asyncio.to_thread(pushes.record, self._engine, session.repository_id, str(detail), session_id)
        return str(detail)

    async def _open_on_github(
        self, session: Session, repo: Repository, author: User, title: str, body: str, draft: bool
    ) -> tuple[PullResult, dict[str, Any]]:
        owner, name = repo.github_owner or "", repo.github_name or ""
        request = {
            "owner": owner,
            "name": name,
            "base": session.base_branch,
            "head": session.branch,
            "title": title,
            "body": _with_footer(body, author),
            "draft": draft,
            "number": await asyncio.to_thread(_pr_number, self._engine, session.id),
        }
        # the person's own token first (nobody approves their own agent's work), then the App's
        attempts: list[tuple[str, Callable[..., PullRequestInfo]]] = []
        problems: list[str] = []
        if self._github is None:
            problems.append("no GitHub App is configured")
        else:
            user_token = await asyncio.to_thread(auth.github_token, self._engine, self._cipher, author.id or 0)
            if user_token:
                attempts.append(("user", functools.partial(self._github.open_or_update_pull, user_token)))
            attempts.append(("app", self._github.installation_pull))
        for opened_as, open_pull in attempts:
            try:
                pr = await asyncio.to_thread(open_pull, **request)
            except GitHubError as exc:
                problems.append(f"as {opened_as}: {exc.message}")
                log.warning("pull request for session %s %s", session.id, exc.message)
                continue
            return _pr_result(pr, opened_as), {"number": pr.number, "opened_as": opened_as, "draft": pr.draft}
        compare = f"{self._web}/{owner}/{name}/compare/{quote(session.base_branch)}...{quote(session.branch)}?expand=1"
        message = (
            f"Pushed {session.branch}, but no pull request could be opened ({'; '.join(problems)}). "
            f"Open it here: {compare}"
        )
        return PullResult(kind="branch", url=compare, state="pushed", opened_as="", message=message), {
            "branch": session.branch,
            "base": session.base_branch,
        }

    async def _record(self, session_id: str, result: PullResult, meta: dict[str, Any]) -> None:
        data = await asyncio.to_thread(_store_artifact, self._engine, session_id, result, meta)
        await self._plane.emit(session_id, "artifact", ArtifactData.model_validate(data))
        await self._plane.changed(session_id)


def _pr_result(pr: PullRequestInfo, opened_as: str) -> PullResult:
    who = "as the person who asked" if opened_as == "user" else "as the Inspect GitHub App"
    return PullResult(
        kind="pr",
        url=pr.url,
        state=pr.state,
        opened_as=opened_as,
        message=f"Pull request #{pr.number} is {pr.state} ({who}): {pr.url}",
    )


def _with_footer(body: str, author: User) -> str:
    return f"{body.rstrip()}\n\n---\nOpened by Inspect for {author.name}.".lstrip()


def _pr_number(engine: sa.Engine, session_id: str) -> int | None:
    with session_scope(engine) as db:
        row = db.exec(
            select(Artifact)
            .where(Artifact.session_id == session_id, Artifact.type == "pr")
            .order_by(col(Artifact.id).desc())
            .limit(1)
        ).first()
        number = row.meta.get("number") if row is not None else None
        return int(number) if number else None


def _store_artifact(engine: sa.Engine, session_id: str, result: PullResult, meta: dict[str, Any]) -> dict[str, Any]:
    """One artifact per session and kind, updated in place (asking again updates the same PR)."""
    with session_scope(engine) as db:
        row = db.exec(select(Artifact).where(Artifact.session_id == session_id, Artifact.type == result.kind)).first()
        if row is None:
            row = Artifact(session_id=session_id, type=result.kind)
            db.add(row)
        row.url, row.state, row.meta, row.updated_at = result.url, result.state, meta, utcnow()
        return {"kind": result.kind, "url": result.url, "state": result.state, "meta": meta}

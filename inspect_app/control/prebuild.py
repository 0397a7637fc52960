"""Prebuilt images: per repository, rebuilt when its branch tip moves, so sessions skip setup.sh.

``Prebuilder.run_all`` (every 30 minutes by default, see ``PrebuildScheduler``) builds, for each
repository with prebuild on, an image of its default branch when there is no ready image or the
branch tip moved since; ``build(repo_id, force=True)`` is Settings' "Rebuild now".

- One build per repository at a time, across workers: a database lease per repository. A second
  worker (or a second click) finds the lease taken and skips; it never waits.
- Sessions never wait for a build: the spawn decision only uses *ready* images.
- A build is an image row (``building`` → ``ready`` | ``failed``, with the commit, the runtime
  version, the duration and the setup log's tail, shown in Settings).
- After a successful build the repository's older images are deleted (the newest ready one stays);
  ``cleanup`` deletes snapshots no session points to any more.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col, select

from inspect_app.control import tokens
from inspect_app.control.data import leases, repositories, roles
from inspect_app.control.lifecycle import image_usable, newest_ready_image
from inspect_app.db import session_scope
from inspect_app.errors import InspectError, NotFound
from inspect_app.models import Image, ImageStatus, Repository, Sandbox, Session, utcnow
from inspect_app.scm import local_git
from inspect_app.scm.github_app import GitHubApp, GitHubError
from sandbox.providers.base import ProviderError, SandboxProvider, SandboxSpec

if TYPE_CHECKING:
    from inspect_app.metrics import Metrics

log = logging.getLogger(__name__)

LOG_TAIL_CHARS = 4000


@dataclass(frozen=True)
class BuildOutcome:
    repository_id: int
    status: str  # built | skipped | busy | failed
    image_id: int | None = None
    detail: str = ""


class Prebuilder:
    def __init__(
        self,
        *,
        engine: sa.Engine,
        provider: SandboxProvider,
        github: GitHubApp | None,
        holder: str,
        api_url: str,
        build_timeout_s: float = 1800.0,
        setup_timeout_s: float = 600.0,
        on_image: Callable[[int], Awaitable[None]] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._engine = engine
        self._metrics = metrics
        self._provider = provider
        self._github = github
        self._holder = holder  # this worker's name in the leases
        self._api_url = api_url
        self._build_timeout_s = build_timeout_s
        self._setup_timeout_s = setup_timeout_s
        self._on_image = on_image  # after each build or check: warm the pool of the newest ready image

    # --- the scheduled run ---------------------------------------------------------------------
    async def run_all(self) -> list[BuildOutcome]:
        """Build what is out of date, one repository after the other."""
        repo_ids = await asyncio.to_thread(self._prebuild_repositories)
        outcomes = [await self.build(repo_id) for repo_id in repo_ids]
        await self.cleanup()
        return outcomes

    def _prebuild_repositories(self) -> list[int]:
        with session_scope(self._engine) as db:
            return [r.id or 0 for r in db.exec(select(Repository).where(Repository.prebuild == sa.true())).all()]

    async def build(self, repository_id: int, *, force: bool = False) -> BuildOutcome:
        lease = f"prebuild:{repository_id}"
        if not await asyncio.to_thread(leases.acquire, self._engine, lease, self._holder, self._build_timeout_s + 120):
            return BuildOutcome(repository_id, "busy", detail="a build of this repository is already running")
        try:
            outcome = await self._build(repository_id, force=force)
            if outcome.status in ("built", "failed") and outcome.image_id is not None:
                await self._drop_older(outcome)
        finally:
            await asyncio.to_thread(leases.release, self._engine, lease, self._holder)
        if self._on_image is not None and outcome.status != "busy":
            await self._on_image(repository_id)
        return outcome

    async def _build(self, repository_id: int, *, force: bool) -> BuildOutcome:
        try:
            repo = await asyncio.to_thread(repositories.get, self._engine, repository_id)
        except NotFound:
            return BuildOutcome(repository_id, "failed", detail=f"no repository {repository_id}")
        try:
            tip = await asyncio.to_thread(self._branch_tip, repo)
        except InspectError as exc:
            image_id = await asyncio.to_thread(self._record_failure, repo, exc.message)
            return BuildOutcome(repository_id, "failed", image_id, exc.message)
        newest = await asyncio.to_thread(self.newest_ready, repository_id, repo.default_branch)
        if not force and image_usable(newest) and newest.commit_sha == tip:
            return BuildOutcome(repository_id, "skipped", newest.id, f"{repo.default_branch} is still at {tip[:10]}")
        image_id, tool_token = await asyncio.to_thread(self._start_row, repo)
        spec = SandboxSpec(
            session_id=f"build-{image_id}",
            sandbox_id=f"build-{image_id}",
            repo_url=repo.url,
            branch=repo.default_branch,
            bridge_url="",
            token="",
            tool_token=tool_token,
            api_url=self._api_url,
            boot_mode="build",
            setup_timeout_s=self._setup_timeout_s,
        )
        started = time.monotonic()
        try:
            result = await self._provider.build_image(spec, timeout_s=self._build_timeout_s)
        except ProviderError as exc:
            await asyncio.to_thread(self._finish, image_id, ok=False, log_tail=str(exc), duration=0.0)
            return BuildOutcome(repository_id, "failed", image_id, str(exc))
        duration = time.monotonic() - started
        if self._metrics is not None:
            self._metrics.build_finished("built" if result.ok else "failed", duration)
        await asyncio.to_thread(
            self._finish,
            image_id,
            ok=result.ok,
            ref=result.ref,
            commit=result.commit,
            runtime_version=result.runtime_version,
            log_tail=result.log_tail,
            duration=duration,
        )
        if not result.ok:
            return BuildOutcome(repository_id, "failed", image_id, result.log_tail[-500:])
        return BuildOutcome(repository_id, "built", image_id, f"{result.commit[:10]} in {duration:.1f}s")

    # --- reads ---------------------------------------------------------------------------------
    def newest_ready(self, repository_id: int, branch: str) -> Image | None:
        return newest_ready_image(self._engine, repository_id, branch, self._provider.name)

    def _branch_tip(self, repo: Repository) -> str:
        if repo.kind == "github":
            if self._github is None:
                raise InspectError("no GitHub App is configured to read the branch")
            try:
                return self._github.branch_sha(repo.github_owner or "", repo.github_name or "", repo.default_branch)
            except GitHubError as exc:
                raise InspectError(exc.message) from exc
        return local_git.branch_sha(repo.url, repo.default_branch)

    # --- writes --------------------------------------------------------------------------------
    def _new_image(self, repo: Repository, **fields: Any) -> int:
        with session_scope(self._engine) as db:
            image = Image(
                repository_id=repo.id or 0, branch=repo.default_branch, provider=self._provider.name, **fields
            )
            db.add(image)
            db.flush()
            return image.id or 0

    def _start_row(self, repo: Repository) -> tuple[int, str]:
        tool_token = tokens.mint(tokens.TOOL_PREFIX)
        image_id = self._new_image(repo, status=ImageStatus.BUILDING, tool_token_hash=tokens.hash_token(tool_token))
        return image_id, tool_token

    def _finish(
        self,
        image_id: int,
        *,
        ok: bool,
        log_tail: str,
        duration: float,
        ref: str = "",
        commit: str = "",
        runtime_version: str = "",
    ) -> None:
        with session_scope(self._engine) as db:
            image = db.get(Image, image_id)
            if image is None:
                return
            image.status = ImageStatus.READY if ok else ImageStatus.FAILED
            image.provider_ref, image.commit_sha, image.runtime_version = ref, commit, runtime_version
            image.log_tail, image.duration_s = log_tail[-LOG_TAIL_CHARS:], round(duration, 3)
            image.tool_token_hash = None  # the build is over: its token opens nothing any more
            image.built_at = utcnow()

    def _record_failure(self, repo: Repository, reason: str) -> int:
        return self._new_image(repo, status=ImageStatus.FAILED, log_tail=reason[-LOG_TAIL_CHARS:], built_at=utcnow())

    # --- cleanup -------------------------------------------------------------------------------
    async def _drop_older(self, outcome: BuildOutcome) -> None:
        """A new image replaces every older one of its repository (ready, stale or failed); a failed
        build only the older failures (a ready image stays usable, and Settings shows the newest row)."""
        for image_id, ref in await asyncio.to_thread(self._older_images, outcome):
            if ref:
                try:
                    await self._provider.delete_image(ref)
                except ProviderError as exc:
                    log.warning("deleting image %s: %s", ref, exc)
                    continue
            await asyncio.to_thread(self._delete_image_row, image_id)

    def _older_images(self, outcome: BuildOutcome) -> list[tuple[int, str | None]]:
        """The images ``outcome``'s replaces (id and provider ref)."""
        replaced = [ImageStatus.FAILED]
        if outcome.status == "built":
            replaced += [ImageStatus.READY, ImageStatus.STALE]
        with session_scope(self._engine) as db:
            newest = db.get(Image, outcome.image_id)
            if newest is None:
                return []
            older = db.exec(
                select(Image).where(
                    Image.repository_id == outcome.repository_id,
                    Image.branch == newest.branch,
                    Image.provider == self._provider.name,
                    Image.id != newest.id,
                    col(Image.status).in_(replaced),
                )
            ).all()
            return [(i.id or 0, i.provider_ref) for i in older]

    def _delete_image_row(self, image_id: int) -> None:
        with session_scope(self._engine) as db:
            row = db.get(Image, image_id)
            if row is not None:
                db.delete(row)

    async def cleanup(self) -> int:
        """Delete snapshots no session points to any more (each session keeps its newest)."""
        deleted = 0
        for sandbox_id, ref in await asyncio.to_thread(self._unused_snapshots):
            try:
                await self._provider.delete_snapshot(ref or "")
            except ProviderError as exc:
                log.warning("deleting snapshot %s: %s", ref, exc)
                continue
            await asyncio.to_thread(self._forget_snapshot, sandbox_id)
            deleted += 1
        return deleted

    def _unused_snapshots(self) -> list[tuple[str, str | None]]:
        with session_scope(self._engine) as db:
            rows = db.exec(
                select(Sandbox.id, Sandbox.snapshot_ref)
                .join(Session, col(Session.id) == Sandbox.session_id)
                .where(col(Sandbox.snapshot_ref).is_not(None), Sandbox.snapshot_ref != Session.snapshot_ref)
            ).all()
            return [(sandbox_id, ref) for sandbox_id, ref in rows]

    def _forget_snapshot(self, sandbox_id: str) -> None:
        with session_scope(self._engine) as db:
            row = db.get(Sandbox, sandbox_id)
            if row is not None:
                row.snapshot_ref = None


@dataclass(frozen=True)
class ImageSummary:
    id: int
    repository_id: int
    branch: str
    status: str
    commit: str
    runtime_version: str
    duration_s: float | None
    built_at: datetime | None
    log_tail: str


def latest_images(engine: sa.Engine, repository_id: int | None = None) -> dict[int, ImageSummary]:
    """Each repository's newest image (any status), for Settings: what is ready, building or broken."""
    newest = select(sa.func.max(Image.id)).group_by(col(Image.repository_id))
    if repository_id is not None:
        newest = newest.where(Image.repository_id == repository_id)
    with session_scope(engine) as db:
        rows = db.exec(select(Image).where(col(Image.id).in_(newest))).all()
        return {
            row.repository_id: ImageSummary(
                id=row.id or 0,
                repository_id=row.repository_id,
                branch=row.branch,
                status=row.status,
                commit=row.commit_sha,
                runtime_version=row.runtime_version,
                duration_s=row.duration_s,
                built_at=row.built_at,
                log_tail=row.log_tail,
            )
            for row in rows
        }


class PrebuildScheduler:
    """APScheduler in the app's event loop: the prebuild run every ``interval_min`` minutes.

    Every worker runs one; a run-level lease (held for most of the interval, not released) makes
    the run happen once per interval across workers, and per-repository leases keep builds single.
    """

    JOB_ID = "prebuild"

    def __init__(self, *, prebuilder: Prebuilder, engine: sa.Engine, holder: str, interval_min: float) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        self._prebuilder = prebuilder
        self._engine = engine
        self._holder = holder
        self._interval_min = interval_min
        self._scheduler = AsyncIOScheduler()
        self._manual: set[asyncio.Task[BuildOutcome]] = set()

    def start(self) -> None:
        self._scheduler.add_job(
            self.run_once,
            "interval",
            minutes=self._interval_min,
            id=self.JOB_ID,
            coalesce=True,
            max_instances=1,
            next_run_time=utcnow(),  # a first run at start: new repositories need not wait half an hour
            replace_existing=True,
        )
        self._scheduler.start()

    async def run_once(self) -> list[BuildOutcome]:
        ttl = self._interval_min * 60 * 0.9
        if not await asyncio.to_thread(leases.acquire, self._engine, "prebuild-run", self._holder, ttl):
            return []  # another worker has this interval's run
        try:
            return await self._prebuilder.run_all()
        except Exception:  # a failed run must not stop the schedule; the next one tries again
            log.exception("prebuild run failed")
            return []

    async def rebuild_now(self, repository_id: int, *, actor_id: int) -> None:
        """Settings' "Rebuild now" (admins only): checked now, built in the background (nobody is kept waiting)."""
        await asyncio.to_thread(_check_rebuild, self._engine, repository_id, actor_id)
        task = asyncio.get_running_loop().create_task(self._prebuilder.build(repository_id, force=True))
        self._manual.add(task)
        task.add_done_callback(self._manual.discard)

    async def close(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        for task in list(self._manual):
            task.cancel()
        await asyncio.gather(*self._manual, return_exceptions=True)


def _check_rebuild(engine: sa.Engine, repository_id: int, actor_id: int) -> None:
    roles.require_admin(engine, actor_id, "rebuild images")
    repositories.get(engine, repository_id)  # NotFound for an unknown repository

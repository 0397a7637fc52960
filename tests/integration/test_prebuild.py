"""Prebuilt images with the local provider: build, skip while the tip stands still, rebuild after
a commit, one build across two workers, and a session started from the image."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from inspect_app.control.prebuild import Prebuilder, PrebuildScheduler
from inspect_app.db import session_scope
from inspect_app.models import Image, ImageStatus, Repository
from sandbox.providers.local import LocalProvider
from tests.fakes.llm_server import FakeLLM
from tests.integration.sandbox_harness import OPENCODE_BIN, PLUGIN_TEMPLATE, git, local_sandbox, make_origin

# setup.sh leaves a mark in the workspace each time it runs (an image boot must not run it again)
SETUP = "echo ran >> .setup-runs\n"


def add_commit(origin: Path, tmp: Path, message: str) -> str:
    work = tmp / f"push-{message.replace(' ', '-')}"
    git("clone", "-q", str(origin), str(work), cwd=tmp)
    (work / "CHANGELOG.md").write_text(message + "\n")
    git("add", "-A", cwd=work)
    git("-c", "user.name=Dev", "-c", "user.email=dev@example.com", "commit", "-qm", message, cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    return git("rev-parse", "HEAD", cwd=work).strip()


def register(engine: sa.Engine, origin: Path) -> int:
    with session_scope(engine) as db:
        repo = Repository(url=str(origin), name="origin", default_branch="main", prebuild=True)
        db.add(repo)
        db.flush()
        return repo.id or 0


def images(engine: sa.Engine) -> list[Image]:
    with session_scope(engine) as db:
        return list(db.exec(select(Image).order_by(Image.id)).all())  # type: ignore[arg-type]


def prebuilder(engine: sa.Engine, provider: LocalProvider, holder: str = "worker-1") -> Prebuilder:
    return Prebuilder(engine=engine, provider=provider, github=None, holder=holder, api_url="http://127.0.0.1:9")


@pytest.fixture
def provider(tmp_path: Path) -> LocalProvider:
    return LocalProvider(data_dir=tmp_path / "data", opencode_bin=str(OPENCODE_BIN), plugin_template=PLUGIN_TEMPLATE)


async def test_builds_skips_while_the_tip_stands_still_and_rebuilds_after_a_commit(
    sqlite_engine: sa.Engine, provider: LocalProvider, tmp_path: Path
) -> None:
    origin = make_origin(tmp_path, {".inspect/setup.sh": SETUP})
    repo_id = register(sqlite_engine, origin)
    builder = prebuilder(sqlite_engine, provider)

    [first] = await builder.run_all()
    assert first.status == "built", first
    [image] = images(sqlite_engine)
    tip = git("rev-parse", "main", cwd=origin).strip()
    assert (image.status, image.commit_sha, image.runtime_version) == (ImageStatus.READY, tip, "0.1.0")
    assert image.duration_s is not None and image.tool_token_hash is None  # the build's token is spent
    first_dir = tmp_path / "data" / "images" / image.provider_ref
    assert (first_dir / "workspace" / ".setup-runs").read_text() == "ran\n"  # setup.sh ran in the build

    [again] = await builder.run_all()
    assert again.status == "skipped" and len(images(sqlite_engine)) == 1

    newer = add_commit(origin, tmp_path, "Second commit")
    [rebuilt] = await builder.run_all()
    assert rebuilt.status == "built"
    [image] = images(sqlite_engine)  # the older image is gone, row and files
    assert image.commit_sha == newer and not first_dir.exists()
    assert builder.newest_ready(repo_id, "main").id == image.id  # type: ignore[union-attr]


async def test_a_failing_setup_is_recorded_with_its_log_and_publishes_nothing(
    sqlite_engine: sa.Engine, provider: LocalProvider, tmp_path: Path
) -> None:
    origin = make_origin(tmp_path, {".inspect/setup.sh": "echo 'npm ERR! missing lockfile'\nexit 7\n"})
    register(sqlite_engine, origin)
    [outcome] = await prebuilder(sqlite_engine, provider).run_all()
    assert outcome.status == "failed"
    [image] = images(sqlite_engine)
    assert image.status == ImageStatus.FAILED and not image.provider_ref
    assert "exited with 7" in image.log_tail and "npm ERR! missing lockfile" in image.log_tail
    assert not list((tmp_path / "data" / "images").glob("img_*"))
    [again] = await prebuilder(sqlite_engine, provider).run_all()  # the next run fails the same way
    assert again.status == "failed" and [i.id for i in images(sqlite_engine)] == [again.image_id]  # one row kept


async def test_two_workers_sharing_a_database_build_once(engine: sa.Engine, tmp_path: Path) -> None:
    origin = make_origin(tmp_path, {".inspect/setup.sh": "sleep 1\n" + SETUP})
    repo_id = register(engine, origin)
    workers = [
        prebuilder(engine, LocalProvider(data_dir=tmp_path / f"data-{n}", opencode_bin="opencode"), f"worker-{n}")
        for n in (1, 2)
    ]
    outcomes = await asyncio.gather(*(w.build(repo_id) for w in workers))
    assert sorted(o.status for o in outcomes) == ["built", "busy"]
    assert len(images(engine)) == 1
    # the scheduled run, too, happens once per interval across workers
    schedulers = [
        PrebuildScheduler(prebuilder=w, engine=engine, holder=f"worker-{n}", interval_min=30)
        for n, w in enumerate(workers)
    ]
    runs = await asyncio.gather(*(s.run_once() for s in schedulers))
    assert sorted(len(r) for r in runs) == [0, 1] and [o.status for r in runs for o in r] == ["skipped"]


async def test_a_session_starts_from_the_image_without_setup_and_on_the_newest_commit(
    sqlite_engine: sa.Engine, provider: LocalProvider, tmp_path: Path
) -> None:
    origin = make_origin(tmp_path, {".inspect/setup.sh": SETUP})
    register(sqlite_engine, origin)
    [built] = await prebuilder(sqlite_engine, provider).run_all()
    assert built.status == "built"
    [image] = images(sqlite_engine)
    newest = add_commit(origin, tmp_path, "After the build")  # the image is one commit behind now

    async with local_sandbox(tmp_path / "data", origin, FakeLLM(), image=image.provider_ref, provider=provider) as sb:
        ready = await sb.control.wait_type("ready", timeout=90)
        assert ready.boot_mode == "image"
        assert ready.commit == newest  # fetched and reset to the branch tip
        assert (sb.workspace / "CHANGELOG.md").read_text() == "After the build\n"
        assert (sb.workspace / ".setup-runs").read_text() == "ran\n"  # setup.sh did not run again
        setup = [p for p in sb.control.of_type("boot_progress", unique=False) if p.stage == "setup"]
        assert [p.status for p in setup] == ["skipped"]
    await provider.close()

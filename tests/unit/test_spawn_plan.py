"""The spawn decision: the session's snapshot > the newest usable image > fresh."""

from __future__ import annotations

from inspect_app.control.lifecycle import plan_spawn
from inspect_app.models import Image, ImageStatus, Session


def session(snapshot: str | None = None) -> Session:
    return Session(repository_id=1, base_branch="main", creator_id=1, snapshot_ref=snapshot)


def image(status: str = ImageStatus.READY, ref: str = "img_1", runtime: str = "0.1.0") -> Image:
    return Image(
        repository_id=1, branch="main", provider="local", status=status, provider_ref=ref, runtime_version=runtime
    )


def test_the_session_snapshot_comes_first() -> None:
    assert plan_spawn(session("snap_1"), image()).mode == "snapshot_restore"


def test_a_ready_image_from_a_recent_enough_runtime_comes_next() -> None:
    plan = plan_spawn(session(), image())
    assert (plan.mode, plan.image_ref) == ("image", "img_1")


def test_otherwise_fresh() -> None:
    assert plan_spawn(session(), None).mode == "fresh"
    assert plan_spawn(session(), image(status=ImageStatus.BUILDING)).mode == "fresh"  # never wait for a build
    assert plan_spawn(session(), image(status=ImageStatus.STALE)).mode == "fresh"
    assert plan_spawn(session(), image(ref="")).mode == "fresh"
    assert plan_spawn(session(), image(runtime="0.0.9")).mode == "fresh"  # below the runtime floor
    assert plan_spawn(session(), image(runtime="")).mode == "fresh"

"""The status rules of sandboxes, prompts and sessions: apply, ignore (a late word), or a bug."""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa

from inspect_app.control.data import prompts, sessions
from inspect_app.control.transitions import IllegalTransition, prompt_may, sandbox_may, session_may
from inspect_app.db import session_scope
from inspect_app.errors import Conflict
from inspect_app.models import MessageStatus as M
from inspect_app.models import Repository, User
from inspect_app.models import SandboxStatus as S
from inspect_app.models import SessionStatus as SS


def test_a_sandbox_moves_forward_to_an_end() -> None:
    for path in (
        [S.SPAWNING, S.CONNECTED, S.READY, S.STOPPED],
        [S.SPAWNING, S.READY, S.STOPPING, S.STOPPED],  # a pooled sandbox may say ready before "connected"
        [S.SPAWNING, S.FAILED],
        [S.CONNECTED, S.STALE],
    ):
        for old, new in itertools.pairwise(path):
            assert sandbox_may(old, new), (old, new)
    assert sandbox_may(S.READY, S.READY)  # a reconnect says ready again


def test_an_end_stays_an_end_and_later_words_are_ignored() -> None:
    for ended in (S.STOPPED, S.FAILED, S.STALE):
        for new in (S.READY, S.CONNECTED, S.FAILED, S.STOPPED, S.STALE, S.SPAWNING):
            assert sandbox_may(ended, new) is (new == ended)


@pytest.mark.parametrize(("old", "new"), [(S.READY, S.SPAWNING), (S.READY, S.CONNECTED), (S.STOPPING, S.READY)])
def test_moving_backwards_is_a_bug(old: str, new: str) -> None:
    with pytest.raises(IllegalTransition, match=f"from {old} to {new}"):
        sandbox_may(old, new)


def test_a_prompt_waits_runs_and_ends_once() -> None:
    for old, new in [(M.PENDING, M.PROCESSING), (M.PROCESSING, M.COMPLETED), (M.PROCESSING, M.FAILED)]:
        assert prompt_may(old, new)
    assert prompt_may(M.PENDING, M.CANCELLED) and prompt_may(M.PROCESSING, M.PENDING)  # not taken: waits again
    assert not prompt_may(M.PROCESSING, M.CANCELLED)  # a cancel racing its start: a conflict for the person
    for ended in (M.COMPLETED, M.FAILED, M.CANCELLED):
        assert not prompt_may(ended, M.FAILED if ended != M.FAILED else M.COMPLETED)  # a re-sent end
        assert not prompt_may(ended, ended)  # the same end said twice (a second cancel) changes nothing
        with pytest.raises(IllegalTransition):
            prompt_may(ended, M.PROCESSING)


def test_a_sessions_ready_and_running_follow_from_its_prompts_and_syncing_only_while_booting() -> None:
    for derived in (SS.READY, SS.RUNNING):
        with pytest.raises(IllegalTransition):
            session_may(SS.SPAWNING, derived)
    with pytest.raises(IllegalTransition):
        session_may(SS.STOPPED, SS.CREATED)
    assert session_may(SS.SPAWNING, SS.SYNCING) and not session_may(SS.RUNNING, SS.SYNCING)
    assert all(session_may(old, SS.SPAWNING) and session_may(old, SS.FAILED) for old in SS)


def test_the_data_layer_applies_the_rules(engine: sa.Engine) -> None:
    with session_scope(engine) as db:
        user, repo = User(name="Ada", email="ada@example.com"), Repository(url="/r", name="r")
        db.add_all([user, repo])
        db.flush()
        user_id, repo_id = user.id or 0, repo.id or 0
    sid = sessions.create(engine, repository_id=repo_id, creator_id=user_id).id
    first = prompts.enqueue(engine, session_id=sid, author_id=user_id, content="a", start_if_idle=True).message
    assert first.status == M.PROCESSING and sessions.get(engine, sid).status == SS.RUNNING
    assert sessions.set_status(engine, sid, SS.SYNCING) is None  # a late boot report: ignored
    assert sessions.get(engine, sid).status == SS.RUNNING
    with pytest.raises(IllegalTransition):
        sessions.set_status(engine, sid, SS.READY)  # follows from the prompts: sessions.settle writes it
    assert prompts.finish(engine, first.id, success=True) is not None
    assert prompts.finish(engine, first.id, success=False, error="again") is None  # a re-sent end changes nothing
    assert prompts.get(engine, sid, first.id).status == M.COMPLETED
    sessions.settle(engine, sid, sandbox_up=True)
    assert sessions.get(engine, sid).status == SS.READY
    waiting = prompts.enqueue(engine, session_id=sid, author_id=user_id, content="b", start_if_idle=False).message
    prompts.cancel(engine, session_id=sid, message_id=waiting.id)
    with pytest.raises(Conflict):  # a second cancel (a double click, a retried request) is refused
        prompts.cancel(engine, session_id=sid, message_id=waiting.id)

"""The sandbox status rules: forward only; an end stays an end; backwards is a bug."""

from __future__ import annotations

import itertools

import pytest

from inspect_app.control.transitions import IllegalTransition, sandbox_may
from inspect_app.models import SandboxStatus as S


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

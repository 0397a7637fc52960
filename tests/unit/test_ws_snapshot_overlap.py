"""A client subscribes, then reads the snapshot: events written in between come both ways, and the
live copy of what the snapshot holds is dropped — and only that (each revision reaches it once)."""

from __future__ import annotations

import json

from inspect_app.api.ws import not_in_snapshot


def event(seq: int, rev: int, type_: str = "token") -> str:
    return json.dumps({"seq": seq, "rev": rev, "type": type_, "data": {}})


def test_rows_the_snapshot_holds_at_that_revision_are_dropped_and_the_rest_pass_in_order() -> None:
    typing = json.dumps({"type": "typing", "user": {"id": 1, "name": "Ada"}})
    held = {3: 4, 4: 5}  # the page: seq 3 at rev 4, seq 4 at rev 5
    frames, past = not_in_snapshot([event(3, 4), typing, event(4, 5), event(5, 6), event(3, 7)], held)
    assert frames == [typing, event(5, 6), event(3, 7)] and past


def test_a_row_outside_the_page_passes_even_at_an_older_revision() -> None:
    # the answer row (seq 1) fell out of the newest-100 page: its live tokens are not in the snapshot
    frames, past = not_in_snapshot([event(1, 3), event(4, 5)], {4: 5, 9: 8})
    assert frames == [event(1, 3)] and not past


def test_until_a_newer_event_comes_the_filter_stays_on() -> None:
    frames, past = not_in_snapshot([event(2, 3)], {2: 5})
    assert frames == [] and not past
    resync = '{"type":"resync"}'
    frames, past = not_in_snapshot([resync], {2: 5})
    assert frames == [resync] and not past
    assert not_in_snapshot([event(1, 1)], {}) == ([event(1, 1)], True)  # an empty snapshot holds nothing

"""A client subscribes, then reads the snapshot: events written in between come both ways, and the
live copy is dropped (each revision reaches the client once)."""

from __future__ import annotations

import json

from inspect_app.api.ws import not_in_snapshot


def event(rev: int, type_: str = "token") -> str:
    return json.dumps({"seq": rev, "rev": rev, "type": type_, "data": {}})


def test_events_the_snapshot_holds_are_dropped_and_the_rest_pass_in_order() -> None:
    typing = json.dumps({"type": "typing", "user": {"id": 1, "name": "Ada"}})
    frames, past = not_in_snapshot([event(4), typing, event(5), event(6), event(7)], held=5)
    assert frames == [typing, event(6), event(7)] and past


def test_until_a_newer_event_comes_the_filter_stays_on() -> None:
    frames, past = not_in_snapshot([event(3), event(5)], held=5)
    assert frames == [] and not past
    resync = '{"type":"resync"}'
    frames, past = not_in_snapshot([resync], held=5)
    assert frames == [resync] and not past

"""The link registry: one live link per session, and requests answered across a reconnect."""

from __future__ import annotations

import asyncio
import json

import pytest

from inspect_app.control.links import Links, NotLinked, SandboxLink, push_reply
from sandbox.protocol import PushCommand, SnapshotCommand


class Wire:
    def __init__(self, *, dead: bool = False) -> None:
        self.sent: list[dict[str, object]] = []
        self.closed = False
        self.dead = dead

    async def send_text(self, text: str) -> None:
        if self.dead:
            raise ConnectionError("gone")
        self.sent.append(json.loads(text))

    async def close(self) -> None:
        self.closed = True


def link(wire: Wire, *, ready: bool = True) -> SandboxLink:
    return SandboxLink(session_id="s1", sandbox_id="sb1", send_text=wire.send_text, close=wire.close, ready=ready)


async def test_a_request_is_answered_on_the_connection_that_replaced_the_one_it_was_sent_on() -> None:
    links, first_wire, second_wire = Links(), Wire(), Wire()
    first = link(first_wire)
    await links.attach(first)
    asked = asyncio.create_task(links.request("s1", PushCommand(branch="b"), reply=push_reply("b"), timeout=5))
    for _ in range(100):  # a few turns of the loop: the send runs in a task of its own
        if first_wire.sent:
            break
        await asyncio.sleep(0)
    assert [m["type"] for m in first_wire.sent] == ["push"]
    second = link(second_wire)
    await links.attach(second)  # the sandbox reconnected while it pushed
    assert first_wire.closed and links.get("s1") is second
    assert not links.detach(first)  # the old socket ending does not unlink the new one
    assert links.answer("s1", push_reply("other"), (True, "x")) == 0  # another branch's answer is not this one's
    assert links.answer("s1", push_reply("b"), (True, "abc")) == 1
    assert await asked == (True, "abc")
    assert links.answer("s1", push_reply("b"), (True, "again")) == 0  # nothing left waiting


async def test_a_request_with_no_connected_sandbox_or_a_dead_socket_fails_at_once() -> None:
    links = Links()
    with pytest.raises(NotLinked):
        await links.request("s1", SnapshotCommand(), reply="snapshot", timeout=5)
    await links.attach(link(Wire(dead=True)))
    with pytest.raises(NotLinked):
        await links.request("s1", SnapshotCommand(), reply="snapshot", timeout=5)
    assert links.answer("s1", "snapshot", "c") == 0  # the failed request does not linger


async def test_an_unanswered_request_times_out_and_stops_waiting() -> None:
    links = Links()
    await links.attach(link(Wire()))
    with pytest.raises(TimeoutError):
        await links.request("s1", SnapshotCommand(), reply="snapshot", timeout=0.01)
    assert links.answer("s1", "snapshot", "late") == 0


async def test_only_a_ready_link_takes_prompts_and_a_dropped_session_has_none() -> None:
    links = Links()
    booting = link(Wire(), ready=False)
    await links.attach(booting)
    assert links.get("s1") is booting and links.ready("s1") is None
    booting.ready = True
    assert links.ready("s1") is booting
    links.drop("s1")
    assert "s1" not in links and not await links.send("s1", SnapshotCommand())

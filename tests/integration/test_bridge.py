"""The sandbox bridge against a fake control plane (no OpenCode): refusal, re-sends, bad input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sandbox.protocol import ExecutionComplete, Heartbeat, Ready, StopCommand, Token
from sandbox.runtime.bridge import Bridge, BridgeRefused
from sandbox.runtime.relays import pipe
from tests.fakes.control_plane import FakeControlPlane

TOKEN = "sbx_test"
SANDBOX = "sbx1"


@pytest.fixture
async def control() -> AsyncIterator[FakeControlPlane]:
    plane = await FakeControlPlane(token=TOKEN, sandbox_id=SANDBOX).start()
    yield plane
    await plane.close()


def make_bridge(control: FakeControlPlane, token: str = TOKEN, commands: list | None = None) -> Bridge:
    async def on_command(command: object) -> None:
        if commands is not None:
            commands.append(command)

    async def ready() -> Ready:
        return Ready(sandbox_id=SANDBOX, commit="abc")

    return Bridge(
        url=control.url,
        token=token,
        sandbox_id=SANDBOX,
        on_command=on_command,
        ready=ready,
        status=lambda: Heartbeat(),
        heartbeat_s=0.2,
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
    )


async def test_a_wrong_token_is_refused_for_good(control: FakeControlPlane) -> None:
    bridge = make_bridge(control, token="sbx_wrong")
    with pytest.raises(BridgeRefused, match="401"):
        await asyncio.wait_for(bridge.run(), 10)


async def test_gone_is_terminal(control: FakeControlPlane) -> None:
    control.refuse_with = 410
    with pytest.raises(BridgeRefused, match="410"):
        await asyncio.wait_for(make_bridge(control).run(), 10)


async def test_messages_wait_while_disconnected_and_critical_ones_are_resent(control: FakeControlPlane) -> None:
    bridge = make_bridge(control)
    bridge.send(Token(message_id="m", text="queued before connecting"))
    task = asyncio.create_task(bridge.run())
    try:
        await control.wait_type("ready", timeout=10)
        await control.wait_type("token", timeout=10)
        control.withhold_acks = True
        bridge.send(ExecutionComplete(message_id="m", success=True))
        await control.wait_type("execution_complete", timeout=10)
        await control.drop()
        control.withhold_acks = False
        await control.wait_for(lambda _: control.connections >= 2, 10, "reconnect")
        await control.wait_for(lambda _: len(control.of_type("execution_complete", unique=False)) == 2, 10, "re-send")
        await control.wait_for(lambda _: bridge.unacknowledged == 0, 10, "ack")
        assert len(control.of_type("execution_complete")) == 1
        assert len(control.of_type("ready")) == 2  # ready again after the reconnect
        await control.wait_type("heartbeat", timeout=5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_events_written_into_a_dead_socket_are_sent_again_once(control: FakeControlPlane) -> None:
    """The sandbox wrote tokens and a completion into a socket that had already died (they were lost
    on the way): the control plane's handshake answer says what it got, and the rest comes again, in
    order, each once."""
    bridge = make_bridge(control)
    task = asyncio.create_task(bridge.run())
    try:
        await control.wait_type("ready", timeout=10)
        bridge.send(Token(message_id="m", text="arrived "))
        await control.wait_type("token", timeout=10)
        control.deaf = True
        for word in ("lost ", "in ", "the ", "network"):
            bridge.send(Token(message_id="m", text=word))
        bridge.send(ExecutionComplete(message_id="m", success=True))
        await asyncio.sleep(0.3)  # written and gone; the sandbox cannot tell
        control.deaf = False
        await control.drop()
        await control.wait_type("execution_complete", timeout=10)
        text = "".join(t.text for t in control.of_type("token"))
        assert text == "arrived lost in the network"
        received = [m.n for m in control.received if getattr(m, "n", None)]
        assert received == sorted(received) and len(control.of_type("execution_complete")) == 1
        bridge.send(Token(message_id="m", text="!"))  # and the numbering goes on
        await control.wait_for(lambda _: len(control.of_type("token")) == 6, 10, "the next token")
        assert [t.n for t in control.of_type("token")] == [1, 2, 3, 4, 5, 7]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_bad_control_messages_are_answered_and_the_connection_stays(control: FakeControlPlane) -> None:
    commands: list = []
    bridge = make_bridge(control, commands=commands)
    task = asyncio.create_task(bridge.run())
    try:
        await control.wait_type("ready", timeout=10)
        await control.send("{broken")
        await control.send({"type": "stop", "message_id": 5})
        await control.wait_for(lambda _: len(control.of_type("error")) == 2, 10, "two errors")
        await control.send(StopCommand(message_id="m1"))
        await control.wait_for(lambda _: bool(commands), 10, "the valid command")
        assert commands == [StopCommand(message_id="m1")]
        assert control.connections == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_relay_with_nothing_behind_it_is_waited_out_in_order(control: FakeControlPlane) -> None:
    """A sandbox on its own network reaches the control plane through a relay, which takes the
    connection even while the server is down (restarting) and closes it at once. The bridge keeps
    trying; once the server is back, what it queued meanwhile arrives, in the order it was sent."""
    server_up = asyncio.Event()
    attempts = 0
    upstream = control.url.split("//", 1)[1].split("/", 1)[0].split(":")

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1
        if not server_up.is_set():
            writer.close()  # what the relay does when the control plane's socket refuses it
            return
        await pipe(reader, writer, *await asyncio.open_connection(upstream[0], int(upstream[1])))

    relay_server = await asyncio.start_server(relay, "127.0.0.1", 0)
    port = relay_server.sockets[0].getsockname()[1]
    bridge = make_bridge(control)
    bridge.identify(url=f"ws://127.0.0.1:{port}/api/sandbox/ws", token=TOKEN, sandbox_id=SANDBOX)
    for text in ("one ", "two "):
        bridge.send(Token(message_id="m", text=text))
    bridge.send(ExecutionComplete(message_id="m", success=True))
    task = asyncio.create_task(bridge.run())
    try:
        await control.wait_for(lambda _: attempts >= 3, 10, "the bridge to keep trying")
        assert not task.done(), task
        server_up.set()
        await control.wait_type("execution_complete", timeout=10)
        kinds = [m.type for m in control.received if m.type in ("token", "execution_complete")]
        assert kinds == ["token", "token", "execution_complete"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        relay_server.close()

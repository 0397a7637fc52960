"""The sandbox's end of a preview: streams to declared ports on its loopback, and nowhere else."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator

import pytest
from pydantic import BaseModel

from sandbox.protocol import TunnelClose, TunnelData, TunnelOpen
from sandbox.runtime.tunnels import Tunnels


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(b"echo: " + line)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


class Sent:
    def __init__(self) -> None:
        self.messages: asyncio.Queue[BaseModel] = asyncio.Queue()

    def __call__(self, message: BaseModel) -> None:
        self.messages.put_nowait(message)

    async def next(self) -> BaseModel:
        return await asyncio.wait_for(self.messages.get(), 5)


def data(tid: str, raw: bytes) -> TunnelData:
    return TunnelData(tunnel_id=tid, data=base64.b64encode(raw).decode())


async def test_a_stream_to_a_declared_port_carries_bytes_both_ways(echo_port: int) -> None:
    sent = Sent()
    tunnels = Tunnels(send=sent, reserved=lambda: {1})
    tunnels.allow({echo_port})
    await tunnels.open(TunnelOpen(tunnel_id="t1", port=echo_port))
    tunnels.data(data("t1", b"hello\n"))  # sent while it may still be connecting: kept, in order
    tunnels.data(data("t1", b"again\n"))
    received = b""
    while received.count(b"\n") < 2:
        message = await sent.next()
        assert isinstance(message, TunnelData)
        received += base64.b64decode(message.data)
    assert received == b"echo: hello\necho: again\n"
    tunnels.close(TunnelClose(tunnel_id="t1"))  # the browser left: nothing more is said
    await asyncio.sleep(0.05)
    assert sent.messages.empty()


async def test_only_declared_ports_open_and_never_the_runtimes_own(echo_port: int) -> None:
    sent = Sent()
    tunnels = Tunnels(send=sent, reserved=lambda: {echo_port})
    tunnels.allow({echo_port, 9})  # the declaration names a reserved port: it stays closed
    await tunnels.open(TunnelOpen(tunnel_id="own", port=echo_port))
    refused = await sent.next()
    assert isinstance(refused, TunnelClose) and "not declared" in refused.reason
    await tunnels.open(TunnelOpen(tunnel_id="other", port=echo_port + 1))
    assert "not declared" in (await sent.next()).reason  # type: ignore[attr-defined]


async def test_a_declared_port_with_nothing_listening_is_said(echo_port: int) -> None:
    sent = Sent()
    tunnels = Tunnels(send=sent, reserved=set)
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        idle = probe.getsockname()[1]
    tunnels.allow({idle})
    await tunnels.open(TunnelOpen(tunnel_id="t2", port=idle))
    closed = await sent.next()
    assert isinstance(closed, TunnelClose) and "nothing is listening" in closed.reason


async def test_streams_closed_here_are_not_echoed_back(echo_port: int) -> None:
    sent = Sent()
    tunnels = Tunnels(send=sent, reserved=set)
    tunnels.allow({echo_port})
    await tunnels.open(TunnelOpen(tunnel_id="t3", port=echo_port))
    tunnels.data(data("t3", b"bye\n"))
    assert isinstance(await sent.next(), TunnelData)
    tunnels.close_all()
    await asyncio.sleep(0.05)
    assert sent.messages.empty()  # closed from this side: no close is echoed back

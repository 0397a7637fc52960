"""The host end of a sandbox's network: routes by socket name, and a route that moves at a claim."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sandbox.providers.egress import EgressPolicy, EgressProxy
from sandbox.providers.relay import Identity, SandboxNetwork


@asynccontextmanager
async def answering(word: bytes) -> AsyncIterator[int]:
    """A loopback server that answers every connection with ``word``; yields its port."""

    async def answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(word)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def ask(path: Path) -> bytes:
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        return await asyncio.wait_for(reader.read(100), 5)
    finally:
        writer.close()


async def test_a_route_offered_again_leads_to_the_new_place(tmp_path: Path) -> None:
    # a parked sandbox resumed for a control plane at another address must reach that one
    proxy = EgressProxy(EgressPolicy.of([]), denied=lambda _host, _why: None)
    async with answering(b"old") as old, answering(b"new") as new:
        network = SandboxNetwork(tmp_path / "relays", routes={"control": ("127.0.0.1", old)}, proxy=proxy)
        await network.start()
        try:
            assert await ask(network.directory / "control.sock") == b"old"
            await network.offer("control", "127.0.0.1", new)
            assert await ask(network.directory / "control.sock") == b"new"
            assert (network.directory / "egress.sock").stat().st_mode & 0o777 == 0o666
        finally:
            await network.close()
    assert not network.directory.exists()


async def test_the_bridge_relay_speaks_as_its_sandbox_whatever_the_request_claims(tmp_path: Path) -> None:
    """Inside, anything may connect to the bridge's relay and claim to be another sandbox (with a token
    it stole, or made up): what reaches the control plane carries this sandbox's identity alone; and
    the relay carries nothing but the bridge's handshake."""
    heads: list[bytes] = []

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\n\r\nafter")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(upstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = EgressProxy(EgressPolicy.of([]), denied=lambda _host, _why: None)
    network = SandboxNetwork(
        tmp_path / "relays",
        routes={"bridge": ("127.0.0.1", port)},
        proxy=proxy,
        identity=Identity("sbx-mine", "sbx_token_of_mine"),
    )
    await network.start()
    try:
        forged = (
            b"GET /api/sandbox/ws?session=s1 HTTP/1.1\r\nHost: 127.0.0.1:7705\r\n"
            b"Authorization: Bearer sbx_stolen\r\nx-sandbox-id: sbx-theirs\r\nAUTHORIZATION : Basic b3RoZXI=\r\n"
            b"Upgrade: websocket\r\n\r\n"
        )
        answer = await send(network.directory / "bridge.sock", forged)
        assert answer.startswith(b"HTTP/1.1 101") and answer.endswith(b"after")  # then a plain pipe
        [head] = heads
        lines = head.lower().split(b"\r\n")
        assert [line for line in lines if line.startswith((b"authorization", b"x-sandbox-id"))] == [
            b"authorization: bearer sbx_token_of_mine",
            b"x-sandbox-id: sbx-mine",
        ]
        assert b"sbx_stolen" not in head and b"sbx-theirs" not in head and b"b3rozxi=" not in head.lower()
        assert lines[0] == b"get /api/sandbox/ws?session=s1 http/1.1" and b"upgrade: websocket" in lines

        for elsewhere in (b"GET /api/sessions HTTP/1.1\r\n\r\n", b"POST /api/sandbox/ws HTTP/1.1\r\n\r\n"):
            assert (await send(network.directory / "bridge.sock", elsewhere)).startswith(b"HTTP/1.1 403")
        assert len(heads) == 1  # neither reached the control plane
    finally:
        await network.close()
        server.close()


async def send(path: Path, data: bytes) -> bytes:
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()

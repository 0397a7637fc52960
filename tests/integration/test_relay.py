"""The host end of a sandbox's network: routes by socket name, and a route that moves at a claim."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sandbox.providers.egress import EgressPolicy, EgressProxy
from sandbox.providers.relay import SandboxNetwork


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

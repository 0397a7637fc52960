"""Inside a sandbox on its own network: loopback ports carried to its provider's Unix sockets.

The sandbox has no route out. For what expects TCP — the bridge WebSocket, the API, the model, git,
an HTTP proxy — the runtime listens on fixed loopback ports (``RELAY_PORTS``) and carries each
connection to the socket of the same name in ``RELAY_DIR``, which the provider serves on the host.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from sandbox.protocol import RELAY_PORTS

CONNECT_TIMEOUT_S = 10.0


async def start(directory: Path) -> list[asyncio.base_events.Server]:
    """Listen on every relay port when the provider binds its sockets' directory in (a socket may come
    later: a pooled sandbox's ``control`` is offered at its claim); none when there is no directory
    (the sandbox shares the host's network)."""
    if not directory.is_dir():  # noqa: ASYNC240 - one stat, once at boot
        return []
    return [
        await asyncio.start_server(_carrier(directory / f"{name}.sock"), "127.0.0.1", port)
        for name, port in RELAY_PORTS.items()
    ]


def _carrier(socket_path: Path):
    async def carry(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_unix_connection(str(socket_path)), CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError):
            writer.close()
            return
        await pipe(reader, writer, upstream_reader, upstream_writer)

    return carry


async def pipe(
    a_reader: asyncio.StreamReader,
    a_writer: asyncio.StreamWriter,
    b_reader: asyncio.StreamReader,
    b_writer: asyncio.StreamWriter,
) -> None:
    """Copy both ways until either side ends, then close both."""

    async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while chunk := await source.read(65536):
                sink.write(chunk)
                await sink.drain()
        with contextlib.suppress(OSError, RuntimeError):
            if sink.can_write_eof():
                sink.write_eof()

    try:
        await asyncio.gather(copy(a_reader, b_writer), copy(b_reader, a_writer))
    finally:
        for writer in (a_writer, b_writer):
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()

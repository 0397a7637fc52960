"""Live previews: byte streams from the control plane's preview origin to ports in the sandbox.

The workspace declares its preview ports in ``.inspect/preview`` (a line ``<port> [label]`` each;
``#`` starts a comment), read at each ``ready``. A ``tunnel_open`` connects to one of them on the
sandbox's own loopback, then bytes flow both ways base64 in ``tunnel_data`` until either end sends
``tunnel_close``. Only declared ports open, and never one of the runtime's own (OpenCode's server,
the relays): a browser reaches nothing else in the sandbox this way.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ValidationError

from sandbox.protocol import MAX_PREVIEWS, MAX_TUNNEL_CHUNK, PreviewPort, TunnelClose, TunnelData, TunnelOpen

log = logging.getLogger(__name__)

DECLARATION = ".inspect/preview"
MAX_OPEN = 32  # streams at once (a browser opens about six per origin)
CONNECT_TIMEOUT_S = 5.0
MAX_BUFFERED = 4 * 1024 * 1024  # bytes written to a port that has not taken them yet
BACKLOG_PAUSE = 256  # bridge messages waiting: a stream stops reading its port until they are sent
PAUSE_S = 0.02


def declared_previews(workspace: Path) -> tuple[list[PreviewPort], list[str]]:
    """The ports ``.inspect/preview`` declares, and what was wrong with its other lines."""
    path = workspace / DECLARATION
    try:
        text = path.read_text(errors="replace")[:10_000]
    except OSError:
        return [], []
    ports: list[PreviewPort] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        port, _, label = line.partition(" ")
        try:
            declared = PreviewPort(port=int(port), label=label.strip()[:60])
        except (ValueError, ValidationError):
            problems.append(f"{DECLARATION} line {number}: {raw.strip()[:80]!r} is not `<port> [label]`")
            continue
        if any(p.port == declared.port for p in ports):
            continue
        if len(ports) == MAX_PREVIEWS:
            problems.append(f"{DECLARATION}: at most {MAX_PREVIEWS} ports; the rest are ignored")
            break
        ports.append(declared)
    return ports, problems


@dataclass
class _Stream:
    writer: asyncio.StreamWriter | None = None  # None while connecting
    pending: bytearray = field(default_factory=bytearray)  # what the browser sent meanwhile
    task: asyncio.Task[None] | None = None


class Tunnels:
    def __init__(
        self,
        *,
        send: Callable[[BaseModel], None],
        reserved: Callable[[], Collection[int]],
        backlog: Callable[[], int] = lambda: 0,
    ) -> None:
        self._send = send
        self._backlog = backlog  # the bridge's unsent messages: streams share it with the agent's events
        self._reserved = reserved  # the runtime's own ports, never opened to a browser
        self._allowed: set[int] = set()
        self._open: dict[str, _Stream] = {}

    def allow(self, ports: Collection[int]) -> None:
        """The declared ports (a new ``ready`` replaces them; open streams carry on)."""
        self._allowed = set(ports) - set(self._reserved())

    async def open(self, command: TunnelOpen) -> None:
        tid = command.tunnel_id
        if tid in self._open:
            return
        if command.port not in self._allowed:
            self._send(TunnelClose(tunnel_id=tid, reason=f"port {command.port} is not declared in {DECLARATION}"))
            return
        if len(self._open) >= MAX_OPEN:
            self._send(TunnelClose(tunnel_id=tid, reason=f"at most {MAX_OPEN} preview connections at once"))
            return
        # Connecting runs beside the bridge's other commands (a port slow to accept holds up no
        # prompt); what the browser sends meanwhile waits in ``pending``.
        stream = self._open[tid] = _Stream()
        stream.task = asyncio.get_running_loop().create_task(self._run(tid, stream, command.port))

    async def _run(self, tid: str, stream: _Stream, port: int) -> None:
        try:
            connecting = asyncio.open_connection("127.0.0.1", port)
            reader, stream.writer = await asyncio.wait_for(connecting, CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            why = "nothing is listening there" if isinstance(exc, ConnectionRefusedError) else str(exc) or "timed out"
            if self._open.pop(tid, None) is not None:
                self._send(TunnelClose(tunnel_id=tid, reason=f"port {port}: {why}"))
            return
        self._write(tid, stream, bytes(stream.pending))
        stream.pending.clear()
        try:  # what the port answers, to the browser, until it closes
            while chunk := await reader.read(MAX_TUNNEL_CHUNK):
                self._send(TunnelData(tunnel_id=tid, data=base64.b64encode(chunk).decode()))
                # a big answer over a slow bridge waits for it instead of filling its outbox (which
                # would delay the agent's events, and past its limit drop messages)
                while self._backlog() > BACKLOG_PAUSE:
                    await asyncio.sleep(PAUSE_S)
        except OSError:
            pass
        finally:
            if self._forget(tid):
                self._send(TunnelClose(tunnel_id=tid))

    def data(self, command: TunnelData) -> None:
        stream = self._open.get(command.tunnel_id)
        if stream is None:
            return
        try:
            data = base64.b64decode(command.data, validate=True)
        except (binascii.Error, ValueError):
            return
        if stream.writer is None:
            stream.pending += data
            if len(stream.pending) > MAX_BUFFERED:
                self._overflow(command.tunnel_id)
            return
        self._write(command.tunnel_id, stream, data)

    def _write(self, tid: str, stream: _Stream, data: bytes) -> None:
        assert stream.writer is not None
        stream.writer.write(data)
        if stream.writer.transport.get_write_buffer_size() > MAX_BUFFERED:  # the port stopped reading
            self._overflow(tid)

    def _overflow(self, tid: str) -> None:
        self.close(TunnelClose(tunnel_id=tid))
        self._send(TunnelClose(tunnel_id=tid, reason="the preview stopped reading"))

    def close(self, command: TunnelClose) -> None:
        stream = self._open.get(command.tunnel_id)
        self._forget(command.tunnel_id)
        if stream is not None and stream.task is not None and stream.task is not asyncio.current_task():
            stream.task.cancel()

    def close_all(self) -> None:
        for tid in list(self._open):
            self.close(TunnelClose(tunnel_id=tid))

    def _forget(self, tid: str) -> bool:
        stream = self._open.pop(tid, None)
        if stream is None:
            return False
        if stream.writer is not None:
            with contextlib.suppress(Exception):
                stream.writer.close()
        return True

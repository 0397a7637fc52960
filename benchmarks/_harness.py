"""Shared by the benchmarks: a real server, a session on it, and a fake sandbox speaking the bridge.

The fake sandbox is registered the way the lifecycle registers one (a row with a hashed token) and
then connects to ``/api/sandbox/ws`` like the real runtime, so the control plane's whole path is
measured; only the agent is left out.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlmodel import Session as DBSession  # noqa: E402
from sqlmodel import select  # noqa: E402

from inspect_app.control import tokens  # noqa: E402
from inspect_app.db import create_db_engine  # noqa: E402
from inspect_app.loop_lag import percentile  # noqa: E402
from inspect_app.models import Message, Repository, Sandbox, SandboxStatus, Session, User  # noqa: E402
from sandbox.protocol import Ready, SnapshotCommand, SnapshotReady, encode, parse_from_control  # noqa: E402
from tests.servers import RunningServer, start_server  # noqa: E402


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "mean_ms": float("nan")}
    values = sorted(values)
    return {
        "p50_ms": round(percentile(values, 50), 2),
        "p99_ms": round(percentile(values, 99), 2),
        "mean_ms": round(statistics.fmean(values), 2),
    }


POSTGRES = os.environ.get("INSPECT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("INSPECT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@contextmanager
def replicas(count: int) -> Iterator[list[RunningServer]]:
    """``count`` replicas on a new PostgreSQL database and Redis, sharing one data directory."""
    name = f"inspect_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    workdir = Path(tempfile.mkdtemp(prefix="inspect-bench-"))
    env = {
        "INSPECT_DATABASE_URL": sa.make_url(POSTGRES).set(database=name).render_as_string(hide_password=False),
        "INSPECT_REDIS_URL": REDIS,
        "INSPECT_IDLE_TIMEOUT_S": "3600",
        "INSPECT_LOG_LEVEL": "WARNING",
    }
    started: list[RunningServer] = []
    try:
        for i in range(count):
            started.append(
                start_server(workdir / f"r{i}", data_dir=workdir / "data", INSPECT_REPLICA_ID=f"bench-{i}", **env)
            )
        yield started
    finally:
        for server in reversed(started):
            server.stop()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


FOLLOWERS = Path(__file__).with_name("_followers.py")


def spawn_followers(
    servers: list[RunningServer], session_id: str, clients: int, procs: int, events: int, deadline_s: float
) -> list[subprocess.Popen[str]]:
    """``clients`` followers of the session in ``procs`` processes of their own (``_followers.py``),
    the processes spread over ``servers`` in turn. Each prints ``ready`` once subscribed."""
    shares = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    return [
        subprocess.Popen(
            [
                sys.executable,
                str(FOLLOWERS),
                servers[i % len(servers)].url,
                servers[i % len(servers)].token,
                session_id,
                str(n),
                str(events),
                str(deadline_s),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i, n in enumerate(shares)
        if n
    ]


def start() -> RunningServer:
    workdir = Path(tempfile.mkdtemp(prefix="inspect-bench-"))
    # no agent is needed: point the idle timeout far away so nothing is stopped mid-run
    return start_server(workdir, INSPECT_IDLE_TIMEOUT_S="3600", INSPECT_LOG_LEVEL="WARNING")


@dataclass
class Seeded:
    session_id: str
    sandbox_id: str
    sandbox_token: str
    message_id: str  # a prompt of the session, for streamed events to belong to


def seed(server: RunningServer) -> Seeded:
    """A repository, a session and a sandbox row, written straight to the server's database."""
    engine = create_db_engine(server.database_url)
    token = tokens.mint(tokens.SANDBOX_PREFIX)
    with DBSession(engine, expire_on_commit=False) as db:
        user = db.exec(select(User).where(User.is_local == True)).one()  # noqa: E712
        repo = Repository(url=f"/bench/{tokens.mint('r')}", name="bench")
        db.add(repo)
        db.flush()
        session = Session(repository_id=repo.id, base_branch="main", creator_id=user.id, title="bench")  # type: ignore[arg-type]
        db.add(session)
        db.flush()
        message = Message(session_id=session.id, author_id=user.id, content="stream", status="completed")  # type: ignore[arg-type]
        db.add(message)
        sandbox = Sandbox(  # served by this server (another would take it over as an orphan)
            session_id=session.id,
            provider="local",
            token_hash=tokens.hash_token(token),
            status=SandboxStatus.SPAWNING,
            replica_id=server.replica_id,
        )
        db.add(sandbox)
        db.commit()
        result = Seeded(session.id, sandbox.id, token, message.id)
    engine.dispose()
    return result


class FakeSandbox:
    """Connects like the sandbox runtime, says ready, and records the commands it gets."""

    def __init__(self, server: RunningServer, seeded: Seeded) -> None:
        self.url = server.url.replace("http://", "ws://") + f"/api/sandbox/ws?session={seeded.session_id}"
        self.seeded = seeded
        self.ws: Any = None
        self.commands: asyncio.Queue[tuple[float, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        headers = {"Authorization": f"Bearer {self.seeded.sandbox_token}", "X-Sandbox-ID": self.seeded.sandbox_id}
        self.ws = await websockets.connect(self.url, additional_headers=headers, max_size=None)
        await self.ws.send(encode(Ready(sandbox_id=self.seeded.sandbox_id, commit="0" * 40, boot_mode="fresh")))
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        async for raw in self.ws:
            command = parse_from_control(raw)
            if isinstance(command, SnapshotCommand):  # settle at once, like an idle sandbox
                await self.ws.send(encode(SnapshotReady(commit="0" * 40, ack_id=f"snap-{loop.time()}")))
                continue
            self.commands.put_nowait((loop.time(), command))

    async def send(self, message: Any) -> None:
        await self.ws.send(encode(message) if not isinstance(message, str) else message)

    async def close(self) -> None:
        if self._reader:
            self._reader.cancel()
        await self.ws.close()


async def subscribe(server: RunningServer, session_id: str) -> Any:
    url = server.url.replace("http://", "ws://") + f"/api/sessions/{session_id}/ws"
    # max_queue=None: a client that stops reading (the run is over) still takes the close handshake
    ws = await websockets.connect(url, max_size=None, max_queue=None)
    await ws.send(json.dumps({"type": "subscribe", "token": server.token}))
    while json.loads(await ws.recv())["type"] != "snapshot":
        pass
    return ws


class LeanHTTP:
    """A keep-alive HTTP/1.1 client on one connection, for timing the server: httpx's own work per
    request (about 3 ms here, against 0.7 ms for the whole round trip of a bare GET) would be most of
    what is measured. Requests go one at a time; responses must carry a Content-Length."""

    def __init__(self, url: str, token: str) -> None:
        self.host, self.port = url.removeprefix("http://").split(":")
        self.token = token
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, int(self.port))
        assert self._reader is not None
        payload = json.dumps(body).encode() if body is not None else b""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {self.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        self._writer.write(head.encode() + payload)  # one write: no Nagle wait between head and body
        status_line = await self._reader.readline()
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        data = await self._reader.readexactly(length)
        return int(status_line.split()[1]), json.loads(data) if data else None

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    line = "  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))
    body = ["  ".join(str(r[c]).rjust(w) for c, w in zip(columns, widths, strict=True)) for r in rows]
    return "\n".join([line, "-" * len(line), *body])

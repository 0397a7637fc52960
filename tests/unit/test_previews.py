"""The previews' pure parts: passes, preview hosts, request heads, and the workspace's declaration."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path

import pytest

from inspect_app.api.preview_server import BadRequest, forwarded_head, parse_head
from inspect_app.control import previews
from inspect_app.control.previews import Passes, Tunnels, parse_host, preview_host
from inspect_app.errors import Conflict
from sandbox.protocol import TunnelClose, TunnelData
from sandbox.runtime.tunnels import declared_previews


def test_a_pass_opens_its_own_sessions_port_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    passes = Passes(b"k" * 32)
    visit = passes.issue("visit", "abc123", 3000, 7)
    found = passes.check(visit, "visit", "abc123", 3000)
    assert found is not None and found.user_id == 7
    assert passes.check(visit, "visit", "abc123", 3001) is None  # another port
    assert passes.check(visit, "visit", "abc124", 3000) is None  # another session
    assert passes.check(visit, "entry", "abc123", 3000) is None  # a visit pass is no entry pass
    assert Passes(b"x" * 32).check(visit, "visit", "abc123", 3000) is None  # another server's key
    payload, _, signature = visit.partition(".")
    assert passes.check(f"{payload}x.{signature}", "visit", "abc123", 3000) is None  # tampered
    assert passes.check("", "visit", "abc123", 3000) is None
    assert passes.check("garbage", "visit", "abc123", 3000) is None
    assert passes.check(f"{payload}.\u00e9", "visit", "abc123", 3000) is None  # not ASCII: refused, not raised
    entry = passes.issue("entry", "abc123", 3000, 7)
    later = time.time() + previews.ENTRY_S + 1
    monkeypatch.setattr(previews.time, "time", lambda: later)
    assert passes.check(entry, "entry", "abc123", 3000) is None  # expired
    assert passes.check(visit, "visit", "abc123", 3000) is not None  # hours long


def test_preview_hosts_name_a_session_and_a_port() -> None:
    host = preview_host("0a1b2c3d4e5f6a7b", 5173, "localhost")
    assert host == "0a1b2c3d4e5f6a7b-5173.localhost"
    assert parse_host(f"{host}:3001") == ("0a1b2c3d4e5f6a7b", 5173)
    assert parse_host("0A1B2C3D4E5F6A7B-5173.LOCALHOST") == ("0a1b2c3d4e5f6a7b", 5173)  # browsers lowercase
    for other in ("localhost:3001", "127.0.0.1", "abc-0.localhost", "abc-70000.localhost", "a_b-80.localhost", ""):
        assert parse_host(other) is None


def test_the_forwarded_head_drops_the_pass_and_keeps_one_request_per_connection() -> None:
    raw = (
        b"GET /a?b=1 HTTP/1.1\r\nHost: s-80.localhost\r\nCookie: x=1; inspect_preview=secret; y=2\r\n"
        b"Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nbody"
    )
    request = parse_head(raw)
    assert request.rest == b"body" and not request.upgrade
    head = forwarded_head(request).decode()
    assert head.startswith("GET /a?b=1 HTTP/1.1\r\nHost: s-80.localhost\r\n")
    assert "Cookie: x=1; y=2\r\n" in head and "secret" not in head
    assert "keep-alive" not in head.lower() and head.endswith("Connection: close\r\n\r\n")

    only_pass = parse_head(b"GET / HTTP/1.1\r\nHost: h\r\nCookie: inspect_preview=s\r\n\r\n")
    assert "Cookie" not in forwarded_head(only_pass).decode()

    upgrade = parse_head(b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    head = forwarded_head(upgrade).decode()
    assert upgrade.upgrade and "Connection: Upgrade\r\n" in head and "close" not in head


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /\r\n\r\n",
        b"HELLO\r\n\r\n",
        b"GET / HTTP/2\r\n\r\n",
        b"GET / HTTP/1.1\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nno-colon\r\n\r\n",
    ],
)
def test_a_malformed_head_is_refused(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_head(raw)


def test_the_workspace_declares_its_preview_ports(tmp_path: Path) -> None:
    assert declared_previews(tmp_path) == ([], [])  # none declared
    (tmp_path / ".inspect").mkdir()
    (tmp_path / ".inspect" / "preview").write_text(
        "# the web app\n5173 Web app\n\n8000   API  # the backend\n5173 again\nhttp://x\n0\n"
        + "".join(f"{9000 + i}\n" for i in range(10))
    )
    ports, problems = declared_previews(tmp_path)
    assert [(p.port, p.label) for p in ports[:2]] == [(5173, "Web app"), (8000, "API")]
    assert len(ports) == 8  # at most MAX_PREVIEWS; a repeated port counts once
    assert any("'http://x'" in p for p in problems) and any("'0'" in p for p in problems)
    assert any("at most 8" in p for p in problems)


class Sandbox:
    """What the control plane sent the sandbox, and whether it is connected."""

    def __init__(self) -> None:
        self.sent: list[object] = []
        self.touched: list[str] = []

    async def send(self, session_id: str, message: object) -> bool:
        self.sent.append(message)
        return True

    async def touch(self, session_id: str) -> None:
        self.touched.append(session_id)


def _data(tid: str, raw: bytes) -> TunnelData:
    return TunnelData(tunnel_id=tid, data=base64.b64encode(raw).decode())


async def test_a_browser_that_stops_reading_ends_its_stream_and_the_sandbox_is_told() -> None:
    sandbox = Sandbox()
    tunnels = Tunnels(send=sandbox.send, touch=sandbox.touch)
    tunnel = await tunnels.open("s1", 5173)
    chunk = b"x" * 48 * 1024
    for _ in range(previews.INBOX_BYTES // len(chunk)):
        tunnels.deliver("s1", _data(tunnel.tunnel_id, chunk))
    assert tunnel.queued <= previews.INBOX_BYTES
    tunnels.deliver("s1", _data(tunnel.tunnel_id, chunk))  # one more than it may hold
    end = await tunnels.receive(tunnel)
    assert isinstance(end, TunnelClose) and end.reason == "the browser fell behind"  # nothing else held
    await asyncio.sleep(0)
    assert isinstance(sandbox.sent[-1], TunnelClose) and sandbox.sent[-1].tunnel_id == tunnel.tunnel_id
    tunnels.deliver("s1", _data(tunnel.tunnel_id, b"late"))  # gone: ignored
    assert tunnel.inbox.empty()


async def test_streams_are_their_sessions_own_and_bounded_per_session() -> None:
    sandbox = Sandbox()
    tunnels = Tunnels(send=sandbox.send, touch=sandbox.touch)
    mine = await tunnels.open("s1", 5173)
    tunnels.deliver("s2", _data(mine.tunnel_id, b"from another sandbox"))
    assert mine.inbox.empty()
    for _ in range(previews.MAX_PER_SESSION - 1):
        await tunnels.open("s1", 5173)
    with pytest.raises(Conflict):
        await tunnels.open("s1", 5173)
    await tunnels.open("s2", 5173)  # another session has its own allowance


async def test_a_preview_counts_as_activity_only_while_its_browser_sends() -> None:
    sandbox = Sandbox()
    tunnels = Tunnels(send=sandbox.send, touch=sandbox.touch)
    assert not tunnels.active_in("s1", 600)
    tunnel = await tunnels.open("s1", 5173)
    assert tunnels.active_in("s1", 600) and sandbox.touched == ["s1"]
    assert not tunnels.active_in("s1", 0)  # nothing sent within the last instant
    assert await tunnels.write(tunnel, b"GET / HTTP/1.1\r\n\r\n")
    tunnels.ended("s1")  # the bridge went away: the browser is told, the sandbox cannot be
    end = await tunnels.receive(tunnel)
    assert isinstance(end, TunnelClose) and end.reason == "the sandbox stopped"
    assert not any(isinstance(m, TunnelClose) for m in sandbox.sent)
    assert not tunnels.active_in("s1", 600)

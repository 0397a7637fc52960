"""The host end of one local sandbox's network: Unix sockets in a directory bound into the sandbox.

The sandbox has loopback only. Its runtime listens on fixed loopback ports (``RELAY_PORTS``) and
carries each connection to the socket of the same name here; this end knows which sandbox it serves
and where each name leads:

- ``bridge``: the control plane's bridge WebSocket, as this sandbox: the host end replaces whatever
  identity the request claims with the sandbox's own (its id and bridge token, which therefore never
  enter the sandbox: nothing in it can carry the token off and connect as the sandbox from elsewhere);
- ``control``: the control plane's API (git credentials and tools, with the agent's tool token);
- ``model``: the model endpoint, when it is plain http (a local server); https ones go by ``egress``;
- ``git``: the git host, when it is plain http (a local server); https ones go by ``egress``;
- ``egress``: the egress proxy (``egress.py``), for everything else, under the sandbox's allowlist.

The directory is the server's (the sandbox can connect to the sockets, not replace them) and the
sandbox sees it read-only; it lies under the data directory, which no sandbox sees otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sandbox.protocol import BRIDGE_PATH, RELAY_PORTS
from sandbox.providers.base import SandboxSpec
from sandbox.providers.egress import EgressProxy
from sandbox.runtime.relays import pipe

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
HEAD_TIMEOUT_S = 10.0
IDENTITY_HEADERS = (b"authorization", b"x-sandbox-id")
Routes = dict[str, tuple[str, int]]
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who the sandbox behind a network is, as its bridge relay presents it."""

    sandbox_id: str
    token: str = dataclasses.field(repr=False)


class SandboxNetwork:
    def __init__(
        self, directory: Path, *, routes: Routes, proxy: EgressProxy, identity: Identity | None = None
    ) -> None:
        self.directory = directory
        self.routes = routes
        self.identity = identity  # a pooled sandbox's is learnt at its claim
        self._proxy = proxy
        self._servers: dict[str, asyncio.base_events.Server] = {}

    async def start(self, *, again: bool = False) -> None:
        """Serve the sockets. ``again``: in the directory a running sandbox already has bound (a
        restarted server adopting it): the same directory, not a new one, is what the sandbox sees,
        so its sockets are made anew in it."""
        if again:
            if not self.directory.is_dir():
                raise FileNotFoundError(f"the relay directory {self.directory} is gone")
            for stale in self.directory.glob("*.sock"):
                stale.unlink()
        else:
            if self.directory.exists():
                shutil.rmtree(self.directory)
            self.directory.mkdir(parents=True, mode=0o755)
            self.directory.chmod(0o755)
        await self._serve("egress", self._proxy.serve)
        for name, (host, port) in self.routes.items():
            await self._serve(name, self._handler(name, host, port))

    async def offer(self, name: str, host: str, port: int) -> None:
        """Route ``name`` to ``host:port`` from now on (a pooled or parked sandbox learns its session's
        control plane at its claim); connections already made keep their way."""
        if self.routes.get(name) != (host, port):
            self.routes[name] = (host, port)
            await self._serve(name, self._handler(name, host, port))

    def _handler(self, name: str, host: str, port: int) -> Handler:
        return self._bridge(host, port) if name == "bridge" else self._forwarder(host, port)

    async def _serve(self, name: str, handler: Handler) -> None:
        path = self.directory / f"{name}.sock"
        previous = self._servers.pop(name, None)
        if previous is not None:
            previous.close()
            path.unlink(missing_ok=True)
        self._servers[name] = await asyncio.start_unix_server(handler, path=str(path))
        path.chmod(0o666)  # the sandbox's uid connects; only the server (root) may replace it

    def _forwarder(self, host: str, port: int) -> Handler:
        async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            upstream = await _far_end(host, port, writer)
            if upstream is not None:
                await pipe(reader, writer, *upstream)

        return forward

    def _bridge(self, host: str, port: int) -> Handler:
        """The bridge's relay: the request head with this sandbox's identity, then a plain pipe."""

        async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError, TimeoutError):
                writer.close()
                return
            identity = self.identity
            rewritten = as_sandbox(head, identity) if identity is not None else None
            if rewritten is None:
                with contextlib.suppress(OSError):
                    writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    await writer.drain()
                writer.close()
                return
            upstream = await _far_end(host, port, writer)
            if upstream is not None:
                upstream[1].write(rewritten)
                await pipe(reader, writer, *upstream)

        return forward

    async def close(self, *, keep_directory: bool = False) -> None:
        """Stop serving; ``keep_directory`` while the sandbox goes on running (the server exits and
        the next one serves the same directory again)."""
        for server in self._servers.values():
            server.close()
        for server in self._servers.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)
        self._servers = {}
        if not keep_directory:
            shutil.rmtree(self.directory, ignore_errors=True)


async def _far_end(
    host: str, port: int, writer: asyncio.StreamWriter
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """A connection to where a route leads; None (and the sandbox's side closed) when it does not answer."""
    try:
        return await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        log.info("relay to %s:%s failed: %s", host, port, exc)
        writer.close()
        return None


def as_sandbox(head: bytes, identity: Identity) -> bytes | None:
    """An HTTP request head from inside a sandbox, made to speak as that sandbox (pure): a GET of the
    bridge's path only, every identity header it carried dropped and the sandbox's own added. None
    for anything else (the relay answers 403)."""
    lines = head.split(b"\r\n")
    method, _, rest = lines[0].partition(b" ")
    target = rest.partition(b" ")[0]
    if method != b"GET" or target.split(b"?", 1)[0] != BRIDGE_PATH.encode():
        return None
    kept = [line for line in lines[1:] if line and line.split(b":", 1)[0].strip().lower() not in IDENTITY_HEADERS]
    ours = [f"Authorization: Bearer {identity.token}".encode(), f"X-Sandbox-ID: {identity.sandbox_id}".encode()]
    return b"\r\n".join([lines[0], *kept, *ours]) + b"\r\n\r\n"


def through_relays(spec: SandboxSpec, control: tuple[str, int] | None) -> tuple[SandboxSpec, Routes, list[str]]:
    """``spec`` as seen from a sandbox on its own network (pure): the control plane, and a model or
    git host on plain http, are reached at the relay ports instead; https hosts by name through the
    egress proxy (returned to be allowed). Also the routes the host end needs."""
    routes: Routes = {}
    changes: dict[str, Any] = {}
    bridge = urlsplit(spec.bridge_url)
    target = (bridge.hostname, bridge.port or 80) if bridge.hostname else control
    if target is not None:
        routes["control"] = routes["bridge"] = (str(target[0]), int(target[1]))
        if spec.bridge_url:
            changes["bridge_url"] = relocate(spec.bridge_url, RELAY_PORTS["bridge"])
            changes["token"] = ""  # the bridge relay presents it (``as_sandbox``)
        if spec.api_url:
            changes["api_url"] = relocate(spec.api_url, RELAY_PORTS["control"])
    allow: list[str] = list(spec.egress_hosts)
    for name, route in (("llm_base_url", "model"), ("repo_url", "git")):
        url = urlsplit(getattr(spec, name))
        if url.scheme == "http" and url.hostname:
            routes[route] = (url.hostname, url.port or 80)
            changes[name] = relocate(getattr(spec, name), RELAY_PORTS[route])
        elif url.scheme == "https" and url.hostname:
            allow.append(url.hostname)
    return dataclasses.replace(spec, **changes), routes, allow


def relocate(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the sandbox's loopback relay port."""
    parts = urlsplit(url)
    netloc = f"127.0.0.1:{port}"
    if parts.username:
        netloc = f"{parts.username}{':' + parts.password if parts.password else ''}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def proxy_environment() -> dict[str, str]:
    """What points a sandbox's tools at its egress proxy (and keeps its own loopback direct)."""
    proxy = f"http://127.0.0.1:{RELAY_PORTS['egress']}"
    local = "127.0.0.1,localhost,::1"
    return {
        **{name: proxy for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")},
        "NO_PROXY": local,
        "no_proxy": local,
    }

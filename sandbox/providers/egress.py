"""Where a local sandbox may connect outside: the egress policy and the proxy that applies it.

A sandbox has no network of its own (a private network namespace, loopback only). What it may reach
outside goes through this proxy — HTTP ``CONNECT`` for https, absolute-form requests for plain http —
and only to hosts on its allowlist (the package registries its setup needs, the model's and the git
host's names when they are https). Whatever a name resolves to, an address that is not global
(loopback, link-local, private, the machine's own) is refused: the host's services and the internal
network stay out of reach, and the proxy connects to the address it checked (no second lookup for
DNS rebinding to change). A small asyncio proxy rather than a library: the two request forms are all
a sandbox's tools send, and the policy sits in the middle of the connect step.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sandbox.runtime.relays import pipe

log = logging.getLogger(__name__)

HEAD_LIMIT = 64 * 1024
CONNECT_TIMEOUT_S = 10.0
HEAD_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class EgressPolicy:
    """Allowed host names (``example.com``, or ``.example.com`` for it and every subdomain)."""

    hosts: frozenset[str]

    @classmethod
    def of(cls, hosts: Iterable[str]) -> EgressPolicy:
        return cls(frozenset(h.strip().lower().rstrip(".") for h in hosts if h.strip()))

    def refusal(self, host: str) -> str | None:
        """Why ``host`` may not be reached by name (None: it may, if it resolves to global addresses)."""
        name = host.lower().rstrip(".")
        if name in self.hosts or any(h.startswith(".") and (name.endswith(h) or name == h[1:]) for h in self.hosts):
            return None
        return "not on this sandbox's egress allowlist"


LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
HOST_ENTRY = re.compile(rf"^\.?(?=.{{1,253}}$){LABEL}(\.{LABEL})*$")


def entry_problem(entry: str) -> str | None:
    """Why ``entry`` is no allowlist entry (``example.com``, or ``.example.com`` with its subdomains)."""
    name = entry.strip().lower().rstrip(".")
    if not HOST_ENTRY.match(name):
        return f"{entry.strip()[:100]!r} is not a host name (like registry.npmjs.org, or .example.com)"
    return None


# Never reachable through the proxy, whatever a name resolves to: the internal networks (and the
# machine's own addresses, read when the proxy starts).
INTERNAL = [
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7", "fe80::/10")
]


def own_addresses() -> frozenset[str]:
    """This machine's interface addresses (IPv4 from the kernel's local routes, IPv6 per interface)."""
    found: set[str] = set()
    with contextlib.suppress(OSError):
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
        for previous, line in itertools.pairwise(lines):
            if "/32 host LOCAL" in line:
                found.add(previous.strip().split()[-1])
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            raw = line.split()[0]
            found.add(str(ipaddress.ip_address(int(raw, 16))))
    return frozenset(found)


def usable_addresses(infos: Iterable[tuple], own: frozenset[str]) -> tuple[list[str], str | None]:
    """The addresses of a ``getaddrinfo`` answer, or why none may be used (one host or internal
    address refuses them all: a name that points inside is an attack, not a mistake)."""
    addresses = [info[4][0] for info in infos]
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        inside = ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast
        if inside or address in own or any(ip in net for net in INTERNAL if net.version == ip.version):
            return [], f"it resolves to {address}, a host or internal address"
    return (addresses, None) if addresses else ([], "it does not resolve")


@dataclass(frozen=True)
class Request:
    """The head of a proxy request: where to, and what to send on (absolute-form: rewritten)."""

    host: str
    port: int
    tunnel: bool  # CONNECT: after "200", bytes flow both ways untouched
    forward: bytes  # the request head to send on (empty for a tunnel)


def parse_head(head: bytes) -> Request:
    """A proxy request head (pure); ValueError when it is not one we serve."""
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ")
    if method == "CONNECT":
        host, _, port = target.rpartition(":")
        return Request(host=host.strip("[]"), port=int(port), tunnel=True, forward=b"")
    url = urlsplit(target)
    if url.scheme != "http" or not url.hostname:
        raise ValueError("only CONNECT and absolute http:// requests go through this proxy")
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    kept = [line for line in lines[1:] if line and not line.lower().startswith(("proxy-", "connection:"))]
    forward = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""]).encode("latin-1")
    return Request(host=url.hostname, port=url.port or 80, tunnel=False, forward=forward)


class EgressProxy:
    """Serves one sandbox's proxy connections under ``policy``; ``denied(host, reason)`` hears refusals."""

    def __init__(self, policy: EgressPolicy, *, denied: Callable[[str, str], None]) -> None:
        self._policy = policy
        self._denied = denied
        self._own = own_addresses()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
            request = parse_head(head)
        except (ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError) as exc:
            await _answer(writer, 400, f"Inspect's egress proxy: not a proxy request ({exc})")
            return
        reason = self._policy.refusal(request.host)
        addresses: list[str] = []
        if reason is None:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(request.host, request.port)
            except OSError:
                infos = []
            addresses, reason = usable_addresses(infos, self._own)
        if reason is not None:
            self._denied(request.host, reason)
            await _answer(
                writer,
                403,
                f"Inspect refused {request.host}: {reason}. An admin can allow it "
                "(INSPECT_EGRESS_ALLOW, or the repository's egress hosts).",
            )
            return
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(addresses[0], request.port), CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError) as exc:
            await _answer(writer, 502, f"Inspect could not reach {request.host}: {exc}")
            return
        if request.tunnel:
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        else:
            upstream_writer.write(request.forward)
        await pipe(reader, writer, upstream_reader, upstream_writer)


async def _answer(writer: asyncio.StreamWriter, status: int, message: str) -> None:
    body = (message + "\n").encode()
    reason = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}[status]
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
    writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
    with contextlib.suppress(OSError, ConnectionError):
        await writer.drain()
    writer.close()
    with contextlib.suppress(OSError, ConnectionError):
        await writer.wait_closed()

"""A sandbox's own network, tried as a prompt-injected agent would: reach the host's services, send
data anywhere. Only the relays (control plane, model) and the egress proxy's allowlist get through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.protocol import RELAY_PORTS
from sandbox.providers.egress import EgressPolicy, own_addresses, parse_head, usable_addresses
from sandbox.providers.local import LocalProvider
from tests.fakes.llm_server import FakeLLM
from tests.integration.sandbox_harness import (
    OPENCODE_BIN,
    PLUGIN_TEMPLATE,
    agent_runs,
    local_sandbox,
    make_origin,
    require_opencode,
)

pytestmark = pytest.mark.timeout(180)

REGISTRY = "registry.npmjs.org"  # reachable from this kind of machine (and CI): the package registries are


def listening_ports() -> set[int]:
    """TCP ports the host listens on (what ``ss -ltn`` shows), from /proc."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.fixture
async def provider(tmp_path: Path) -> AsyncIterator[LocalProvider]:
    require_opencode()
    networked = LocalProvider(
        data_dir=tmp_path / "data",
        opencode_bin=str(OPENCODE_BIN),
        plugin_template=PLUGIN_TEMPLATE,
        egress_allow=("pypi.org",),  # the installation's list; the registry is on the repository's own
    )
    if not networked.isolated:
        pytest.skip("needs bubblewrap")
    yield networked
    await networked.close()


async def test_the_host_is_out_of_reach_and_egress_follows_the_allowlist(
    provider: LocalProvider, tmp_path: Path
) -> None:
    denied: list[tuple[str, str]] = []
    provider.on_egress_denied = lambda session, host, _why: denied.append((session, host))
    host_ports = sorted(listening_ports() - set(RELAY_PORTS.values()))
    assert host_ports  # PostgreSQL, Redis, the fake control plane and model at least
    llm = FakeLLM()
    origin = make_origin(tmp_path)
    async with local_sandbox(tmp_path / "data", origin, llm, provider=provider, egress_hosts=(REGISTRY,)) as sb:
        await sb.control.wait_type("ready", timeout=90)
        out = f"{sb.inner_root}/state/net.txt"
        probe = "timeout 3 bash -c '</dev/tcp/{0}/{1}' 2>/dev/null; echo {0}:{1}=$?"
        checks = [probe.format("127.0.0.1", port) for port in host_ports]
        checks += [probe.format("localhost", 5432)]
        # CONNECT's answer, then the request's
        curl = "curl -s -o /dev/null -w '%{http_connect}:%{http_code}' --max-time 20"
        checks += [
            f'echo "unlisted=$({curl} https://example.com/)"',
            f'echo "loopback_by_proxy=$({curl} --noproxy  -x $HTTPS_PROXY http://127.0.0.1:{{host_ports[0]}}/)"',
            f'echo "registry=$({curl} https://{REGISTRY}/)"',
        ]
        await agent_runs(sb, llm, "(" + "; ".join(checks) + f") > {out} 2>&1")
        seen = dict(line.split("=", 1) for line in (sb.root / "state" / "net.txt").read_text().splitlines())

    reachable = [target for target, code in seen.items() if ":" in target and code == "0"]
    assert reachable == [], f"host ports reachable from the sandbox: {reachable}"
    assert seen["unlisted"] == "403:000"  # refused by the proxy (the reason is in the body)
    assert seen["loopback_by_proxy"] == "000:403"  # the host's own address, whatever the allowlist says
    assert seen["registry"] == "200:200"
    assert ("sess-1", "example.com") in denied and denied.count(("sess-1", "example.com")) == 1


def test_the_policy_allows_names_on_the_list_and_only_global_addresses() -> None:
    policy = EgressPolicy.of(["pypi.org", ".githubusercontent.com"])
    assert policy.refusal("pypi.org") is None and policy.refusal("PyPI.org.") is None
    assert policy.refusal("objects.githubusercontent.com") is None and policy.refusal("githubusercontent.com") is None
    assert policy.refusal("evil.example") and policy.refusal("pypi.org.evil.example")
    info = [(2, 1, 6, "", ("151.101.0.223", 443))]
    own = frozenset({"192.0.2.2"})
    assert usable_addresses(info, own) == (["151.101.0.223"], None)
    internal = ["127.0.0.1", "10.0.0.5", "172.20.1.1", "192.168.1.1", "169.254.169.254", "::1", "192.0.2.2"]
    for inner in [*internal, "0.0.0.0"]:
        addresses, reason = usable_addresses([*info, (10, 1, 6, "", (inner, 443))], own)
        assert addresses == [] and reason and inner in reason
    assert "127.0.0.1" in own_addresses()  # read from the kernel


def test_proxy_requests_are_parsed_and_forwarded_without_proxy_headers() -> None:
    tunnel = parse_head(b"CONNECT pypi.org:443 HTTP/1.1\r\nHost: pypi.org:443\r\n\r\n")
    assert (tunnel.host, tunnel.port, tunnel.tunnel) == ("pypi.org", 443, True)
    plain = parse_head(
        b"GET http://deb.debian.org/debian?x=1 HTTP/1.1\r\nHost: deb.debian.org\r\nProxy-Authorization: b\r\n\r\n"
    )
    assert (plain.host, plain.port, plain.tunnel) == ("deb.debian.org", 80, False)
    assert plain.forward.startswith(b"GET /debian?x=1 HTTP/1.1\r\nHost: deb.debian.org\r\n")
    assert b"Proxy-Authorization" not in plain.forward
    with pytest.raises(ValueError, match="http"):
        parse_head(b"GET /relative HTTP/1.1\r\n\r\n")

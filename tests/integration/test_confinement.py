"""Confinement, tried as an attacker steering the agent would: a prompt makes it run shell commands.

Each test runs the attack in a real local sandbox (bubblewrap, the real OpenCode, a scripted model)
and looks at the outcome from the host. CI runs these as root, the case that matters most.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sandbox.providers.base import SandboxSpec, refused_variable
from sandbox.providers.local import LocalProvider
from tests.fakes.llm_server import FakeLLM
from tests.integration.sandbox_harness import (
    OPENCODE_BIN,
    PLUGIN_TEMPLATE,
    LocalSandbox,
    agent_runs,
    local_sandbox,
    make_origin,
    require_opencode,
    sandbox_processes,
)

pytestmark = pytest.mark.timeout(180)

REPO_SECRET = "repo-secret-value-7f3a9c"
PG_SOCKET = "/run/postgresql/.s.PGSQL.5432"  # the machine's PostgreSQL (CI runs one)


@pytest.fixture(autouse=True)
def _needs_opencode() -> None:
    require_opencode()


def report(sb: LocalSandbox) -> dict[str, str]:
    """``name=value`` lines the attack wrote to state/attack.txt."""
    lines = (sb.root / "state" / "attack.txt").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def host_processes_holding(value: bytes) -> list[str]:
    """Those of ``processes_holding(value)`` in our own PID namespace (the host's, not a sandbox's)."""
    own = Path("/proc/self/ns/pid").readlink()
    found = []
    for holder in processes_holding(value):
        try:
            if Path(f"/proc/{holder.split(':')[0]}/ns/pid").readlink() == own:
                found.append(holder)
        except OSError:
            continue
    return found


def processes_holding(value: bytes) -> list[str]:
    """Every process (any uid, any namespace) whose argv or environment contains ``value``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        for part in ("environ", "cmdline"):
            try:
                if value in (entry / part).read_bytes():
                    found.append(f"{entry.name}:{part}")
            except OSError:
                continue
    return found


def files_holding(root: Path, value: bytes) -> list[Path]:
    """The regular files under ``root`` that contain ``value`` (a whole tree: read in a thread)."""
    return [f for f in root.rglob("*") if f.is_file() and not f.is_symlink() and value in f.read_bytes()]


def memory_holding(pids: list[int], value: bytes) -> list[int]:
    """Those of ``pids`` whose memory holds ``value`` (read as root reads it: every readable mapping
    of up to 1 GiB)."""
    found = []
    for pid in pids:
        try:
            maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
            with open(f"/proc/{pid}/mem", "rb", buffering=0) as memory:
                for line in maps:
                    span, perms = line.split()[:2]
                    start, end = (int(x, 16) for x in span.split("-"))
                    if not perms.startswith("r") or end - start > 1 << 30:
                        continue
                    try:
                        memory.seek(start)
                        if value in memory.read(end - start):
                            found.append(pid)
                            break
                    except (OSError, OverflowError, ValueError):
                        continue
        except OSError:
            continue
    return found


async def test_the_agent_is_unprivileged_and_sees_nothing_of_the_host(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "secret.key").write_text("top secret key material\n")
    neighbour = data_dir / "sandboxes" / "other-session" / "workspace"
    neighbour.mkdir(parents=True)
    (neighbour / "notes.txt").write_text("the other session's work\n")
    origin = make_origin(tmp_path)
    llm = FakeLLM()
    async with local_sandbox(data_dir, origin, llm, env_secrets={"DEPLOY_KEY": REPO_SECRET}) as sb:
        await sb.control.wait_type("ready", timeout=90)
        out = f"{sb.inner_root}/state/attack.txt"
        attack = "; ".join(
            [
                f'echo "uid=$(id -u)" > {out}',
                f'echo "capeff=$(grep CapEff /proc/self/status | cut -f2)" >> {out}',
                f"umount {sb.inner_root} 2>/dev/null; echo umount=$? >> {out}",
                f"umount {data_dir} 2>/dev/null; echo umount_data=$? >> {out}",
                f"mount -o remount,rw / 2>/dev/null; echo remount=$? >> {out}",
                f"cat /etc/shadow >/dev/null 2>&1; echo shadow=$? >> {out}",
                f"cat {data_dir}/secret.key >/dev/null 2>&1; echo data_dir=$? >> {out}",
                f"cat {neighbour}/notes.txt >/dev/null 2>&1; echo neighbour=$? >> {out}",
                f"cat {sb.root}/../other-session/workspace/notes.txt >/dev/null 2>&1; echo neighbour_rel=$? >> {out}",
                f"touch /usr/pwned 2>/dev/null; echo write_usr=$? >> {out}",
                f"test -S {PG_SOCKET}; echo pg_socket=$? >> {out}",  # trust auth, often
                # every environment the agent can read (the runtime's is closed to it: not dumpable)
                f"for f in /proc/[0-9]*/environ; do cat $f; echo; done > {sb.inner_root}/state/environs 2>/dev/null",
                f'echo "secret_in_env=$DEPLOY_KEY" >> {out}',
            ]
        )
        await agent_runs(sb, llm, attack)
        seen = report(sb)
        assert seen["uid"] != "0"
        assert int(seen["capeff"], 16) == 0
        assert seen["umount"] != "0" and seen["umount_data"] != "0" and seen["remount"] != "0"
        assert seen["shadow"] != "0"
        assert seen["data_dir"] != "0" and seen["neighbour"] != "0" and seen["neighbour_rel"] != "0"
        assert seen["write_usr"] != "0"
        assert seen["pg_socket"] != "0"  # /run is hidden: the host's Unix sockets are not there
        environs = (sb.root / "state" / "environs").read_text(errors="replace")
        assert REPO_SECRET in environs  # the dump read what it could (its own shell's)...
        assert sb.spec.token not in environs  # ...and the bridge token was in none of it
        assert seen["secret_in_env"] == REPO_SECRET  # the agent gets the repository's secrets, by design
        assert not await asyncio.to_thread(Path("/usr/pwned").exists)

        # From the host: neither the secret nor the bridge token is in any host process's argv or
        # environment (bwrap's command line, its environment, the launcher's); the token in no process
        # at all, the secret only in the agent's own processes, inside the sandbox's PID namespace.
        assert host_processes_holding(REPO_SECRET.encode()) == []
        assert processes_holding(sb.spec.token.encode()) == []
        # The bridge token is not in the sandbox at all (its relay presents it): in no file of it and
        # in the memory of none of its processes, so nothing in it can carry the token off
        inside = sorted(set(await asyncio.to_thread(sandbox_processes, "sess-1")))
        assert inside and sb.control.connected  # it runs, and its bridge is connected
        assert await asyncio.to_thread(memory_holding, inside, sb.spec.token.encode()) == []
        assert await asyncio.to_thread(files_holding, sb.root, sb.spec.token.encode()) == []


async def test_opening_the_changes_runs_none_of_the_agents_git_configuration_on_the_host(tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    markers = tmp_path / "host-markers"
    markers.mkdir(mode=0o777)
    markers.chmod(0o777)  # even were the sandbox's uid to reach it, it could write here
    llm = FakeLLM()
    async with local_sandbox(tmp_path / "data", origin, llm) as sb:
        await sb.control.wait_type("ready", timeout=90)
        hooks = {
            "diff.external": f"touch {markers}/external #",
            "core.fsmonitor": f"touch {markers}/fsmonitor #",
            "diff.evil.textconv": f"touch {markers}/textconv; cat",
            "filter.evil.clean": f"touch {markers}/clean; cat",
        }
        setup = [f"git config {key} '{value}'" for key, value in hooks.items()]
        setup += ["echo '*.md diff=evil filter=evil' > .gitattributes", "echo 'a change' >> README.md"]
        await agent_runs(sb, llm, " && ".join(setup))

        diff = await sb.provider.diff("sess-1", "main")  # what the session page's Changes shows

        assert diff is not None and "+a change" in diff
        assert sorted(p.name for p in markers.iterdir()) == []
        # once the sandbox is gone nothing runs in its tree: the last diff read is what shows
        await sb.provider.stop(sb.handle)
        assert await sb.provider.diff("sess-1", "main") == diff


async def test_without_bubblewrap_a_sandbox_refuses_to_start_unless_unconfined_is_chosen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no bwrap to find
    refusing = LocalProvider(data_dir=tmp_path / "a", opencode_bin=str(OPENCODE_BIN), plugin_template=PLUGIN_TEMPLATE)
    assert not refusing.isolated and "bubblewrap" in refusing.refusal
    spec = SandboxSpec(session_id="s", sandbox_id="x", repo_url="/nowhere", branch="main", bridge_url="", token="t")
    with pytest.raises(Exception, match="INSPECT_SANDBOX_ISOLATION=none"):
        await refusing.spawn(spec)
    assert not (tmp_path / "a" / "sandboxes" / "s" / "supervisor.log").exists()
    chosen = LocalProvider(data_dir=tmp_path / "b", opencode_bin=str(OPENCODE_BIN), isolate=False)
    assert chosen.refusal == "" and not chosen.isolated


@pytest.mark.parametrize("name", ["LD_PRELOAD", "ld_library_path", "BASH_ENV", "ENV", "NODE_OPTIONS", "PYTHONPATH"])
def test_loader_and_interpreter_hooks_cannot_be_secret_names(name: str) -> None:
    assert refused_variable(name)
    spec = SandboxSpec(
        session_id="s", sandbox_id="x", repo_url="/r", branch="main", bridge_url="", token="t", secrets={name: "x"}
    )
    assert name not in spec.environment()  # one stored before the rule never reaches a sandbox either
    assert refused_variable("DEPLOY_KEY") is None and refused_variable("NODE_ENV") is None

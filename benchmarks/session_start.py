"""Time to a ready sandbox: fresh vs prebuilt image vs snapshot restore vs warm.

Real local sandboxes (bubblewrap when it works), the real OpenCode, a scripted model. The sample
repository's ``.inspect/setup.sh`` installs dependencies (a virtualenv plus a package from the
package index), as real projects do; a fresh boot pays for it, an image or snapshot boot does not.

- fresh:    spawn → clone → setup.sh → start.sh → OpenCode → ``ready``
- image:    start from the prebuilt image → fetch + reset to the tip → start.sh → OpenCode → ``ready``
- pooled:   the same start when the warm pool holds a sandbox booted from that image (start.sh run,
            OpenCode warm): claim it → fetch + reset to the tip → ``ready``
- snapshot: restore the session's snapshot → ``ready``
- parked:   the same restore when its sandbox was parked at the idle stop (kept running): claim it
            → ``ready``
- warm:     the sandbox was started while the person typed (it is ready): from sending the prompt to
            the agent's first event, with a model that answers at once. Broken down as ``warm_to_model``
            (the prompt sent → the model asked: our runtime, then OpenCode) and ``warm_from_model``
            (the model asked → its first words at the control plane: OpenCode, the translator, the
            bridge).

Each kind runs twice in one run: with the host's network and no resource limits (``host``), and with
a network of the sandbox's own (relays, egress proxy) and cgroup limits (``own``, the default).

Run: ``.venv/bin/python benchmarks/session_start.py [--runs N]``. Prints a table, then one JSON
object on the last line: ``{"host": {...}, "own": {...}}``, each ``{"fresh_s", "image_s",
"snapshot_s", "warm_s", "warm_to_model_s", "warm_from_model_s", "image_pooled_s", "snapshot_parked_s",
"pooled_rss_mb"}`` (medians;
``image_s`` and ``snapshot_s`` are the cold starts, without a pooled or parked sandbox).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox.protocol import Author, ParkCommand, PromptCommand, ShutdownCommand, SnapshotCommand  # noqa: E402
from sandbox.providers.base import SandboxSpec  # noqa: E402
from sandbox.providers.limits import Limits  # noqa: E402
from sandbox.providers.local import LocalProvider  # noqa: E402
from sandbox.providers.processes import descendants  # noqa: E402
from tests.fakes.control_plane import FakeControlPlane  # noqa: E402
from tests.fakes.llm_server import FakeLLM, Turn  # noqa: E402
from tests.integration.sandbox_harness import OPENCODE_BIN, PLUGIN_TEMPLATE, make_origin, make_spec  # noqa: E402

SETUP = """set -e
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check idna==3.10 || echo "package index unreachable"
echo ok > .deps-ready
"""
READY_TIMEOUT_S = 300


@dataclass
class Boot:
    ready_s: float
    warm_s: float = 0.0  # fresh boots only: prompt → first agent event once ready
    warm_to_model_s: float = 0.0  # of which: prompt sent → the model asked (the runtime, then OpenCode)
    warm_from_model_s: float = 0.0  # and: the model asked → its first words reach the control plane
    snapshot_ref: str = ""  # fresh and snapshot boots: the snapshot taken before it stopped (or parked)


async def boot(provider: LocalProvider, origin: Path, llm: FakeLLM, mode: str, ref: str = "") -> Boot:
    """Start one sandbox in ``mode`` and time it; leaves nothing running."""
    sandbox_id = f"sbx{secrets.token_hex(4)}"
    token = f"sbx_{secrets.token_urlsafe(16)}"
    control = await FakeControlPlane(token=token, sandbox_id=sandbox_id).start()
    spec = make_spec(origin, llm, control, sandbox_id=sandbox_id, token=token)
    started = time.monotonic()
    if mode in ("image", "pooled"):
        handle = await provider.start_from_image(ref, spec)
    elif mode in ("snapshot", "parked"):
        handle = await provider.restore(ref, spec)
    else:
        handle = await provider.spawn(spec)
    try:
        await control.wait_type("ready", timeout=READY_TIMEOUT_S)
        result = Boot(ready_s=time.monotonic() - started)
        if mode == "fresh":  # the warm case and the snapshot both start from this sandbox
            llm.add(Turn(text="Ready when you are."))
            asked_before = len(llm.agent_asked_at())
            sent = time.monotonic()
            await control.send(
                PromptCommand(message_id="m1", content="hello", author=Author(name="Ada", email="ada@example.com"))
            )
            await control.wait_for(
                lambda ms: any(m.type in ("token", "tool_call") for m in ms), timeout=60, what="first agent event"
            )
            arrived = time.monotonic()
            result.warm_s = arrived - sent
            asked = llm.agent_asked_at()[asked_before]
            result.warm_to_model_s, result.warm_from_model_s = asked - sent, arrived - asked
            await control.wait_type("execution_complete", message_id="m1", timeout=60)
        if mode in ("fresh", "snapshot"):
            await control.send(SnapshotCommand())
            await control.wait_type("snapshot_ready", timeout=60)
            result.snapshot_ref = await provider.snapshot(handle)
        if mode == "snapshot" and await provider.park(handle, result.snapshot_ref):
            await control.send(ParkCommand())  # an idle stop that keeps it: the parked case resumes it
            await until_exists(provider.sandbox_dir(spec.session_id) / "state" / "parked")
            return result
        await control.send(ShutdownCommand())
        return result
    finally:
        await provider.stop(handle)
        await control.close()


async def until_exists(path: Path) -> None:
    deadline = time.monotonic() + 60
    while not await asyncio.to_thread(path.exists):
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} never appeared")
        await asyncio.sleep(0.02)


async def pool_ready(provider: LocalProvider, pool: tuple[str, str]) -> float:
    """Until the pool holds a standby that finished booting (OpenCode warm); its memory then, in MB."""
    await provider.pool.settled()
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        for standby in provider.pool.standbys(pool):
            if standby.ready:
                return rss_mb([standby.process.pid, *descendants(standby.process.pid)])
        if time.monotonic() > deadline:
            raise SystemExit("no pooled sandbox became ready")
        await asyncio.sleep(0.05)


def rss_mb(pids: list[int]) -> float:
    """Resident memory of these processes (what an idle pooled sandbox costs)."""
    total_kb = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total_kb += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total_kb / 1024


async def measure(provider: LocalProvider, origin: Path, runs: int) -> dict[str, float]:
    """Every kind of start, ``runs`` times, on one provider: the medians (and a standby's memory)."""
    results: dict[str, list[float]] = {
        "fresh": [],
        "image": [],
        "pooled": [],
        "snapshot": [],
        "parked": [],
        "warm": [],
        "warm_to_model": [],
        "warm_from_model": [],
    }
    memory: list[float] = []
    with FakeLLM() as llm:
        build_spec = SandboxSpec(
            session_id="build-1", sandbox_id="build-1", repo_url=str(origin), branch="main", bridge_url="", token=""
        )
        built = await provider.build_image(build_spec, timeout_s=600)
        if not built.ok:
            raise SystemExit(f"the image build failed:\n{built.log_tail}")
        # every boot's spec is make_spec's: sessions like it (identity aside) share one pool
        like_sessions = make_spec(origin, llm, SimpleNamespace(url=""), sandbox_id="", token="")  # type: ignore[arg-type]
        for _ in range(runs):
            fresh = await boot(provider, origin, llm, "fresh")
            results["fresh"].append(fresh.ready_s)
            results["warm"].append(fresh.warm_s)
            results["warm_to_model"].append(fresh.warm_to_model_s)
            results["warm_from_model"].append(fresh.warm_from_model_s)
            restored = await boot(provider, origin, llm, "snapshot", fresh.snapshot_ref)
            results["snapshot"].append(restored.ready_s)
            results["parked"].append((await boot(provider, origin, llm, "parked", restored.snapshot_ref)).ready_s)
            results["image"].append((await boot(provider, origin, llm, "image", built.ref)).ready_s)
            await provider.prewarm(built.ref, like_sessions, 1)
            memory.append(await pool_ready(provider, (str(origin), "main")))
            results["pooled"].append((await boot(provider, origin, llm, "pooled", built.ref)).ready_s)
            await provider.prewarm(built.ref, like_sessions, 0)
            await provider.pool.settled()  # no standby competes with the next run's cold starts
    await provider.close()
    names = {"pooled": "image_pooled_s", "parked": "snapshot_parked_s"}
    medians = {names.get(k, f"{k}_s"): round(statistics.median(v), 3) for k, v in results.items()}
    medians["pooled_rss_mb"] = round(statistics.median(memory), 1)
    return medians


async def main(runs: int) -> dict[str, dict[str, float]]:
    """The same starts with the host's network and no limits ("host"), then with a network of the
    sandbox's own and resource limits ("own", the default), in one run: compare as ratios."""
    work = Path(tempfile.mkdtemp(prefix="inspect-bench-start-"))
    origin = make_origin(work, {".inspect/setup.sh": SETUP, ".inspect/start.sh": "true\n"})
    figures: dict[str, dict[str, float]] = {}
    for name, own, limits in (("host", False, None), ("own", True, Limits(4096, 2048, 100))):
        provider = LocalProvider(
            data_dir=work / f"data-{name}",
            opencode_bin=str(OPENCODE_BIN),
            plugin_template=PLUGIN_TEMPLATE,
            park_capacity=1,
            own_network=own,
            limits=limits,
            egress_allow=("pypi.org", "files.pythonhosted.org"),
        )
        isolation = "bubblewrap" if provider.isolated else "none"
        print(f"{name}: isolation {isolation}, own network {own}, limits {'on' if limits else 'off'}", flush=True)
        figures[name] = await measure(provider, origin, runs)
    print(f"runs: {runs}")
    print(f"{'start':<16}{'host net s':>12}{'own net s':>12}{'own/host':>10}")
    print("-" * 50)
    for key in figures["host"]:
        before, after = figures["host"][key], figures["own"][key]
        print(f"{key:<16}{before:>12.3f}{after:>12.3f}{(after / before if before else 0):>9.2f}x")
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    figures = asyncio.run(main(parser.parse_args().runs))
    print(json.dumps(figures))

"""Smoke test of the Modal provider on a real Modal account: boots, snapshots and images, timed.

Needs Modal credentials: ``MODAL_TOKEN_ID``/``MODAL_TOKEN_SECRET``, or a profile in
``~/.modal.toml`` (``modal token new``; ``MODAL_CONFIG_PATH`` points elsewhere). Without them it
prints why and ``{"skipped": true, ...}`` and exits 0, so it can sit in any pipeline.

With them it drives ``ModalProvider`` (the real ``modal`` SDK, nothing faked) through what a
session does, and times each step:

- ``spawn_ready_s``: ``spawn`` → the runtime answers inside the sandbox (its package imports from
  ``PYTHONPATH`` and the OpenCode plugin's ``.js`` files are there). The first run on an account
  also waits for Modal to build the base image (minutes, once);
- ``snapshot_s``, then ``snapshot_boot_s``: ``restore`` of that snapshot → the runtime answers;
- ``image_build_s`` (clone ``--repo`` + setup.sh in a build sandbox, then its snapshot), then
  ``image_boot_s``: ``start_from_image`` → the runtime answers; ``token_in_image`` must be false;
- ``sandbox_s`` (the sandboxes' lives added up, what Modal bills) and ``estimated_cost_usd``.

Its sandboxes point at a bridge that does not resolve (``bridge.invalid``): the runtime keeps
trying to connect and the sandbox stays up for the probes. With ``--public-url`` (where Modal can
reach an Inspect started here, e.g. a tunnel to ``--port``) it then also runs one real session end
to end — prompt in, events out — and adds ``session_ready_s`` and ``prompt_s``.

Everything it starts is terminated, and its images deleted, however it ends. The figures are one
JSON line on stdout; progress goes to stderr. Exit status: 0 (done or skipped), 1 (a step failed).

    .venv/bin/python scripts/modal_smoke.py --repo https://github.com/octocat/Hello-World.git
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox.providers.base import ProviderError, SandboxHandle, SandboxSpec  # noqa: E402

# USD per physical core-second and per GiB-second of a Modal Sandbox, as published when this was
# written: an estimate to check against modal.com/pricing (``--cpu-rate``/``--memory-rate``).
CPU_CORE_S_USD = 0.00003942
MEMORY_GIB_S_USD = 0.00000672
UNREACHABLE_BRIDGE = "wss://bridge.invalid/api/sandbox/ws"  # .invalid never resolves (RFC 6761)
PROBE = (
    "python",
    "-c",
    "import sandbox.runtime.supervisor, sandbox.runtime.agent_config as c; "
    "assert sorted(c.PLUGIN_SOURCE.glob('*.js')), 'no plugin files'",
)
NO_TOKEN = ("test", "!", "-e", "/sandbox/state/tool-token")
PROBE_TIMEOUT_S = 300  # the first exec waits for the sandbox to be scheduled


class SmokeFailure(Exception):
    """A step did not do what a session needs."""


def credentials() -> str | None:
    """Where Modal credentials would come from (for the record), or None when there are none."""
    if os.environ.get("MODAL_TOKEN_ID") and os.environ.get("MODAL_TOKEN_SECRET"):
        return "environment"
    path = Path(os.environ.get("MODAL_CONFIG_PATH") or Path.home() / ".modal.toml")
    try:
        config = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    for name, profile in config.items():
        if isinstance(profile, dict) and profile.get("token_id") and profile.get("token_secret"):
            return f"{path} [{name}]"
    return None


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Smoke:
    """One run: the provider, what it started (to clean up) and the figures."""

    def __init__(self, args: argparse.Namespace, sdk: Any) -> None:
        from sandbox.providers.modal import ModalProvider

        self.modal = sdk  # the ``modal`` module (a test passes its fake)
        self.args = args
        self.provider = ModalProvider(
            sdk=sdk, app_name=args.app, cpu=args.cpu, memory_mb=args.memory_mb, lifetime_s=args.lifetime_s,
            egress_allow=tuple(args.egress),
        )  # fmt: skip
        self.figures: dict[str, Any] = {}
        self.started: dict[str, float] = {}  # provider id → when it was created
        self.sandbox_s = 0.0
        self.refs: list[str] = []

    def spec(self, name: str, **overrides: Any) -> SandboxSpec:
        fields: dict[str, Any] = {
            "session_id": f"smoke-{name}",
            "sandbox_id": f"smoke-{name}-{secrets.token_hex(4)}",
            "repo_url": self.args.repo,
            "branch": self.args.branch,
            "bridge_url": UNREACHABLE_BRIDGE,
            "token": secrets.token_hex(16),
        }
        return SandboxSpec(**{**fields, **overrides})

    async def boot(self, figure: str, start: Any) -> SandboxHandle:
        """Start a sandbox (``start`` is the provider call) and time it until the runtime answers."""
        began = time.monotonic()
        handle: SandboxHandle = await start
        self.started[handle.provider_id] = began
        code, output = await self.run(handle, PROBE)
        if code != 0:
            raise SmokeFailure(f"{figure}: the runtime does not answer (exit {code}): {output[-500:]}")
        self.figures[figure] = round(time.monotonic() - began, 2)
        say(f"{figure}: {self.figures[figure]}s")
        return handle

    async def run(self, handle: SandboxHandle, command: tuple[str, ...]) -> tuple[int, str]:
        sandbox = await self.modal.Sandbox.from_id.aio(handle.provider_id)
        process = await sandbox.exec.aio(*command, timeout=PROBE_TIMEOUT_S)
        output = await process.stderr.read.aio()
        return await process.wait.aio(), str(output)

    async def stop(self, handle: SandboxHandle) -> None:
        began = self.started.pop(handle.provider_id, None)
        await self.provider.stop(handle)
        if began is not None:
            self.sandbox_s += time.monotonic() - began

    async def measure(self) -> None:
        fresh = await self.boot("spawn_ready_s", self.provider.spawn(self.spec("fresh")))
        began = time.monotonic()
        snapshot = await self.provider.snapshot(fresh)
        self.refs.append(snapshot)
        self.figures["snapshot_s"] = round(time.monotonic() - began, 2)
        await self.stop(fresh)
        restored = await self.boot("snapshot_boot_s", self.provider.restore(snapshot, self.spec("restored")))
        await self.stop(restored)

        began = time.monotonic()
        build_spec = self.spec("build", boot_mode="build", bridge_url="", tool_token=f"sbt_{secrets.token_hex(16)}")
        built = await self.provider.build_image(build_spec, timeout_s=self.args.build_timeout_s)
        self.figures["image_build_s"] = round(time.monotonic() - began, 2)
        self.sandbox_s += self.figures["image_build_s"]  # the build sandbox lived as long
        if not built.ok:
            raise SmokeFailure(f"image build failed: {built.log_tail[-500:]}")
        self.refs.append(built.ref)
        from_image = await self.boot("image_boot_s", self.provider.start_from_image(built.ref, self.spec("image")))
        self.figures["token_in_image"] = (await self.run(from_image, NO_TOKEN))[0] != 0
        await self.stop(from_image)
        if self.figures["token_in_image"]:
            raise SmokeFailure("the build's tool token is in its image")

    async def clean_up(self) -> list[str]:
        """Terminate what is still running and delete the images; what could not be, said."""
        problems: list[str] = []
        for provider_id in list(self.started):
            try:
                await self.stop(SandboxHandle("modal", provider_id, "smoke", provider_id))
            except ProviderError as exc:
                problems.append(str(exc))
        for ref in self.refs:
            try:
                await self.provider.delete_image(ref)
            except ProviderError as exc:
                problems.append(str(exc))
        return problems

    def cost(self) -> float:
        per_second = self.args.cpu * self.args.cpu_rate + self.args.memory_mb / 1024 * self.args.memory_rate
        return round(self.sandbox_s * per_second, 4)


async def session_figures(args: argparse.Namespace) -> dict[str, Any]:
    """One real session through an Inspect started here and reachable from Modal at ``--public-url``."""
    import httpx
    import websockets

    from tests.servers import start_server

    env = {"INSPECT_SANDBOX_PROVIDER": "modal", "INSPECT_PUBLIC_URL": args.public_url}
    if args.llm_base_url:
        env |= {"INSPECT_LLM_BASE_URL": args.llm_base_url, "INSPECT_LLM_MODEL": args.llm_model}
    server = start_server(Path(tempfile.mkdtemp(prefix="inspect-modal-smoke-")), port=args.port, **env)
    figures: dict[str, Any] = {}
    try:
        headers = {"Authorization": f"Bearer {server.token}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as api:
            repo = (await api.post("/api/repositories", json={"url": args.repo})).json()
            session = (await api.post("/api/sessions", json={"repository_id": repo["id"]})).json()
            started = time.monotonic()
            url = server.url.replace("http://", "ws://") + f"/api/sessions/{session['id']}/ws"
            async with websockets.connect(url) as ws:
                await ws.send(json.dumps({"type": "subscribe", "token": server.token}))
                await api.post(f"/api/sessions/{session['id']}/prompts", json={"content": args.prompt})
                while "prompt_s" not in figures and time.monotonic() - started < args.session_timeout_s:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), args.session_timeout_s))
                    for event in frame.get("events", [frame]):
                        elapsed = round(time.monotonic() - started, 2)
                        data = event.get("data", {})
                        say(f"{elapsed:8.1f}s  {event.get('type')}  {json.dumps(data)[:120]}")
                        if event.get("type") == "sandbox_status" and data.get("status") == "ready":
                            figures.setdefault("session_ready_s", elapsed)
                        if event.get("type") == "execution_complete":
                            figures |= {"prompt_s": elapsed, "prompt_ok": bool(data.get("success"))}
    finally:
        server.stop()
    if not figures.get("prompt_ok"):
        raise SmokeFailure(f"the session's prompt did not complete: {figures}")
    return figures


async def smoke(args: argparse.Namespace, source: str, sdk: Any) -> dict[str, Any]:
    run = Smoke(args, sdk)
    result: dict[str, Any] = {"skipped": False, "credentials": source, "cpu": args.cpu, "memory_mb": args.memory_mb}
    try:
        await run.measure()
        if args.public_url:
            result |= await session_figures(args)
        result["ok"] = True
    except Exception as exc:  # noqa: BLE001 - whatever failed (Modal, provider, probe, server) is the result
        result |= {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        if problems := await run.clean_up():
            result["cleanup_problems"] = problems
    return result | run.figures | {"sandbox_s": round(run.sandbox_s, 1), "estimated_cost_usd": run.cost()}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Time the Modal provider on a real Modal account.")
    parser.add_argument(
        "--repo", default="https://github.com/octocat/Hello-World.git", help="a git URL Modal can clone"
    )
    parser.add_argument("--branch", default="master")
    parser.add_argument("--app", default="inspect-smoke", help="the Modal app the sandboxes run under")
    parser.add_argument("--cpu", type=float, default=2.0, help="cores per sandbox (INSPECT_MODAL_CPU's default)")
    parser.add_argument("--memory-mb", type=int, default=4096, help="MiB per sandbox (INSPECT_MODAL_MEMORY_MB's)")
    parser.add_argument("--lifetime-s", type=int, default=1800, help="a hard stop for anything left behind")
    parser.add_argument("--build-timeout-s", type=float, default=600)
    parser.add_argument("--egress", nargs="*", default=["github.com", "codeload.github.com", "pypi.org"])
    parser.add_argument("--cpu-rate", type=float, default=CPU_CORE_S_USD, help="USD per core-second")
    parser.add_argument("--memory-rate", type=float, default=MEMORY_GIB_S_USD, help="USD per GiB-second")
    parser.add_argument("--public-url", default="", help="also run a session through an Inspect Modal reaches here")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--prompt", default="List the files in this repository and stop.")
    parser.add_argument("--llm-base-url", default="")
    parser.add_argument("--llm-model", default="")
    parser.add_argument("--session-timeout-s", type=float, default=900)
    return parser.parse_args(argv)


def main() -> int:
    args = parse()
    source = credentials()
    if source is None:
        say("no Modal credentials (MODAL_TOKEN_ID/MODAL_TOKEN_SECRET or a ~/.modal.toml profile); skipped")
        print(json.dumps({"skipped": True, "reason": "no Modal credentials"}))
        return 0
    import modal

    result = asyncio.run(smoke(args, source, modal))
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

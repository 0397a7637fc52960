"""One real session on Modal: the smoke test of the Modal provider against a real account.

Needs ``MODAL_TOKEN_ID`` / ``MODAL_TOKEN_SECRET`` (``modal token new``), a URL where Modal's
sandboxes can reach this machine's Inspect (``--public-url``, e.g. a tunnel to 127.0.0.1:<port>),
a public git repository, and a model the sandbox can use (``--llm-base-url``/``--llm-model`` for an
OpenAI-compatible endpoint reachable from Modal, or ``ANTHROPIC_API_KEY`` in the environment).

    .venv/bin/python scripts/modal_smoke.py --public-url https://abc.example --port 3000 \\
        --repo https://github.com/octocat/Hello-World.git --prompt "List the files"

It starts Inspect with ``INSPECT_SANDBOX_PROVIDER=modal``, creates a session, sends the prompt,
prints each event as it arrives with the time to ``ready`` and to completion, then stops.
Exit status 0 when the prompt completed, 2 when no Modal credentials are set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import websockets  # noqa: E402

from tests.servers import start_server  # noqa: E402


def show(started: float, event: dict) -> bool | None:
    """Print one event; True/False once the prompt completed or failed."""
    kind = event.get("type")
    elapsed = time.monotonic() - started
    print(f"{elapsed:7.1f}s  {kind}  {json.dumps(event.get('data', {}))[:120]}")
    if kind == "sandbox_status" and event.get("data", {}).get("status") == "ready":
        print(f"ready after {elapsed:.1f}s")
    if kind == "execution_complete":
        ok = bool(event.get("data", {}).get("success"))
        print(f"{'completed' if ok else 'failed'} after {elapsed:.1f}s")
        return ok
    return None


async def run(args: argparse.Namespace) -> int:
    env = {"INSPECT_SANDBOX_PROVIDER": "modal", "INSPECT_PUBLIC_URL": args.public_url}
    if args.llm_base_url:
        env |= {"INSPECT_LLM_BASE_URL": args.llm_base_url, "INSPECT_LLM_MODEL": args.llm_model}
    server = start_server(Path(tempfile.mkdtemp(prefix="inspect-modal-smoke-")), port=args.port, **env)
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
                while time.monotonic() - started < args.timeout:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), args.timeout))
                    for event in frame.get("events", [frame]):
                        outcome = show(started, event)
                        if outcome is not None:
                            return 0 if outcome else 1
        print("timed out")
        return 1
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description="Run one real Inspect session on Modal.")
    parser.add_argument("--public-url", required=True, help="where Modal sandboxes reach this Inspect")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--repo", required=True, help="a git URL Modal can clone")
    parser.add_argument("--prompt", default="List the files in this repository and stop.")
    parser.add_argument("--llm-base-url", default="")
    parser.add_argument("--llm-model", default="")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    if not (os.environ.get("MODAL_TOKEN_ID") and os.environ.get("MODAL_TOKEN_SECRET")):
        print("Set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET (modal token new) to run the Modal smoke test.")
        return 2
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())

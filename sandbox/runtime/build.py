"""``python -m sandbox.runtime.build``: prepare a prebuilt image's workspace, then exit.

Runs INSIDE a build sandbox and imports nothing from ``inspect_app``. No bridge and no agent: it
clones the branch, runs ``.inspect/setup.sh`` (a failure fails the build: a broken image must not
be published) and writes ``state/build.json`` — commit, runtime version, the setup log's tail —
which the provider reads before it captures the workspace as the image. The tool token the clone
and setup.sh use is removed whatever happens: nothing secret stays in an image.

Sessions later boot from the image in ``image`` mode: fetch and reset to the branch tip, skip
``setup.sh``, run ``.inspect/start.sh``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from sandbox.protocol import RELAY_DIR
from sandbox.runtime import environment, relays
from sandbox.runtime.config import RUNTIME_VERSION
from sandbox.runtime.gitops import Git, GitError, credential_helper_env, run, tail, write_tool_token

TAIL_LINES = 40


async def build(
    root: Path,
    repo_url: str,
    branch: str,
    setup_timeout_s: float,
    tool_token: str = "",
    *,
    environ: Mapping[str, str] | None = None,
) -> dict[str, object]:
    state = root / "state"
    state.mkdir(parents=True, exist_ok=True)
    await relays.start(Path(RELAY_DIR))  # on a network of its own: the way out (until the build exits)
    env = {k: v for k, v in (os.environ if environ is None else environ).items() if not k.startswith("SANDBOX_")}
    token_file = state / "tool-token"
    write_tool_token(token_file, tool_token)  # a private repository's clone (and setup.sh) need it
    env.update(credential_helper_env(sys.executable, token_file))
    try:
        return await _prepare(root / "workspace", state, repo_url, branch, setup_timeout_s, env)
    finally:
        # What the build leaves becomes an image every session of the repository boots from (a Modal
        # filesystem snapshot keeps all of it, for days): the token must not be in it.
        token_file.unlink(missing_ok=True)


async def _prepare(
    workspace: Path, state: Path, repo_url: str, branch: str, setup_timeout_s: float, env: dict[str, str]
) -> dict[str, object]:
    """Clone ``branch`` into ``workspace`` and run its setup.sh: the outcome ``build.json`` records."""
    git = Git(workspace, env=env)
    started = time.monotonic()
    await asyncio.to_thread(shutil.rmtree, workspace, ignore_errors=True)  # a clone of its own (a leftover: git says)
    try:
        await git.trust_local_origin(repo_url)
        await git.clone(repo_url, branch)
        commit = await git.head()
    except GitError as exc:
        return {"ok": False, "stage": "clone", "log_tail": tail(str(exc), TAIL_LINES)}
    setup = workspace / ".inspect" / "setup.sh"
    setup_status, log_tail = "skipped", ""
    if setup.exists():
        result = await run(["bash", str(setup)], cwd=workspace, env=env, timeout=setup_timeout_s)
        (state / "setup.log").write_text(result.output)
        log_tail = tail(result.output, TAIL_LINES)
        if result.code != 0:
            reason = "timed out" if result.code == 124 else f"exited with {result.code}"
            return {
                "ok": False,
                "stage": "setup",
                "commit": commit,
                "log_tail": f".inspect/setup.sh {reason}\n{log_tail}",
            }
        setup_status = "done"
    return {
        "ok": True,
        "commit": commit,
        "runtime_version": RUNTIME_VERSION,
        "setup": setup_status,
        "duration_s": round(time.monotonic() - started, 3),
        "log_tail": log_tail,
    }


def main() -> int:
    environment.make_undumpable()
    env = environment.load()
    root = Path(env["SANDBOX_ROOT"])
    outcome = asyncio.run(
        build(
            root,
            env["SANDBOX_REPO_URL"],
            env.get("SANDBOX_BRANCH", "main"),
            float(env.get("SANDBOX_SETUP_TIMEOUT_S", "600")),
            env.get("SANDBOX_TOOL_TOKEN", ""),
            environ=env,
        )
    )
    (root / "state").mkdir(parents=True, exist_ok=True)
    (root / "state" / "build.json").write_text(json.dumps(outcome))
    return 0 if outcome["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""``python -m inspect_app.serve``: check the configuration, migrate, build the frontend if this
version has no build yet, then run the server.

The server runs in production mode on ONE port (pages, Reflex's state socket and /api), bound to
INSPECT_HOST (``web_process``). A configuration problem ends start-up with exit status 2 and one line
naming the setting.
"""

from __future__ import annotations

import logging
import os
import sys

from inspect_app import frontend
from inspect_app.boot import prepare
from inspect_app.control.data import browser_sign_in
from inspect_app.db import PROJECT_ROOT
from inspect_app.errors import ConfigError
from inspect_app.settings import Settings, load_settings

TOOLS_BIN = PROJECT_ROOT / ".tools" / "node_modules" / ".bin"


def reflex_environment(settings: Settings) -> dict[str, str]:
    """The server's environment: ours, plus what Reflex needs to run offline from project-local tools."""
    env = dict(os.environ)  # passed through to our own server process, not to any sandbox
    env["PATH"] = f"{TOOLS_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("REFLEX_DIR", str(PROJECT_ROOT / ".tools" / "reflex"))
    env.setdefault("BUN_INSTALL_CACHE_DIR", str(PROJECT_ROOT / ".tools" / "bun-cache"))
    env.setdefault("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org/")
    env["REFLEX_TELEMETRY_ENABLED"] = "false"
    env["REFLEX_CHECK_LATEST_VERSION"] = "false"
    if settings.redis_url:
        env["REFLEX_REDIS_URL"] = settings.redis_url
    # One worker per server: with Redis, Reflex would start 2 x cores + 1, each its own control plane
    # under one replica name, with a sandbox's bridge landing on any of them. Scale with replicas.
    env["GRANIAN_WORKERS"] = "1"
    return env


def sign_in_url(settings: Settings, link_token: str) -> str:
    """The one-time link a person opens to sign this browser in (as Jupyter prints its token URL)."""
    return f"{settings.resolved_public_url}/login?token={link_token}"


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
        report = prepare(settings)
    except ConfigError as exc:
        print(f"inspect: configuration error: {exc}", file=sys.stderr)
        return 2
    report.services.engine.dispose()
    _confinement, problem = report.services.plane.lifecycle.provider.confinement()
    if problem:  # bubblewrap missing (sandboxes will refuse to start), or confinement turned off
        print(f"inspect: WARNING: {problem}", file=sys.stderr, flush=True)
    mode = "local single-user mode" if report.local_mode else "GitHub sign-in"
    print(f"inspect: database at migration {report.migrated_to}; {mode}", flush=True)
    if report.local_mode:
        print(f"inspect: API token for the local user is in {settings.data_dir / 'local-token'}", flush=True)
        link = browser_sign_in.issue_login_link(settings.data_dir)
        minutes = int(browser_sign_in.LOGIN_LINK_TTL.total_seconds() // 60)
        print(f"inspect: sign in (once, within {minutes} min): {sign_in_url(settings, link)}", flush=True)
    os.chdir(PROJECT_ROOT)  # Reflex reads rxconfig.py from the working directory
    env = reflex_environment(settings)
    try:
        env["REFLEX_WEB_WORKDIR"] = str(frontend.ensure_built(env, loglevel=settings.log_level.lower()))
    except frontend.BuildError as exc:
        print(f"inspect: {exc}", file=sys.stderr)
        return 1
    print(f"inspect: starting on {settings.resolved_public_url}", flush=True)
    command = [sys.executable, "-m", "inspect_app.web_process"]
    os.execve(command[0], command, env)  # noqa: S606 - an argument list, no shell
    return 0  # pragma: no cover - execve does not return


if __name__ == "__main__":
    sys.exit(main())

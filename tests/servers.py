"""Start the real Inspect server (``python -m inspect_app.serve``) for tests, and stop it cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BOOT_TIMEOUT_S = 240  # the first production build compiles the frontend


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningServer:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    environment: dict[str, str]

    @property
    def token(self) -> str:
        return (self.data_dir / "local-token").read_text().strip()

    @property
    def preview_port(self) -> int:
        return int(self.environment["INSPECT_PREVIEW_PORT"])

    @property
    def database_url(self) -> str:
        return self.environment.get("INSPECT_DATABASE_URL") or f"sqlite:///{self.data_dir / 'inspect.db'}"

    @property
    def replica_id(self) -> str:
        """What the server calls itself among replicas (``Settings.resolved_replica_id``)."""
        return self.environment.get("INSPECT_REPLICA_ID") or f"{socket.gethostname()}:{self.url.rsplit(':', 1)[1]}"

    def create_user(self, name: str, email: str) -> str:
        """A new user of this server, through the operator's command; returns their API token."""
        return self.admin("create-user", "--name", name, "--email", email)

    def admin(self, *args: str) -> str:
        """Run an operator's command (``python -m inspect_app.admin``) on this server's installation."""
        result = subprocess.run(
            [sys.executable, "-m", "inspect_app.admin", *args],
            cwd=ROOT, env=self.environment, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return result.stdout.strip()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, *, keep_sandboxes: bool = False) -> None:
        """SIGTERM, as a deploy would. Sessions' sandboxes outlive the server; unless kept (for the
        next server to adopt), they are ended after it, by the operator's command."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if not keep_sandboxes:
            self.admin("stop-sandboxes")


def start_server(workdir: Path, *, port: int | None = None, data_dir: Path | None = None, **env: str) -> RunningServer:
    """``data_dir``: another server's (replicas on one host share it), else ``workdir/data``."""
    port = port or free_port()
    data_dir = data_dir or workdir / "data"
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "server.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("INSPECT_")}
    environment.update(
        {
            "INSPECT_DATA_DIR": str(data_dir),
            "INSPECT_PORT": str(port),
            "INSPECT_PREVIEW_PORT": str(free_port()),  # not PORT + 1: another test's server may hold it
            "INSPECT_LOCAL_USER_NAME": "Ada Lovelace",
            "INSPECT_LOCAL_USER_EMAIL": "ada@example.com",
            **env,
        }
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "inspect_app.serve"],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = RunningServer(
        url=f"http://127.0.0.1:{port}", data_dir=data_dir, process=process, log_path=log_path, environment=environment
    )
    deadline = time.monotonic() + BOOT_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log_tail()}")
        try:
            # the API answers before the frontend bundle is served; wait for the page too
            if (
                httpx.get(f"{server.url}/api/health", timeout=2).status_code == 200
                and httpx.get(server.url + "/", timeout=5).status_code == 200
            ):
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"server not healthy after {BOOT_TIMEOUT_S}s:\n{server.log_tail()}")

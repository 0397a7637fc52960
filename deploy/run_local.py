"""Several replicas behind HAProxy on this machine: the layout of ``deploy/README.md``, for trying it.

    .venv/bin/python deploy/run_local.py [--replicas 2] [--port 3000]

Starts ``--replicas`` servers (ports ``--port``+1, +2, ...) on one PostgreSQL database and one Redis,
sharing this host's data directory, then HAProxy on ``--port`` in front of them (Debian's
``haproxy`` package), and runs until interrupted. The public URL is the balancer's. The database
and Redis come from ``INSPECT_DATABASE_URL`` and ``INSPECT_REDIS_URL`` (defaults: the machine's,
database ``inspect``, created if missing).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/inspect"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
HEALTHY_WITHIN_S = 300  # a first start builds the frontend


def haproxy_config(port: int, replica_ports: list[int]) -> str:
    """HAProxy in front of the replicas: round robin, no stickiness (any replica serves any request),
    health-checked on /api/health, WebSockets held open for an hour of silence."""
    servers = "\n".join(
        f"    server r{i} 127.0.0.1:{p} check inter 2s fall 2 rise 1" for i, p in enumerate(replica_ports)
    )
    return f"""global
    maxconn 4096

defaults
    mode http
    option forwardfor
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h

frontend inspect
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /api/health
    http-check expect status 200
{servers}
"""


def ensure_database(url: str) -> None:
    """Create the database if it does not exist (PostgreSQL)."""
    target = sa.make_url(url)
    if not target.drivername.startswith("postgresql"):
        return
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}).first()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + HEALTHY_WITHIN_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the replica at {url} exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the replica at {url} did not become healthy")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args()
    stopping: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, _frame: stopping.append(number))
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        raise SystemExit("haproxy is not installed (Debian: apt-get install haproxy)")
    database = os.environ.get("INSPECT_DATABASE_URL", DEFAULT_DATABASE)
    ensure_database(database)
    data_dir = Path(os.environ.get("INSPECT_DATA_DIR", ROOT / "data")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    public_url = f"http://127.0.0.1:{args.port}"
    ports = [args.port + 1 + i for i in range(args.replicas)]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for i, port in enumerate(ports):
            env = {
                **os.environ,
                "INSPECT_DATABASE_URL": database,
                "INSPECT_REDIS_URL": os.environ.get("INSPECT_REDIS_URL", DEFAULT_REDIS),
                "INSPECT_DATA_DIR": str(data_dir),
                "INSPECT_PORT": str(port),
                "INSPECT_PUBLIC_URL": public_url,
                "INSPECT_REPLICA_ID": f"{socket.gethostname()}-{i}",
            }
            print(f"run_local: starting replica {i} on port {port}", flush=True)
            processes.append(subprocess.Popen([sys.executable, "-m", "inspect_app.serve"], cwd=ROOT, env=env))
            wait_healthy(f"http://127.0.0.1:{port}", processes[-1])  # one at a time (the first builds the frontend)
        config = data_dir / "haproxy.cfg"
        config.write_text(haproxy_config(args.port, ports))
        print(f"run_local: {args.replicas} replicas behind {public_url}", flush=True)
        processes.append(subprocess.Popen([haproxy, "-db", "-f", str(config)]))
        while not stopping and all(process.poll() is None for process in processes):
            time.sleep(0.5)
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())

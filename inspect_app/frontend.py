"""The web frontend, built once per version and served, unchanged, by every replica that runs it.

Reflex's own ``reflex run --env prod`` compiles and rebuilds ``.web/build`` at every start, in place:
a second replica starting from the same checkout deletes and rewrites the files the first one is
serving, and the last one built decides where every page opens its socket. Here a build is named by
a fingerprint of everything that goes into it (the app's sources, its configuration and the socket
URL baked into the bundle); it is built by the first server that needs it, under a lock, and
published by an atomic rename into a directory of its own, ``.web-builds/<fingerprint>``, which no
later build touches. A server serves the directory of its own fingerprint (``REFLEX_WEB_WORKDIR``),
so replicas of one version share one build, and a replica of the previous version keeps serving its
own while a deploy starts the next.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TextIO

from inspect_app.db import PROJECT_ROOT

log = logging.getLogger(__name__)


class BuildError(Exception):
    """The frontend could not be built (the message says why; Reflex's output is above it)."""


BUILDS = PROJECT_ROOT / ".web-builds"
WEB = PROJECT_ROOT / ".web"  # Reflex's working directory: compiled pages, node_modules, the build
IN_USE = ".in-use"  # in a build: locked shared by each server serving it (``hold``)
KEEP = 3  # builds kept: this version's and those that replicas of earlier versions may still serve
BUILD_TIMEOUT_S = 900  # a first build installs the frontend's packages
LOCK_TIMEOUT_S = BUILD_TIMEOUT_S + 60

# What a bundle is made of. Every file below these paths counts (Python, assets, styles): a change
# that did not need a rebuild costs one build; one that did and was missed would serve stale pages.
SOURCES = ("inspect_app", "assets", "rxconfig.py", "requirements.txt")
SKIPPED_PARTS = frozenset({"__pycache__"})


def fingerprint(root: Path, baked: Mapping[str, str]) -> str:
    """A name for the bundle built from ``root``'s sources with ``baked`` values (socket URL, ...)."""
    digest = hashlib.sha256()
    for key in sorted(baked):
        digest.update(f"{key}={baked[key]}\0".encode())
    for path in _source_files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:20]


def _source_files(root: Path) -> Iterable[Path]:
    for name in SOURCES:
        top = root / name
        if top.is_file():
            yield top
        elif top.is_dir():
            yield from sorted(
                p
                for p in top.rglob("*")
                if p.is_file() and not SKIPPED_PARTS.intersection(p.parts) and p.suffix != ".pyc"
            )


def baked_values() -> dict[str, str]:
    """What Reflex writes into the bundle from the configuration (``rxconfig.py``, read as Reflex does)."""
    from reflex_base.config import get_config
    from reflex_base.constants import Reflex

    config = get_config()
    return {
        "api_url": str(config.api_url),
        "deploy_url": str(config.deploy_url),
        "frontend_path": str(config.frontend_path),
        "reflex": Reflex.VERSION,
    }


def ensure_built(env: Mapping[str, str], *, loglevel: str = "info") -> Path:
    """The published build for this checkout and configuration: the existing one, or a new one.

    ``env`` is the environment Reflex's build runs in (offline tools, ports). Returns the directory
    to serve as Reflex's web directory. Raises BuildError when the build fails.
    """
    name = fingerprint(PROJECT_ROOT, baked_values())
    published = BUILDS / name
    if _complete(published):
        os.utime(published)  # in use: the newest for pruning
        log.info("serving build %s (built earlier)", name)
        return published
    BUILDS.mkdir(exist_ok=True)
    with _locked(BUILDS / ".lock"):
        if _complete(published):  # another server built it while this one waited
            log.info("serving build %s (built by another server)", name)
            return published
        started = time.monotonic()
        _build(env, loglevel)
        _publish(published)
        log.info("built %s in %.1f s", name, time.monotonic() - started)
        _prune(keep=name)
    return published


def _complete(published: Path) -> bool:
    return (published / "build" / "client" / "index.html").is_file()


def _build(env: Mapping[str, str], loglevel: str) -> None:
    venv_reflex = PROJECT_ROOT / ".venv" / "bin" / "reflex"
    reflex = str(venv_reflex) if venv_reflex.exists() else "reflex"
    command = [reflex, "export", "--frontend-only", "--no-zip", "--env", "prod", "--loglevel", loglevel]
    # Reflex's default web directory: the build must not be pointed at a published one.
    build_env = {k: v for k, v in env.items() if k != "REFLEX_WEB_WORKDIR"}
    try:
        subprocess.run(command, cwd=PROJECT_ROOT, env=build_env, check=True, timeout=BUILD_TIMEOUT_S)
    except subprocess.CalledProcessError as exc:
        raise BuildError(
            f"the frontend build failed (reflex export exited with {exc.returncode}; its output is above)"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"the frontend build took longer than {BUILD_TIMEOUT_S} s") from exc


def _publish(published: Path) -> None:
    """Move the fresh build out of Reflex's working directory into its own, in one rename."""
    staging = BUILDS / f".staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    (WEB / "build").rename(staging / "build")
    # The compile's notes to the backend (which routes hold state, whether uploads are used).
    shutil.copytree(WEB / "backend", staging / "backend", dirs_exist_ok=True)
    staging.rename(published)


def _prune(*, keep: str, builds_dir: Path = BUILDS) -> list[str]:
    """Remove all but the newest KEEP builds, never ``keep`` nor one a running server holds
    (``hold``). Returns the names removed."""
    builds = [p for p in builds_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    builds.sort(key=lambda p: p.stat().st_mtime)
    removed = []
    for old in builds[:-KEEP]:
        if old.name == keep:
            continue
        with (old / IN_USE).open("a") as marker:
            try:
                fcntl.flock(marker, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a server serves it
            shutil.rmtree(old, ignore_errors=True)
            removed.append(old.name)
    return removed


def hold(published: Path) -> TextIO:
    """Mark ``published`` as served by this process for as long as it lives (keep the file open):
    no later build's clean-up removes it."""
    marker = (published / IN_USE).open("a")
    fcntl.flock(marker, fcntl.LOCK_SH)
    return marker


class _locked:
    """An exclusive lock on ``path`` across processes, bounded in time."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        self.handle = self.path.open("a")
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self.handle.close()
                    raise BuildError(f"another server has held the frontend build lock {self.path} too long") from None
                time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()

"""Local sandboxes: a process tree per sandbox under ``<data dir>/sandboxes/<id>/``.

The directory is keyed by SESSION, not by sandbox: OpenCode binds its sessions to their directory,
so a sandbox restored from a snapshot must see the same paths for the agent's conversation to go on.
One sandbox runs per session at a time; a spawn or restore replaces what the directory held.

Isolated with bubblewrap when it works here: the system read-only, a private /tmp, the data dir
invisible except this sandbox's own directory (and a local origin repository, which the sandbox must
clone from and push to), its own pid namespace, dying with its parent. Without bwrap the sandbox runs
unisolated, and the handle carries a warning for the session.

Inside bubblewrap every sandbox sees its directory at one path, ``<data dir>/sandbox``: OpenCode
keys its conversations by directory, and a fixed path lets a pooled sandbox (booted before its
session existed, under ``sandboxes/.standby-<id>/``) become the session's — its directory is moved
to the session's name on the host — and still be restorable from a snapshot later.

Snapshot = a copy of the workspace and agent state under ``<data dir>/snapshots/<ref>/``;
restore = a new sandbox started from that copy. Stop ends the whole process tree.

Image = a prepared workspace under ``<data dir>/images/<ref>/`` (cloned, setup.sh run), built by
``sandbox.runtime.build`` in a throwaway ``<data dir>/builds/<id>/``; a session started from it
fetches and resets to the branch tip and skips setup.sh. With a warm pool (``prewarm``, isolated
sandboxes only) a session is handed a standby booted from the image instead (``warm_pool.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from sandbox.protocol import OUTBOX_BUNDLE
from sandbox.providers import hostfs, processes
from sandbox.providers.base import (
    Adoption,
    BuildResult,
    Capabilities,
    ProviderError,
    SandboxHandle,
    SandboxProvider,
    SandboxSpec,
    SandboxState,
    Survivor,
    pool_key,
)
from sandbox.providers.confine import ALWAYS_HIDDEN, Jail, UidRange, UidsExhausted, kept_apart, user_entries
from sandbox.providers.egress import EgressPolicy, EgressProxy
from sandbox.providers.limits import Cgroups, Group, Limits
from sandbox.providers.records import RecordBook, SandboxRecord
from sandbox.providers.relay import Identity, SandboxNetwork, proxy_environment, through_relays
from sandbox.providers.warm_pool import ParkingLot, Standby, Want, WarmPool
from sandbox.runtime.environment import CLAIM_FD_VARIABLE, ENV_FD_VARIABLE
from sandbox.runtime.gitops import local_path, run, tail, valid_branch

log = logging.getLogger(__name__)

# A sandbox's top process: our child, or one an earlier server started and we adopted.
Process = asyncio.subprocess.Process | processes.Adopted

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SUPERVISOR = "sandbox.runtime.supervisor"
STOP_GRACE_S = 10.0
DIFF_TIMEOUT_S = 20.0
MAX_KEPT_DIFF = 2 << 20
MAX_BUNDLE_BYTES = 2 << 30
COPY_TIMEOUT_S = 600.0
SNAPSHOT_PARTS = ("workspace", "home", "state")
UNISOLATED_WARNING = "INSPECT_SANDBOX_ISOLATION=none: this sandbox runs unconfined, with the server's own rights"
NO_BWRAP = (
    "local sandboxes need bubblewrap, which is not usable here: install it (apt-get install bubblewrap), "
    "or set INSPECT_SANDBOX_ISOLATION=none to run them unconfined (the agent then has the server's rights)"
)
# Not snapshotted: the tool token dies with its sandbox, and a restored one gets a new one.
UNSNAPSHOTTED = ("state/tool-token",)


def bwrap_works(uid: int | None = None) -> bool:
    """Whether the confinement we use (``confine.Jail``) works on this machine, now; as ``uid``
    when the server is root."""
    if not shutil.which("bwrap") or (uid is not None and not shutil.which("setpriv")):
        return False
    probe = Jail(root=Path("/"), inside=Path("/tmp/probe"), uid=uid, hide=(), show=())  # noqa: S108 - in its tmpfs
    try:
        return subprocess.run(probe.command(["true"]), capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


async def copy_tree(source: Path, target: Path) -> None:
    """``cp -a``: a workspace with a virtualenv or node_modules is thousands of small files, which
    cp copies about 4x faster than ``shutil.copytree`` (0.2 s against 0.75 s for 1,500 files here)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        "cp", "-a", "--", str(source), str(target), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), COPY_TIMEOUT_S)
    except BaseException as exc:  # timed out or cancelled: no cp goes on copying behind our back
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        if isinstance(exc, TimeoutError):
            raise ProviderError(f"copying {source.name} took over {COPY_TIMEOUT_S:.0f}s") from None
        raise
    if process.returncode != 0:
        raise ProviderError(f"cannot copy {source.name}: {stderr.decode(errors='replace').strip()[:300]}")


def _is_local_path(url: str) -> Path | None:
    path = local_path(url)  # the runtime's reading of the same URL, as a Path
    return Path(path) if path is not None else None


class LocalProvider(SandboxProvider):
    name = "local"
    capabilities = Capabilities(snapshots=True, tunnels=False)

    def __init__(
        self,
        *,
        data_dir: Path,
        opencode_bin: str,
        plugin_template: Path | None = None,
        python: str = sys.executable,
        isolate: bool | None = None,
        base_path: str = "/usr/local/bin:/usr/bin:/bin",
        park_capacity: int = 0,
        park_ttl_s: float = 1800.0,
        pool_limit: int = 4,
        uid_range: tuple[int, int] = (200_000, 1000),
        limits: Limits | None = None,
        own_network: bool = True,
        egress_allow: tuple[str, ...] = (),
        control: tuple[str, int] | None = None,
        outlive: bool = True,
    ) -> None:
        self._data_dir = data_dir.resolve()
        self._sandboxes = self._data_dir / "sandboxes"
        self._snapshots = self._data_dir / "snapshots"
        self._images = self._data_dir / "images"
        self._builds = self._data_dir / "builds"
        self._opencode_bin = opencode_bin
        self._plugin_template = plugin_template
        self._python = python
        as_root = os.geteuid() == 0
        # isolate None ("auto") and True both need bubblewrap: without it sandboxes refuse to start;
        # only an explicit False (INSPECT_SANDBOX_ISOLATION=none) runs them unconfined.
        self._isolate = isolate is not False
        self._uids = UidRange(*uid_range) if self._isolate and as_root else None
        works = not self._isolate or bwrap_works(uid_range[0] if as_root else None)
        self._refusal = "" if works else NO_BWRAP
        # Resource limits (cgroups) need root; without them sandboxes run unlimited, and say so.
        self.limits = limits
        self._cgroups = Cgroups.detect() if limits is not None and as_root and self._isolate else None
        if limits is not None and self._cgroups is None:
            log.warning("sandboxes run without resource limits: no writable cgroup controllers here")
        self._held: dict[Process, Held] = {}  # what each running sandbox process holds
        # A session's sandbox outlives this server (a restart or deploy interrupts no prompt): the
        # next server finds it by its record and adopts it (``adopt``).
        self._outlive = outlive
        self._records = RecordBook(self._data_dir / "running")
        # A network of its own (loopback only; out through relays and the egress proxy) when confined.
        self._own_network = own_network and self._isolate
        self._egress_allow = egress_allow
        self._control = control  # the control plane's address (a pooled sandbox's spec has none)
        self.on_egress_denied: Callable[[str, str, str], None] | None = None  # (session, host, why)
        self._base_path = base_path
        self._processes: dict[str, Process] = {}  # by sandbox id
        self._by_session: dict[str, SandboxHandle] = {}
        self._chores: set[asyncio.Task[None]] = set()  # background deletions, awaited on close
        self.pool = WarmPool(launch=self._launch_standby, discard=self._discard_standby, limit=pool_limit)
        self.parking = ParkingLot(capacity=park_capacity, ttl_s=park_ttl_s, discard=self._discard_parked)
        self._swept = False
        self._said_unpooled = False
        self._keys: dict[str, str] = {}  # sandbox id → the environment it runs with (parking compares)

    @property
    def isolated(self) -> bool:
        """Whether sandboxes run confined (False: unconfined by choice, or refused for want of bwrap)."""
        return self._isolate and not self._refusal

    def limits_summary(self) -> str:
        limits = self.limits
        if self._cgroups is not None and limits is not None:
            parts = [f"{limits.memory_mb} MiB memory", f"{limits.max_processes} processes"]
            parts.append(f"CPU weight {limits.cpu_weight}")
        else:
            parts = ["no resource limits (they need a root server and writable cgroups)"]
        parts.append("own network, out through the egress proxy" if self._own_network else "the host's network")
        return " · ".join(parts)

    def confinement(self) -> tuple[str, str]:
        if self._refusal:
            return "unavailable", self._refusal
        return ("bubblewrap", "") if self._isolate else ("none", UNISOLATED_WARNING)

    @property
    def refusal(self) -> str:
        """Why no sandbox can start here (bubblewrap is needed and not usable), or empty."""
        return self._refusal

    def sandbox_dir(self, session_id: str) -> Path:
        return self._sandboxes / session_id

    # --- interface -----------------------------------------------------------------------------
    async def spawn(self, spec: SandboxSpec) -> SandboxHandle:
        root = await self._claim(spec)
        return await self._start(root, spec)

    async def restore(self, snapshot_ref: str, spec: SandboxSpec) -> SandboxHandle:
        await self._ensure_free(spec)
        parked = await self.parking.take(snapshot_ref, spec.session_id, pool_key("", spec))
        if parked is not None:  # still running since it was snapshotted, with this environment: resume it
            await self._write_claim(self.sandbox_dir(spec.session_id), spec, parked)
            return self._register(spec, parked)
        source = self._snapshot_dir(snapshot_ref)
        if not source.is_dir():
            raise ProviderError(f"snapshot {snapshot_ref} does not exist")
        root = await self._claim(spec)
        await copy_tree(source, root)
        return await self._start(root, dataclasses.replace(spec, boot_mode="snapshot_restore"))

    async def start_from_image(self, image_ref: str, spec: SandboxSpec) -> SandboxHandle:
        source = self._image_dir(image_ref)
        root = await self._claim(spec)
        standby = self.pool.take(image_ref, spec)
        if standby is not None:
            return await self._hand_over(standby, root, spec)
        await copy_tree(source, root)
        return await self._start(root, dataclasses.replace(spec, boot_mode="image"))

    async def prewarm(self, image_ref: str, spec: SandboxSpec, count: int) -> None:
        if count and not self.isolated and not self._said_unpooled:
            self._said_unpooled = True
            log.warning("no warm pool: pooled sandboxes need bubblewrap (one path for every sandbox)")
        self._sweep_leftovers()
        self.pool.want(image_ref, spec, count if self.isolated else 0)

    def _sweep_leftovers(self) -> None:
        """Once: standby and trash directories of an earlier server (its sandboxes died with it)."""
        if self._swept or not self._sandboxes.exists():
            return
        self._swept = True
        for leftover in [*self._sandboxes.glob(".standby-*"), *self._sandboxes.glob(".trash-*")]:
            self._delete_later(leftover)

    async def _launch_standby(self, want: Want) -> Standby:
        source = self._image_dir(want.image_ref)
        root = self._sandboxes / f".standby-{secrets.token_hex(6)}"
        await copy_tree(source, root)
        self._prepare_dirs(root)
        process = await self._launch(root, want.template, module=SUPERVISOR, log_name="supervisor.log")
        return Standby(key=want.key, root=root, process=process)

    async def _discard_standby(self, standby: Standby) -> None:
        await self._terminate(standby.process, standby.root.name)
        self._delete_later(standby.root)

    async def _hand_over(self, standby: Standby, root: Path, spec: SandboxSpec) -> SandboxHandle:
        """The standby becomes the session's sandbox: its directory takes the session's name (the
        sandbox inside sees no change) and it reads who it is from its claim."""
        try:
            standby.root.rename(root)
        except OSError as exc:
            await self._discard_standby(standby)
            raise ProviderError(f"cannot hand over a pooled sandbox: {exc}") from exc
        await self._write_claim(root, spec, standby.process)
        return self._register(spec, standby.process)

    async def _write_claim(self, root: Path, spec: SandboxSpec, process: asyncio.subprocess.Process) -> None:
        """Tell a running sandbox who it is now, down its claim pipe (the claim holds the tokens: a file
        would be readable by the agent's uid). On its own network it reaches its session's control
        plane through a relay offered now."""
        held = self._held.get(process)
        if held is not None and held.network is not None:
            held.network.identity = Identity(spec.sandbox_id, spec.token)
            spec, routes, _ = through_relays(spec, self._control)
            for name in ("bridge", "control"):
                if name in routes:
                    await held.network.offer(name, *routes[name])
        if held is None or held.claims is None:
            raise ProviderError("this sandbox cannot be claimed (it has no claim pipe)")
        try:
            os.write(held.claims, (json.dumps(spec.claim()) + "\n").encode())  # well under a pipe's buffer
        except OSError as exc:
            raise ProviderError(f"cannot hand the sandbox its claim: {exc}") from exc

    async def park(self, handle: SandboxHandle, snapshot_ref: str) -> bool:
        process = self._processes.get(handle.sandbox_id)
        key = self._keys.get(handle.sandbox_id, "")
        held = self._held.get(process) if process is not None else None
        if held is None or held.claims is None or not isinstance(process, asyncio.subprocess.Process):
            return False  # adopted: no claim pipe to hand it its next session
        if not self.parking.park(snapshot_ref, handle.session_id, key, process):
            return False
        self._forget(handle)  # stop() no longer reaches it
        return True

    async def unpark(self, snapshot_ref: str) -> None:
        self.parking.release(snapshot_ref)

    async def _discard_parked(self, process: asyncio.subprocess.Process) -> None:
        await self._terminate(process, f"parked:{process.pid}")

    async def build_image(self, spec: SandboxSpec, *, timeout_s: float) -> BuildResult:
        """Run the build runtime to completion in a throwaway directory; keep its workspace as the image."""
        if not spec.sandbox_id.replace("-", "").isalnum():
            raise ProviderError(f"not a build id: {spec.sandbox_id!r}")
        root = self._builds / spec.sandbox_id
        if root.exists():
            await asyncio.to_thread(shutil.rmtree, root)
        self._prepare_dirs(root)
        try:
            process = await self._launch(
                root, spec, module="sandbox.runtime.build", log_name="build.log", lasting=False
            )
            try:
                await asyncio.wait_for(process.wait(), timeout_s)
            except TimeoutError:
                processes.send([process.pid, *processes.descendants(process.pid)], signal.SIGKILL)
                await process.wait()
                return BuildResult(ok=False, log_tail=f"the build did not finish within {timeout_s:.0f}s")
            outcome = self._read_outcome(root)
            if not outcome.get("ok"):
                return BuildResult.from_outcome(outcome)
            ref = f"img_{secrets.token_hex(8)}"
            await copy_tree(root / "workspace", self._ref_dir(self._images, "img_", ref) / "workspace")
            return BuildResult.from_outcome(outcome, ref=ref)
        finally:
            await asyncio.to_thread(shutil.rmtree, root, True)

    @staticmethod
    def _read_outcome(root: Path) -> dict:
        """The build's result, read without following anything the build (the repository's setup.sh)
        may have planted there."""
        try:
            written = hostfs.read_text(root, "state/build.json")
            outcome = json.loads(written) if written is not None else None
            if isinstance(outcome, dict):
                return outcome
            log_text = hostfs.read_text(root, "build.log", limit=64 * 1024) or ""
        except (hostfs.UnsafePath, ValueError) as exc:
            return {"ok": False, "log_tail": f"the build left an unreadable result ({exc})"}
        return {"ok": False, "log_tail": "\n".join(log_text.splitlines()[-40:]) or "the build wrote no result"}

    async def delete_image(self, image_ref: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self._ref_dir(self._images, "img_", image_ref), True)

    async def delete_snapshot(self, snapshot_ref: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self._snapshot_dir(snapshot_ref), True)

    async def snapshot(self, handle: SandboxHandle) -> str:
        root = self.sandbox_dir(handle.session_id)
        if not (root / "workspace").exists():
            raise ProviderError(f"sandbox {handle.sandbox_id} has no workspace to snapshot")
        ref = f"snap_{secrets.token_hex(8)}"
        target = self._snapshot_dir(ref)
        target.mkdir(parents=True)
        parts = [part for part in SNAPSHOT_PARTS if (root / part).exists()]
        live = self._live(handle.session_id)
        if live is not None:
            await self._copy_confined(root, target, parts, live)
        else:  # unconfined, or nothing of it runs any more: nothing can change the tree meanwhile
            for part in parts:
                await copy_tree(root / part, target / part)
        for name in UNSNAPSHOTTED:
            with contextlib.suppress(OSError):
                hostfs.remove(target, name)
        return ref

    async def _copy_confined(self, root: Path, target: Path, parts: list[str], live: Held) -> None:
        """Copy a running sandbox's tree from inside its own confinement, as its uid: a root ``cp``
        would follow a directory the agent swaps for a link mid-copy (to /etc, to the data dir)."""
        owner = live.uid
        if owner is not None:
            os.chown(target, owner, owner)
        outbox = self._data_dir / "snapshot-out"  # inside the jail: in the tmpfs over the data dir
        inside = self._inside(root)
        jail = dataclasses.replace(
            self._jail(root, None, owner), env={"PATH": self._base_path}, writable=((target, outbox),)
        )
        program = ["cp", "-a", "--", *(str(inside / part) for part in parts), str(outbox)]
        args = jail.command(program)
        if live.group is not None:
            args = live.group.wrap(args)
        result = await run(args, cwd=root, env={"PATH": self._base_path}, timeout=COPY_TIMEOUT_S)
        if result.code != 0:
            raise ProviderError(f"cannot snapshot {root.name}: {tail(result.output, 5)}")

    def _live(self, session_id: str) -> Held | None:
        """What the session's running, confined sandbox holds (its uid, its cgroup); None otherwise."""
        handle = self._by_session.get(session_id)
        process = self._processes.get(handle.sandbox_id) if handle is not None else None
        if process is None or process.returncode is not None or not self.isolated:
            return None
        return self._held.get(process)  # every launched process has its entry

    async def stop(self, handle: SandboxHandle) -> None:
        process = self._forget(handle)
        if process is not None:
            await self._terminate(process, handle.sandbox_id)

    async def _terminate(self, process: Process, name: str) -> None:
        """SIGTERM to the whole tree, SIGKILL to what is left after the grace period."""
        if process.returncode is not None:
            return
        tree = [process.pid, *processes.descendants(process.pid)]
        processes.send(tree, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_S)
        except TimeoutError:
            log.warning("sandbox %s ignored SIGTERM; killing", name)
        processes.send([process.pid, *tree, *processes.descendants(process.pid)], signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 5)
        self._reclaim()

    async def status(self, handle: SandboxHandle) -> SandboxState:
        process = self._processes.get(handle.sandbox_id)
        if process is None:
            return "unknown"
        return "running" if process.returncode is None else "exited"

    async def close(self, *, keep_running: bool = False) -> None:
        # pooled and parked sandboxes wait on a claim pipe that dies with this process: they end
        await self.pool.close()
        await self.parking.close()
        if keep_running and self._outlive:
            for process, held in list(self._held.items()):
                if held.network is not None:  # the directory stays: the sandbox has it bound
                    await held.network.close(keep_directory=True)
                if held.claims is not None:
                    os.close(held.claims)
                del self._held[process]
            self._processes.clear()
            self._by_session.clear()
        else:
            await asyncio.gather(*(self.stop(handle) for handle in list(self._by_session.values())))
        await asyncio.gather(*self._chores, return_exceptions=True)

    async def adopt(self, survivors: list[Survivor], *, leave: frozenset[str] = frozenset()) -> Adoption:
        """Take over the sandboxes an earlier server left running: each one the database lists whose
        record names a live process (the same pid *and* start time) is served again — its uid, its
        cgroup, its relay sockets made anew in the directory it has bound — and reconnects by itself.
        Every other recorded sandbox is ended, except those in ``leave`` (a live peer replica sharing
        this data directory serves them); a listed one that is gone is reported lost."""
        wanted = {s.sandbox_id: s for s in survivors}
        adoption = Adoption()
        for record in await asyncio.to_thread(self._records.all):
            if record.sandbox_id in leave:
                continue
            survivor = wanted.get(record.sandbox_id)
            alive = processes.start_time(record.pid) == record.started
            if survivor is None or survivor.session_id != record.session_id or not alive:
                if alive:  # not the database's any more (stopped meanwhile, or replaced): it ends
                    await self._terminate(processes.Adopted(record.pid, record.started), record.sandbox_id)
                self._release(record)
                continue
            try:
                adoption.handles.append(await self._take_back(record))
            except (OSError, ProviderError) as exc:
                log.warning("cannot adopt sandbox %s: %s", record.sandbox_id, exc)
                await self._terminate(processes.Adopted(record.pid, record.started), record.sandbox_id)
                self._release(record)
                adoption.lost[record.sandbox_id] = f"it could not be taken over after the restart ({exc})"
        found = {handle.sandbox_id for handle in adoption.handles}
        for sandbox_id in wanted.keys() - found - adoption.lost.keys():
            adoption.lost[sandbox_id] = "its processes ended while the server was down"
        return adoption

    async def _take_back(self, record: SandboxRecord) -> SandboxHandle:
        process = processes.Adopted(record.pid, record.started)
        if record.uid is not None and self._uids is not None:
            self._uids.taken(record.uid)
        group = self._group_of(record)
        network = None
        if record.relays is not None:
            routes = dict(record.routes)
            if self._control is not None and "bridge" in routes:
                # to this server, which may not be the one that started it (a replica that died)
                routes["control"] = routes["bridge"] = self._control
            network = self._network(self._relay_dir(record), record.session_id, routes, record.allow)
            if record.bridge_token:
                network.identity = Identity(record.sandbox_id, record.bridge_token)
            await network.start(again=True)
        self._held[process] = Held(process=process, uid=record.uid, group=group, network=network, allow=record.allow)
        log.info("adopted sandbox %s of session %s (pid %s)", record.sandbox_id, record.session_id, record.pid)
        return self._track(record.sandbox_id, record.session_id, process, record.key)

    def _relay_dir(self, record: SandboxRecord) -> Path:
        path = Path(record.relays or "")
        if path.parent != self._data_dir / "relays":
            raise ProviderError(f"the record of {record.sandbox_id} names no relay directory of ours")
        return path

    def _release(self, record: SandboxRecord) -> None:
        """What an ended sandbox of an earlier server still holds on the host."""
        self._records.remove(record.sandbox_id)
        with contextlib.suppress(ProviderError):
            shutil.rmtree(self._relay_dir(record), ignore_errors=True)
        group = self._group_of(record)
        if group is not None:
            group.remove()

    def _group_of(self, record: SandboxRecord) -> Group | None:
        return self._cgroups.open(record.group) if self._cgroups is not None and record.group else None

    def _delete_later(self, path: Path) -> None:
        """Delete a directory in the background (thousands of files need not hold anyone up)."""
        task = asyncio.create_task(asyncio.to_thread(shutil.rmtree, path, True))
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    async def deliver_branch(self, session_id: str, branch: str, origin: str) -> None:
        """Fetch the bundled branch into the local origin. Git runs in the origin — the person's own
        repository, with its own configuration — and reads the bundle as data: nothing the agent
        wrote is run, and nothing in the sandbox's directory is followed (the bundle is copied out)."""
        path = _is_local_path(origin)
        if path is None or not path.is_dir() or not valid_branch(branch):
            raise ProviderError(f"cannot deliver {branch!r} to {origin!r}")
        with tempfile.TemporaryDirectory(prefix="inspect-outbox-") as scratch:
            bundle = Path(scratch) / "branch.bundle"
            try:
                await asyncio.to_thread(
                    hostfs.copy_out, self.sandbox_dir(session_id), OUTBOX_BUNDLE, bundle, limit=MAX_BUNDLE_BYTES
                )
            except OSError as exc:
                raise ProviderError(f"the sandbox left no branch to deliver ({exc})") from None
            args = ["git", "-c", "transfer.fsckObjects=true", "fetch", "--no-tags", "--no-write-fetch-head"]
            result = await run([*args, str(bundle), f"HEAD:refs/heads/{branch}"], cwd=path, env=self._host_git_env())
        if result.code != 0:
            raise ProviderError(tail(result.output, 5))

    async def diff(self, session_id: str, base_branch: str) -> str | None:
        """``git diff origin/<base>`` (committed and uncommitted changes), read INSIDE the running
        sandbox's confinement, as its uid, in its cgroup: the workspace's git configuration is the
        agent's (``diff.external``, ``core.fsmonitor``, textconv and filter drivers would run), so the
        host never runs git there. Once the sandbox is gone, the last diff read is shown (its uid may
        belong to another sandbox by then: nothing runs as it)."""
        root = self.sandbox_dir(session_id)
        kept = self._data_dir / "diffs" / f"{session_id}.diff"
        live = self._live(session_id)
        if live is None and self.isolated:
            return await asyncio.to_thread(_read_or_none, kept)
        if self._refusal or not valid_branch(base_branch) or not (root / "workspace" / ".git").is_dir():
            return None
        workspace = self._inside(root) / "workspace"
        program = ["git", "-C", str(workspace), "-c", f"safe.directory={workspace}", "diff", "--no-color"]
        program += ["--no-ext-diff", "--no-textconv", "--stat", "--patch", f"origin/{base_branch}", "--"]
        env = {"PATH": self._base_path, "HOME": str(self._inside(root) / "home"), "GIT_TERMINAL_PROMPT": "0"}
        if live is not None:
            program = dataclasses.replace(self._jail(root, None, live.uid), env=env).command(program)
            program = live.group.wrap(program) if live.group is not None else program
            env = {"PATH": self._base_path}
        result = await run(program, cwd=root, env=env, timeout=DIFF_TIMEOUT_S)
        if result.code != 0:
            return None
        await asyncio.to_thread(_keep, kept, result.output[:MAX_KEPT_DIFF])
        return result.output

    def _host_git_env(self) -> dict[str, str]:
        return {"PATH": self._base_path, "HOME": os.environ.get("HOME", "/"), "GIT_TERMINAL_PROMPT": "0"}

    def exit_code(self, handle: SandboxHandle) -> int | None:
        process = self._processes.get(handle.sandbox_id)
        return None if process is None else process.returncode

    # --- internals -----------------------------------------------------------------------------
    async def _ensure_free(self, spec: SandboxSpec) -> None:
        running = self._by_session.get(spec.session_id)
        if running is not None and await self.status(running) == "running":
            raise ProviderError(f"session {spec.session_id} already has a running sandbox ({running.sandbox_id})")

    async def _claim(self, spec: SandboxSpec) -> Path:
        """The session's directory, emptied; refused while another sandbox of the session runs."""
        await self._ensure_free(spec)
        await self.parking.leave(spec.session_id)
        root = self.sandbox_dir(spec.session_id)
        if root.exists():  # out of the way at once; deleting thousands of files need not delay the boot
            trash = self._sandboxes / f".trash-{secrets.token_hex(6)}"
            root.rename(trash)
            self._delete_later(trash)
        return root

    def _image_dir(self, ref: str) -> Path:
        """A prebuilt image's directory; ProviderError when there is none (e.g. cleaned up)."""
        source = self._ref_dir(self._images, "img_", ref)
        if not (source / "workspace").is_dir():
            raise ProviderError(f"image {ref} does not exist")
        return source

    def _snapshot_dir(self, ref: str) -> Path:
        return self._ref_dir(self._snapshots, "snap_", ref)

    @staticmethod
    def _ref_dir(parent: Path, prefix: str, ref: str) -> Path:
        if not ref.startswith(prefix) or "/" in ref or ".." in ref:
            raise ProviderError(f"not a local {prefix.rstrip('_')} reference: {ref!r}")
        parent.mkdir(parents=True, exist_ok=True)
        return parent / ref

    def _inside(self, root: Path) -> Path:
        """Where the sandbox sees its directory: one path for all when isolated (see the docstring)."""
        return self._data_dir / "sandbox" if self._isolate else root

    def inner_root(self, session_id: str) -> Path:
        """The session's sandbox directory as the sandbox (and so the agent) sees it."""
        return self._inside(self.sandbox_dir(session_id))

    def _public_environment(self, root: Path) -> dict[str, str]:
        """What the runtime starts with: paths and locale, nothing secret (bwrap's argv shows it)."""
        root = self._inside(root)
        home = root / "home"
        return {
            "PATH": self._base_path,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_STATE_HOME": str(home / ".local" / "state"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "TMPDIR": str(root / "tmp"),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(PROJECT_ROOT),
            "PYTHONUNBUFFERED": "1",
            "SANDBOX_ROOT": str(root),
            "SANDBOX_OPENCODE_BIN": self._opencode_bin,
            **({"SANDBOX_OPENCODE_PLUGIN_TEMPLATE": str(self._plugin_template)} if self._plugin_template else {}),
        }

    def _environment(self, root: Path, spec: SandboxSpec) -> dict[str, str]:
        """Everything the runtime sees: the public variables, then the spec's (secrets, tokens)."""
        return {**self._public_environment(root), **spec.environment()}

    def _jail(self, root: Path, spec: SandboxSpec | None, uid: int | None) -> Jail:
        """What this sandbox may see (see ``confine.py``): its directory, the runtime's code and
        tools read-only, a local origin read-only; not the data dir, the checkout or any home."""
        opencode = Path(shutil.which(self._opencode_bin) or self._opencode_bin)
        python = Path(self._python)
        wanted = [
            PROJECT_ROOT / "sandbox",
            Path(sys.prefix),
            Path(sys.base_prefix).resolve(),
            python.parent.parent,
            python.resolve().parent.parent,
            opencode.parent.parent,  # .tools/node_modules (the link and what it points to)
            opencode.resolve().parent.parent,
            *([self._plugin_template] if self._plugin_template is not None else []),
            *_resolver_dir(),
        ]
        hidden = (*ALWAYS_HIDDEN, PROJECT_ROOT, self._data_dir)
        # only absolute, existing paths that hold nothing hidden (a tool at /opt/x must not show /opt)
        show = [
            p
            for p in wanted
            if p.is_absolute() and p.exists() and not any(h == p or h.is_relative_to(p) for h in hidden)
        ]
        origin = _is_local_path(spec.repo_url) if spec is not None else None
        if origin is not None and any(h == origin or h.is_relative_to(origin) for h in hidden):
            raise ProviderError(f"the repository {origin} holds Inspect's own files: it cannot be used")
        return Jail(
            root=root,
            inside=self._inside(root),
            uid=uid,
            hide=hidden,  # /var/run is /run (a link) on Debian
            show=tuple(show),
            readonly=(origin,) if origin is not None and origin.exists() else (),
            mask=tuple(p for p in {Path.cwd() / ".env"} if p.is_file()),  # the server's .env, if visible
            env=self._public_environment(root),
        )

    @staticmethod
    def _prepare_dirs(root: Path) -> None:
        for part in ("home/.config", "home/.local/share", "home/.local/state", "home/.cache", "state", "tmp"):
            (root / part).mkdir(parents=True, exist_ok=True)

    async def _start(self, root: Path, spec: SandboxSpec) -> SandboxHandle:
        self._prepare_dirs(root)
        if not self._isolate:
            log.warning("%s (sandbox %s)", UNISOLATED_WARNING, spec.sandbox_id)
        process = await self._launch(root, spec, module=SUPERVISOR, log_name="supervisor.log")
        return self._register(spec, process)

    def _forget(self, handle: SandboxHandle) -> Process | None:
        self._keys.pop(handle.sandbox_id, None)
        self._by_session.pop(handle.session_id, None)
        self._records.remove(handle.sandbox_id)
        return self._processes.pop(handle.sandbox_id, None)

    def _register(self, spec: SandboxSpec, process: Process) -> SandboxHandle:
        """``process`` is the session's sandbox now: known here, and recorded for the next server."""
        handle = self._track(spec.sandbox_id, spec.session_id, process, pool_key("", spec))
        held = self._held.get(process)
        started = processes.start_time(process.pid)
        if held is not None and started is not None:
            network = held.network
            self._records.write(
                SandboxRecord(
                    sandbox_id=spec.sandbox_id,
                    session_id=spec.session_id,
                    pid=process.pid,
                    started=started,
                    key=self._keys[spec.sandbox_id],
                    uid=held.uid,
                    group=held.group.name if held.group is not None else None,
                    relays=str(network.directory) if network is not None else None,
                    routes=dict(network.routes) if network is not None else {},
                    allow=held.allow,
                    bridge_token=network.identity.token if network is not None and network.identity else "",
                )
            )
        return handle

    def _track(self, sandbox_id: str, session_id: str, process: Process, key: str) -> SandboxHandle:
        handle = SandboxHandle(
            provider=self.name,
            sandbox_id=sandbox_id,
            session_id=session_id,
            provider_id=str(process.pid),
            isolated=self._isolate,
            warnings=[] if self._isolate else [UNISOLATED_WARNING],
        )
        self._processes[sandbox_id] = process
        self._by_session[session_id] = handle
        self._keys[sandbox_id] = key
        return handle

    async def _launch(
        self, root: Path, spec: SandboxSpec, *, module: str, log_name: str, lasting: bool = True
    ) -> asyncio.subprocess.Process:
        """Start ``module`` of the sandbox runtime in ``root``, confined, its output to a log file.
        ``lasting``: it may outlive this server (a session's sandbox; not a build).

        The spec's variables (secrets, tokens) travel in a memfd the runtime reads and closes
        (``sandbox/runtime/environment.py``): nothing secret in any host process's argv or environ.
        """
        if self._refusal:
            raise ProviderError(self._refusal)
        # a uid something still runs as is not free, whoever started it (a server that died before
        # recording its sandbox, another server on this machine): sandboxes never share a uid.
        # Read from /proc in a thread: every process's status file, not work for the event loop.
        busy = await asyncio.to_thread(processes.running_as, self._uids.ids) if self._uids is not None else {}
        uid = self._take_uid(set(busy.values()))
        group: Group | None = None  # its cgroup
        network: SandboxNetwork | None = None
        allow: tuple[str, ...] = ()
        claims_out: int | None = None
        fds: list[int] = []
        try:
            if self._own_network:
                spec, network, allow = await self._network_for(spec)
            if self._cgroups is not None and self.limits is not None:
                group = self._cgroups.create(f"sbx-{secrets.token_hex(6)}", self.limits)
            if uid is not None:
                await _give(root, uid)
            fds.append(_memfd("sandbox-env", json.dumps(spec.environment())))
            claims_in, claims_out = os.pipe()  # the runtime's claims (pooled, parked): never a file
            fds.append(claims_in)
            public = {
                **self._public_environment(root),
                ENV_FD_VARIABLE: str(fds[0]),
                CLAIM_FD_VARIABLE: str(claims_in),
            }
            program = [self._python, "-m", module]
            if self._isolate:
                passwd_fd = group_fd = None
                if uid is not None:
                    passwd, groups = user_entries(_read("/etc/passwd"), _read("/etc/group"), uid, Path(public["HOME"]))
                    passwd_fd, group_fd = _memfd("passwd", passwd), _memfd("group", groups)
                    fds += [passwd_fd, group_fd]
                if network is not None:
                    public.update(proxy_environment())
                jail = dataclasses.replace(
                    self._jail(root, spec, uid), env=public, relays=network.directory if network else None
                )
                args, env = jail.command(program, passwd_fd=passwd_fd, group_fd=group_fd), {"PATH": self._base_path}
                if lasting and self._outlive:
                    args = kept_apart(args)
            else:
                args, env = program, public
            if group is not None:
                args = group.wrap(args)
            log_fd = hostfs.open_log(root, log_name)
            fds.append(log_fd)
            process = await asyncio.create_subprocess_exec(
                *args,
                cwd=root,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                start_new_session=True,
                pass_fds=fds[:-1],
            )
        except BaseException as exc:  # cancelled too: what was taken for it is given back
            if claims_out is not None:
                os.close(claims_out)
            if uid is not None and self._uids is not None:
                self._uids.give_back(uid)
            if group is not None:
                group.remove()
            if network is not None:
                await network.close()
            if isinstance(exc, OSError):
                raise ProviderError(f"cannot start sandbox {spec.sandbox_id}: {exc}") from exc
            raise
        finally:
            for fd in fds:
                os.close(fd)
        self._held[process] = Held(
            process=process, uid=uid, group=group, network=network, claims=claims_out, allow=allow
        )
        return process

    async def _network_for(self, spec: SandboxSpec) -> tuple[SandboxSpec, SandboxNetwork, tuple[str, ...]]:
        """The host end of a new sandbox's own network, its spec as seen from inside it, and the hosts
        its egress allows beyond the installation's list."""
        inner, routes, allow = through_relays(spec, self._control)
        network = self._network(self._data_dir / "relays" / secrets.token_hex(8), spec.session_id, routes, allow)
        if spec.token:  # a standby's is learnt at its claim
            network.identity = Identity(spec.sandbox_id, spec.token)
        await network.start()
        return inner, network, tuple(allow)

    def _network(self, directory: Path, session_id: str, routes: dict, allow: Sequence[str]) -> SandboxNetwork:
        def denied(host: str, reason: str) -> None:
            log.info("sandbox of %s: egress to %s refused (%s)", session_id or "(pool)", host, reason)
            if self.on_egress_denied is not None and session_id:
                self.on_egress_denied(session_id, host, reason)

        proxy = EgressProxy(EgressPolicy.of([*self._egress_allow, *allow]), denied=denied)
        return SandboxNetwork(directory, routes=routes, proxy=proxy)

    def _reclaim(self) -> None:
        """Free what ended sandboxes held: their uids, and their groups once empty."""
        for process, held in list(self._held.items()):
            if process.returncode is None:
                continue
            if held.uid is not None and self._uids is not None:
                self._uids.give_back(held.uid)
                held.uid = None
            if held.claims is not None:
                with contextlib.suppress(OSError):
                    os.close(held.claims)
                held.claims = None
            if held.network is not None:
                network, held.network = held.network, None
                self._chores.add(task := asyncio.ensure_future(network.close()))
                task.add_done_callback(self._chores.discard)
            if held.group is None or held.group.remove():
                del self._held[process]

    def oom_kills(self, handle: SandboxHandle) -> int:
        process = self._processes.get(handle.sandbox_id)
        held = self._held.get(process) if process is not None else None
        return held.group.oom_kills() if held is not None and held.group is not None else 0

    def _take_uid(self, busy: set[int]) -> int | None:
        """A free host uid for a new sandbox (root only), none of ``busy``; those of ended sandboxes
        are free again."""
        self._reclaim()
        if self._uids is None:
            return None
        try:
            return self._uids.take(busy)
        except UidsExhausted as exc:
            raise ProviderError(f"{exc}: raise INSPECT_SANDBOX_UID_COUNT or stop some sessions") from None


@dataclasses.dataclass
class Held:
    """What one running sandbox process holds until it ends."""

    process: Process
    uid: int | None
    group: Group | None
    network: SandboxNetwork | None = None
    claims: int | None = None  # the write end of its claim pipe (none once adopted)
    allow: tuple[str, ...] = ()  # egress hosts allowed for its session beyond the installation's


def _memfd(name: str, text: str) -> int:
    """An anonymous in-memory file holding ``text``, positioned at its start (for a child to read)."""
    fd = os.memfd_create(name)  # close-on-exec: a child gets it only through pass_fds
    os.write(fd, text.encode())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _read_or_none(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _keep(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _resolver_dir() -> list[Path]:
    """Where /etc/resolv.conf really lives, when that is under the hidden /run (systemd-resolved)."""
    real = Path("/etc/resolv.conf").resolve()
    return [real.parent] if real.is_relative_to("/run") else []


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


async def _give(root: Path, uid: int) -> None:
    """Make ``root`` the sandbox uid's alone: its files (copied from an image or snapshot, made by the
    server) change owner, links themselves and never what they point to (``-h``); no one else may enter."""
    process = await asyncio.create_subprocess_exec(
        "chown", "-R", "-h", f"{uid}:{uid}", "--", str(root), stderr=asyncio.subprocess.PIPE
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), COPY_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise ProviderError(f"giving {root.name} to its sandbox took over {COPY_TIMEOUT_S:.0f}s") from None
    if process.returncode != 0:
        raise ProviderError(f"cannot give {root.name} to its sandbox: {stderr.decode(errors='replace').strip()[:300]}")
    os.chmod(root, 0o700)  # noqa: PTH101 - one syscall, after the chown

"""Sandboxes on Modal: one ``modal.Sandbox`` per session, running the same runtime as local ones.

The only module that talks to Modal, through its ``.aio`` calls (never blocking the event loop).
The ``modal`` module is injected (``sdk``) so tests fake it at the SDK's boundary; the fake binds
every call against the installed SDK's signatures (``tests/fakes/modal_sdk.py``).

- spawn: ``Sandbox.create`` with the base image (``sandbox/image.py``); the public variables
  (paths, ``PYTHONPATH``) as ``env``, the spec's as a ``Secret`` (so its values never appear in the
  sandbox's definition); cpu/memory; a hard lifetime (``timeout``) and no idle timeout: Modal
  counts only exec, stdin and tunnel traffic as activity — not the runtime's own WebSocket to the
  bridge — so an idle timeout would stop a sandbox in the middle of a long prompt. The control
  plane's idle watchdog (``control/lifecycle.py``) snapshots and stops idle sessions instead;
- egress: the repository's allowlist (the installation's hosts, the repository's own, the bridge,
  git and model hosts) as Modal's ``outbound_domain_allowlist`` (``outbound_allowlists``);
- snapshot: ``snapshot_filesystem`` → an image id; restore / start from an image: ``Image.from_id``
  with the current runtime mounted on top (``image.with_runtime``);
- image builds: a sandbox that runs ``sandbox.runtime.build`` (which removes its tool token
  whatever happens), then ``snapshot_filesystem``;
- stop: ``terminate``; status: ``poll`` (``None`` while running; 137 once terminated);
- cleanup: ``modal.experimental.image_delete`` for superseded images and snapshots.

Exec'd processes: their output is read while they run (a process whose output nobody reads may
block on a full pipe), and ``wait`` returning -1 means the exec ``timeout`` passed — modal 1.6.4
reports it that way, not as an exception, and the output stream just ends early.

No tunnels (``Capabilities.tunnels`` is False): a live preview is relayed through the sandbox's own
bridge connection (the runtime opens the port inside the sandbox), which works the same on both
providers; Modal's ``encrypted_ports`` would only add a second, public way in.

Modal sandboxes keep running when the server restarts (they reconnect over the bridge), so the
provider says ``outlives_server``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from sandbox.image import PLUGIN_DIR, RUNTIME_PARENT, SANDBOX_ROOT, modal_image, with_runtime
from sandbox.providers.base import (
    BuildResult,
    Capabilities,
    ProviderError,
    SandboxHandle,
    SandboxProvider,
    SandboxSpec,
    SandboxState,
)

log = logging.getLogger(__name__)

# A session snapshot lets a follow-up resume where the last prompt ended; a week covers people who
# come back after a weekend, and each session keeps only its newest one.
SNAPSHOT_TTL_S = 7 * 24 * 3600
# Images are rebuilt every 30 minutes when their branch moves, and an unchanged branch keeps its
# image; three days bridges a quiet weekend without paying for stale images for a month (the default).
IMAGE_TTL_S = 3 * 24 * 3600
SNAPSHOT_TIMEOUT_S = 120
DIFF_TIMEOUT_S = 20
READ_TIMEOUT_S = 20
EXEC_TIMED_OUT = -1  # ContainerProcess.wait() once the exec timeout passed
RUNTIME = ("python", "-m", "sandbox.runtime.supervisor")
BUILD = ("python", "-m", "sandbox.runtime.build")
_HOME = f"{SANDBOX_ROOT}/home"
# What every sandbox's processes see besides the spec's variables: nothing secret.
PUBLIC_ENVIRONMENT = {
    "HOME": _HOME,
    "XDG_CONFIG_HOME": f"{_HOME}/.config",
    "XDG_DATA_HOME": f"{_HOME}/.local/share",
    "XDG_STATE_HOME": f"{_HOME}/.local/state",
    "XDG_CACHE_HOME": f"{_HOME}/.cache",
    "LANG": "C.UTF-8",
    "PYTHONPATH": RUNTIME_PARENT,  # where the image mounts the runtime package
    "PYTHONUNBUFFERED": "1",
    "SANDBOX_ROOT": SANDBOX_ROOT,
    "SANDBOX_OPENCODE_BIN": "opencode",
    "SANDBOX_OPENCODE_PLUGIN_TEMPLATE": PLUGIN_DIR,
}


def outbound_allowlists(hosts: Iterable[str]) -> dict[str, list[str]]:
    """Modal's outbound allowlists for our allowlist entries (pure): a name as itself, ``.example.com``
    (it and every subdomain) as ``example.com`` and ``*.example.com``, an IP address as its own
    /32 or /128 (a domain allowlist cannot hold one)."""
    domains: set[str] = set()
    cidrs: set[str] = set()
    for entry in hosts:
        name = entry.strip().lower().rstrip(".")
        try:
            cidrs.add(str(ipaddress.ip_network(ipaddress.ip_address(name.strip("[]")))))
        except ValueError:
            if name.startswith("."):
                domains |= {name[1:], f"*{name}"}
            elif name:
                domains.add(name)
    return {"outbound_domain_allowlist": sorted(domains), "outbound_cidr_allowlist": sorted(cidrs)}


def spec_hosts(spec: SandboxSpec) -> list[str]:
    """The hosts a sandbox must reach for ``spec`` itself: the bridge and the control plane's API,
    the git host and the model endpoint, and the repository's own allowlist."""
    urls = (spec.bridge_url, spec.api_url, spec.repo_url, spec.llm_base_url)
    return [*spec.egress_hosts, *(host for url in urls if (host := urlsplit(url).hostname))]


class ModalProvider(SandboxProvider):
    name = "modal"
    capabilities = Capabilities(snapshots=True, tunnels=False, outlives_server=True)

    def __init__(
        self,
        *,
        sdk: Any,
        app_name: str = "inspect",
        cpu: float = 2.0,
        memory_mb: int = 4096,
        lifetime_s: int = 24 * 3600,
        egress_allow: tuple[str, ...] = (),
    ) -> None:
        self._sdk = sdk
        self._app_name = app_name
        self._cpu = cpu
        self._memory_mb = memory_mb
        self._lifetime_s = lifetime_s
        self._egress_allow = egress_allow  # the installation's hosts (registries, model providers)
        self._app: Any = None
        self._image: Any = None
        self._sandboxes: dict[str, Any] = {}  # by provider id
        self._by_session: dict[str, str] = {}  # session id → provider id of its current sandbox

    # --- interface -----------------------------------------------------------------------------
    async def spawn(self, spec: SandboxSpec) -> SandboxHandle:
        return await self._create(spec, self._base())

    async def restore(self, snapshot_ref: str, spec: SandboxSpec) -> SandboxHandle:
        return await self._create(dataclasses.replace(spec, boot_mode="snapshot_restore"), self._from_id(snapshot_ref))

    async def start_from_image(self, image_ref: str, spec: SandboxSpec) -> SandboxHandle:
        return await self._create(dataclasses.replace(spec, boot_mode="image"), self._from_id(image_ref))

    async def snapshot(self, handle: SandboxHandle) -> str:
        sandbox = await self._sandbox(handle.provider_id)
        return await self._snapshot(sandbox, SNAPSHOT_TTL_S)

    async def stop(self, handle: SandboxHandle) -> None:
        sandbox = self._sandboxes.pop(handle.provider_id, None)
        if self._by_session.get(handle.session_id) == handle.provider_id:
            del self._by_session[handle.session_id]
        try:
            sandbox = sandbox or await self._sdk.Sandbox.from_id.aio(handle.provider_id)
            await sandbox.terminate.aio()  # a no-op when it already finished
        except self._sdk.exception.Error as exc:
            raise ProviderError(f"cannot stop Modal sandbox {handle.provider_id}: {exc}") from exc

    async def status(self, handle: SandboxHandle) -> SandboxState:
        try:
            sandbox = await self._sandbox(handle.provider_id)
            code = await sandbox.poll.aio()  # its exit code once over (137 when terminated)
        except (ProviderError, self._sdk.exception.Error):
            return "unknown"
        return "running" if code is None else "exited"

    async def close(self, *, keep_running: bool = False) -> None:
        self._sandboxes.clear()  # they outlive this server and reconnect to the next one (either way)
        self._by_session.clear()

    async def build_image(self, spec: SandboxSpec, *, timeout_s: float) -> BuildResult:
        """A throwaway sandbox clones and runs setup.sh (``sandbox.runtime.build``); its filesystem
        becomes the image. It is terminated whatever happens."""
        sandbox = await self._start(
            spec, self._base(), "sleep", "infinity", timeout=int(timeout_s) + SNAPSHOT_TIMEOUT_S
        )
        try:
            quiet = self._sdk.stream_type.StreamType.DEVNULL  # its log is in build.json; nobody reads a pipe
            process = await sandbox.exec.aio(*BUILD, timeout=int(timeout_s), stdout=quiet, stderr=quiet)
            code = await process.wait.aio()
            if code == EXEC_TIMED_OUT:
                return BuildResult(ok=False, log_tail=f"the build did not finish within {timeout_s:.0f}s")
            _, raw = await self._run(sandbox, "cat", f"{SANDBOX_ROOT}/state/build.json", timeout=READ_TIMEOUT_S)
            try:
                outcome = json.loads(raw or "{}")
            except ValueError:
                outcome = {}
            if code != 0 or not outcome.get("ok"):
                tail = outcome.get("log_tail") or f"the build exited with {code} and wrote no result"
                return BuildResult.from_outcome({**outcome, "ok": False, "log_tail": tail})
            return BuildResult.from_outcome(outcome, ref=await self._snapshot(sandbox, IMAGE_TTL_S))
        except self._sdk.exception.Error as exc:
            return BuildResult(ok=False, log_tail=f"Modal: {exc}")
        finally:
            try:
                await sandbox.terminate.aio()
            except self._sdk.exception.Error as exc:
                log.warning("terminating build sandbox: %s", exc)

    async def diff(self, session_id: str, base_branch: str) -> str | None:
        """The session's changes, read inside its running sandbox (None when it is not running)."""
        provider_id = self._by_session.get(session_id)
        if provider_id is None or base_branch.startswith("-"):
            return None
        try:
            sandbox = await self._sandbox(provider_id)
            code, output = await self._run(
                sandbox, "git", "-C", f"{SANDBOX_ROOT}/workspace", "diff", "--no-color", "--stat", "--patch",
                f"origin/{base_branch}", timeout=DIFF_TIMEOUT_S,
            )  # fmt: skip
        except (ProviderError, self._sdk.exception.Error):
            return None
        if code == EXEC_TIMED_OUT:
            log.info("the diff of session %s took over %ss", session_id, DIFF_TIMEOUT_S)
            return None  # what came before the deadline is half a diff
        return output if code == 0 else None

    async def delete_image(self, image_ref: str) -> None:
        await self._delete(image_ref)

    async def delete_snapshot(self, snapshot_ref: str) -> None:
        await self._delete(snapshot_ref)

    # --- internals -----------------------------------------------------------------------------
    def _base(self) -> Any:
        if self._image is None:
            self._image = modal_image(self._sdk)
        return self._image

    def _from_id(self, ref: str) -> Any:
        """An earlier filesystem with the current runtime on top (not the one it captured)."""
        return with_runtime(self._sdk.Image.from_id(self._image_id(ref)))

    @staticmethod
    def _image_id(ref: str) -> str:
        if not ref.startswith("im-"):
            raise ProviderError(f"not a Modal image id: {ref!r}")
        return ref

    async def _lookup_app(self) -> Any:
        if self._app is None:
            try:
                self._app = await self._sdk.App.lookup.aio(self._app_name, create_if_missing=True)
            except self._sdk.exception.Error as exc:
                raise ProviderError(f"cannot reach Modal app {self._app_name!r}: {exc}") from exc
        return self._app

    async def _start(self, spec: SandboxSpec, image: Any, *command: str, timeout: int) -> Any:
        """A Modal sandbox running ``command`` for ``spec``, for at most ``timeout`` seconds."""
        egress = outbound_allowlists([*self._egress_allow, *spec_hosts(spec)])
        try:
            return await self._sdk.Sandbox.create.aio(
                *command,
                app=await self._lookup_app(),
                image=image,
                env=dict(PUBLIC_ENVIRONMENT),
                secrets=[self._sdk.Secret.from_dict(spec.environment())],
                timeout=timeout,  # no idle_timeout: see the module's docstring
                cpu=self._cpu,
                memory=self._memory_mb,
                workdir=SANDBOX_ROOT,
                **egress,
            )
        except self._sdk.exception.Error as exc:
            raise ProviderError(f"cannot start a Modal sandbox: {exc}") from exc

    async def _create(self, spec: SandboxSpec, image: Any) -> SandboxHandle:
        sandbox = await self._start(spec, image, *RUNTIME, timeout=self._lifetime_s)
        self._sandboxes[sandbox.object_id] = sandbox
        self._by_session[spec.session_id] = sandbox.object_id
        return SandboxHandle(
            provider=self.name, sandbox_id=spec.sandbox_id, session_id=spec.session_id, provider_id=sandbox.object_id
        )

    async def _sandbox(self, provider_id: str) -> Any:
        sandbox = self._sandboxes.get(provider_id)
        if sandbox is None:
            try:
                sandbox = await self._sdk.Sandbox.from_id.aio(provider_id)
            except self._sdk.exception.Error as exc:
                raise ProviderError(f"no Modal sandbox {provider_id}: {exc}") from exc
            self._sandboxes[provider_id] = sandbox
        return sandbox

    async def _run(self, sandbox: Any, *command: str, timeout: int) -> tuple[int, str]:
        """``command``'s exit code (``EXEC_TIMED_OUT`` past ``timeout``) and output: read while it
        runs, since a process whose pipe nobody empties never exits."""
        process = await sandbox.exec.aio(*command, timeout=timeout, stderr=self._sdk.stream_type.StreamType.DEVNULL)
        output = await process.stdout.read.aio()
        return await process.wait.aio(), str(output)

    async def _snapshot(self, sandbox: Any, ttl_s: int) -> str:
        try:
            image = await sandbox.snapshot_filesystem.aio(timeout=SNAPSHOT_TIMEOUT_S, ttl=ttl_s)
        except self._sdk.exception.Error as exc:
            raise ProviderError(f"Modal snapshot failed: {exc}") from exc
        return str(image.object_id)

    async def _delete(self, ref: str) -> None:
        """Delete an image (a prebuilt one or a snapshot) at Modal; one already gone is fine."""
        try:
            await self._sdk.experimental.image_delete.aio(self._image_id(ref))
        except self._sdk.exception.NotFoundError:
            log.info("Modal image %s was already gone", ref)
        except self._sdk.exception.Error as exc:
            raise ProviderError(f"cannot delete Modal image {ref}: {exc}") from exc

"""Sandboxes on Modal: one ``modal.Sandbox`` per session, running the same runtime as local ones.

The only module that talks to Modal, through its ``.aio`` calls (never blocking the event loop).
The ``modal`` module is injected (``sdk``) so tests fake it at the SDK's boundary.

- spawn: ``Sandbox.create`` with the base image (``sandbox/image.py``), the spec's environment
  passed as a ``Secret`` (so values never appear in the sandbox's definition), cpu/memory, a hard
  lifetime and an idle timeout as a safety net behind the control plane's own idle handling;
- snapshot: ``snapshot_filesystem`` → an image id; restore / start from an image: ``Image.from_id``;
- image builds: a sandbox that runs ``sandbox.runtime.build``, then ``snapshot_filesystem``;
- stop: ``terminate``; status: ``poll``.

Modal sandboxes keep running when the server restarts (they reconnect over the bridge), so the
provider says ``outlives_server``. Modal keeps snapshot images until their TTL runs out; there is
no delete call, so cleanup here only forgets them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

from sandbox.image import PLUGIN_DIR, SANDBOX_ROOT, modal_image
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
RUNTIME = ("python", "-m", "sandbox.runtime.supervisor")


class ModalProvider(SandboxProvider):
    name = "modal"
    capabilities = Capabilities(snapshots=True, tunnels=True, outlives_server=True)

    def __init__(
        self,
        *,
        sdk: Any,
        app_name: str = "inspect",
        cpu: float = 2.0,
        memory_mb: int = 4096,
        lifetime_s: int = 24 * 3600,
        idle_timeout_s: int = 3600,
    ) -> None:
        self._sdk = sdk
        self._app_name = app_name
        self._cpu = cpu
        self._memory_mb = memory_mb
        self._lifetime_s = lifetime_s
        self._idle_timeout_s = idle_timeout_s
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
            await sandbox.terminate.aio()
        except self._sdk.exception.Error as exc:
            raise ProviderError(f"cannot stop Modal sandbox {handle.provider_id}: {exc}") from exc

    async def status(self, handle: SandboxHandle) -> SandboxState:
        try:
            sandbox = await self._sandbox(handle.provider_id)
            code = await sandbox.poll.aio()
        except (ProviderError, self._sdk.exception.Error):
            return "unknown"
        return "running" if code is None else "exited"

    async def close(self, *, keep_running: bool = False) -> None:
        self._sandboxes.clear()  # they outlive this server and reconnect to the next one (either way)
        self._by_session.clear()

    async def build_image(self, spec: SandboxSpec, *, timeout_s: float) -> BuildResult:
        """A throwaway sandbox clones and runs setup.sh (``sandbox.runtime.build``); its filesystem
        becomes the image. It is terminated whatever happens."""
        env = self._environment(spec)
        try:
            sandbox = await self._sdk.Sandbox.create.aio(
                "sleep",
                "infinity",
                app=await self._lookup_app(),
                image=self._base(),
                secrets=[self._sdk.Secret.from_dict(env)],
                timeout=int(timeout_s) + SNAPSHOT_TIMEOUT_S,
                cpu=self._cpu,
                memory=self._memory_mb,
                workdir=SANDBOX_ROOT,
            )
        except self._sdk.exception.Error as exc:
            raise ProviderError(f"cannot start a Modal build sandbox: {exc}") from exc
        try:
            process = await sandbox.exec.aio("python", "-m", "sandbox.runtime.build", timeout=int(timeout_s))
            code = await process.wait.aio()
            reader = await sandbox.exec.aio("cat", f"{SANDBOX_ROOT}/state/build.json")
            raw = await reader.stdout.read.aio()
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
            process = await sandbox.exec.aio(
                "git", "-C", f"{SANDBOX_ROOT}/workspace", "diff", "--no-color", "--stat", "--patch",
                f"origin/{base_branch}", timeout=DIFF_TIMEOUT_S,
            )  # fmt: skip
            if await process.wait.aio() != 0:
                return None
            return str(await process.stdout.read.aio())
        except (ProviderError, self._sdk.exception.Error):
            return None

    # --- internals -----------------------------------------------------------------------------
    def _base(self) -> Any:
        if self._image is None:
            self._image = modal_image(self._sdk)
        return self._image

    def _from_id(self, ref: str) -> Any:
        if not ref.startswith("im-"):
            raise ProviderError(f"not a Modal image id: {ref!r}")
        return self._sdk.Image.from_id(ref)

    async def _lookup_app(self) -> Any:
        if self._app is None:
            try:
                self._app = await self._sdk.App.lookup.aio(self._app_name, create_if_missing=True)
            except self._sdk.exception.Error as exc:
                raise ProviderError(f"cannot reach Modal app {self._app_name!r}: {exc}") from exc
        return self._app

    @staticmethod
    def _environment(spec: SandboxSpec) -> dict[str, str]:
        home = f"{SANDBOX_ROOT}/home"
        return {
            **spec.environment(),
            "HOME": home,
            "XDG_CONFIG_HOME": f"{home}/.config",
            "XDG_DATA_HOME": f"{home}/.local/share",
            "XDG_STATE_HOME": f"{home}/.local/state",
            "XDG_CACHE_HOME": f"{home}/.cache",
            "SANDBOX_ROOT": SANDBOX_ROOT,
            "SANDBOX_OPENCODE_BIN": "opencode",
            "SANDBOX_OPENCODE_PLUGIN_TEMPLATE": PLUGIN_DIR,
        }

    async def _create(self, spec: SandboxSpec, image: Any) -> SandboxHandle:
        try:
            sandbox = await self._sdk.Sandbox.create.aio(
                *RUNTIME,
                app=await self._lookup_app(),
                image=image,
                secrets=[self._sdk.Secret.from_dict(self._environment(spec))],
                timeout=self._lifetime_s,
                idle_timeout=self._idle_timeout_s,
                cpu=self._cpu,
                memory=self._memory_mb,
                workdir=SANDBOX_ROOT,
            )
        except self._sdk.exception.Error as exc:
            raise ProviderError(f"cannot start a Modal sandbox: {exc}") from exc
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

    async def _snapshot(self, sandbox: Any, ttl_s: int) -> str:
        try:
            image = await sandbox.snapshot_filesystem.aio(timeout=SNAPSHOT_TIMEOUT_S, ttl=ttl_s)
        except self._sdk.exception.Error as exc:
            raise ProviderError(f"Modal snapshot failed: {exc}") from exc
        return str(image.object_id)

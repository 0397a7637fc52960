"""A stand-in for the ``modal`` module at its boundary that cannot lie about the SDK's shape.

- Every call is bound against the installed SDK's own signature (``inspect.signature(modal.X).bind``):
  a wrong keyword, a missing required argument or a positional where the SDK wants a keyword raises
  ``TypeError`` in the test, as it would against Modal. ``.aio`` forms bind against the same function
  (synchronicity wraps one implementation for both); calling the blocking form raises, since the
  provider runs on the event loop.
- Images are the real SDK's lazy, offline image definitions (``modal.Image``): the provider's builder
  calls reach the real builder (which checks its own arguments), and ``mounted_files`` lists what the
  real ``add_local_python_source`` would upload, computed by the SDK itself.
- Return codes and errors follow modal 1.6.4 (read offline): ``poll`` is ``None`` while running and
  137 after ``terminate``; a process past its exec ``timeout`` ends its output stream early and
  ``wait`` returns -1 (no exception); ``exec`` on a finished sandbox raises ``ConflictError``; errors
  are the SDK's own ``modal.exception`` classes.
- One assumption, said here: a process's stdout is a pipe with a finite buffer. A process whose
  output is larger than ``PIPE_BUFFER`` and whose reader waits for it to exit before reading blocks
  until its exec timeout (then ``wait`` is -1).
"""

from __future__ import annotations

import inspect
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import modal
import modal._image
import modal.container_process
import modal.experimental
import modal.io_streams
from modal._utils.async_utils import synchronizer

_ids = itertools.count(1)
TERMINATED = 137  # poll() after terminate, modal.sandbox._common._result_returncode
EXEC_TIMED_OUT = -1  # ContainerProcess.wait() past the exec deadline
PIPE_BUFFER = 64 * 1024
LATEST_BUILDER = modal._image.LATEST_IMAGE_BUILDER_VERSION


def bind(real: Callable[..., Any], *args: Any, **kwargs: Any) -> inspect.BoundArguments:
    """``args``/``kwargs`` bound as the real SDK callable would bind them (TypeError when it would
    not). Methods read at class level show ``self``/``cls`` first: a placeholder stands in."""
    signature = inspect.signature(real)
    first = next(iter(signature.parameters), "")
    if first in ("self", "cls"):
        args = (None, *args)
    return signature.bind(*args, **kwargs)


class _Aio:
    """``obj.method.aio(...)``, bound against ``real`` before ``fn`` runs; ``obj.method(...)`` refused."""

    def __init__(self, real: Callable[..., Any], fn: Callable[..., Any]) -> None:
        self._real, self._fn = real, fn

    async def aio(self, *args: Any, **kwargs: Any) -> Any:
        bind(self._real, *args, **kwargs)
        return await self._fn(*args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"blocking call of {self._real!r} from async code: use .aio")


def _bound(real: Callable[..., Any], fn: Callable[..., Any]) -> Callable[..., Any]:
    """A synchronous SDK call (lazy builders, ``Secret.from_dict``), bound before ``fn`` runs."""

    def call(*args: Any, **kwargs: Any) -> Any:
        bind(real, *args, **kwargs)
        return fn(*args, **kwargs)

    return call


def _layers(image: modal.Image) -> Iterator[Any]:
    """The SDK objects ``image`` is made of (itself, the images under it, its mounts), top first."""
    pending = [synchronizer._translate_in(image)]
    while pending:
        obj = pending.pop(0)
        yield obj
        deps = getattr(obj, "_deps", None)
        pending.extend(deps() if deps is not None else [])


def image_ids(image: modal.Image) -> list[str]:
    """The ids of the existing images (``Image.from_id``, snapshots) ``image`` is built on."""
    return [obj._object_id for obj in _layers(image) if type(obj).__name__ == "_Image" and obj._object_id]


def mounted_files(image: modal.Image) -> dict[str, Path]:
    """Remote path → local file of everything the image's local mounts would upload, as the SDK
    computes it offline (``_Mount.entries`` → ``get_files_to_upload``), through every layer."""
    found: dict[str, Path] = {}
    for obj in _layers(image):
        if type(obj).__name__ == "_Mount":
            for entry in obj.entries:
                found |= {str(remote): local for local, remote in entry.get_files_to_upload()}
    return found


def dockerfile_commands(image: modal.Image, builder_version: str = LATEST_BUILDER) -> list[str]:
    """The Dockerfile lines of every build layer under ``image``, base first, as the SDK would send
    them to Modal's builder (each layer's own ``dockerfile_function``, read offline)."""
    layers: list[list[str]] = []
    for obj in _layers(image):
        load = getattr(obj, "_load", None)
        if load is None or "dockerfile_function" not in load.__code__.co_freevars:
            continue  # a mount, a secret, an image from an id: no build step of its own
        cells = dict(zip(load.__code__.co_freevars, (c.cell_contents for c in load.__closure__ or ()), strict=True))
        if cells["dockerfile_function"] is not None:
            layers.append(cells["dockerfile_function"](builder_version).commands)
    return [line for layer in reversed(layers) for line in layer]


@dataclass
class FakeSecret:
    values: dict[str, str]


@dataclass
class Script:
    """What an exec'd command does: its exit code and output; ``hangs``: it runs past its timeout."""

    code: int = 0
    stdout: str = ""
    hangs: bool = False


class FakeProcess:
    """A ``ContainerProcess``: ``wait``, ``poll`` and ``stdout.read`` (with their ``.aio``)."""

    def __init__(self, script: Script, *, timeout: int | None) -> None:
        self._script = script
        self._drained = False
        self._returncode: int | None = None
        # Past the deadline the real stream just ends: the reader gets what came before it.
        self._timed_out = script.hangs and timeout is not None
        real = modal.container_process.ContainerProcess

        async def wait() -> int:
            blocked = len(script.stdout) > PIPE_BUFFER and not self._drained  # nobody reads the pipe
            if self._timed_out or (blocked and timeout is not None):
                self._returncode = EXEC_TIMED_OUT
            elif script.hangs or blocked:
                raise AssertionError("a process with no exec timeout never ends: the call would hang")
            else:
                self._returncode = script.code
            return self._returncode

        async def poll() -> int | None:
            return self._returncode

        async def read() -> str:
            self._drained = True
            return script.stdout[: len(script.stdout) // 2] if self._timed_out else script.stdout

        self.wait = _Aio(real.wait, wait)
        self.poll = _Aio(real.poll, poll)
        self.stdout = SimpleNamespace(read=_Aio(modal.io_streams.StreamReader.read, read))
        self.stderr = SimpleNamespace(read=_Aio(modal.io_streams.StreamReader.read, read))


class FakeSandbox:
    def __init__(self, sdk: FakeModal, args: tuple[str, ...], kwargs: dict[str, Any]) -> None:
        self.object_id = f"sb-{next(_ids)}"
        self.args, self.kwargs = args, kwargs
        self.terminated = False
        self.execs: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        self.snapshots: list[dict[str, Any]] = []
        real = modal.Sandbox

        async def snapshot_filesystem(timeout: int = 55, *, ttl: int | None = None) -> modal.Image:
            if sdk.fail_snapshot:
                raise modal.exception.ExecutionError("snapshot failed")
            if self.terminated:
                raise modal.exception.ExecutionError("Sandbox already finished")
            self.snapshots.append({"timeout": timeout, "ttl": ttl})
            image_id = f"im-{next(_ids)}"
            sdk.images.add(image_id)
            return modal.Image.from_id(image_id)

        async def terminate(*, wait: bool = False) -> int | None:
            self.terminated = True
            return TERMINATED if wait else None

        async def poll() -> int | None:
            return TERMINATED if self.terminated else None

        async def exec_(*cmd: str, **kw: Any) -> FakeProcess:
            if not all(isinstance(arg, str) for arg in cmd):
                raise modal.exception.InvalidError("All entrypoint arguments must be strings")
            if self.terminated:  # the task is complete: modal.sandbox._common.task_id_from_response
                raise modal.exception.ConflictError("Sandbox already finished")
            self.execs.append((cmd, kw))
            return FakeProcess(sdk.script_for(cmd), timeout=kw.get("timeout"))

        self.snapshot_filesystem = _Aio(real.snapshot_filesystem, snapshot_filesystem)
        self.terminate = _Aio(real.terminate, terminate)
        self.poll = _Aio(real.poll, poll)
        self.exec = _Aio(real.exec, exec_)


class FakeModal:
    """Pass an instance as ``sdk=`` to ``ModalProvider``."""

    def __init__(self) -> None:
        self.created: list[FakeSandbox] = []
        self.apps: list[tuple[str, dict[str, Any]]] = []
        self.images: set[str] = set()  # image ids snapshots made (image_delete knows them)
        self.deleted: list[str] = []
        self.fail_create = False
        self.fail_snapshot = False
        self.build_exit_code = 0
        self.build_hangs = False
        self.diff_hangs = False
        self.diff_text = " README.md | 1 +\n+hello\n"
        self.build_outcome: dict[str, Any] = {"ok": True, "commit": "c0ffee", "runtime_version": "0.1.0"}
        self.exception = modal.exception
        self.stream_type = modal.stream_type
        sdk = self

        async def lookup(name: str, **kwargs: Any) -> SimpleNamespace:
            sdk.apps.append((name, kwargs))
            return SimpleNamespace(name=name)

        async def create(*args: str, **kwargs: Any) -> FakeSandbox:
            if not all(isinstance(arg, str) for arg in args):
                raise modal.exception.InvalidError("All entrypoint arguments must be strings")
            if sdk.fail_create:
                raise modal.exception.ResourceExhaustedError("quota exceeded")
            sandbox = FakeSandbox(sdk, args, kwargs)
            sdk.created.append(sandbox)
            return sandbox

        async def from_id(sandbox_id: str, client: Any = None) -> FakeSandbox:
            for sandbox in sdk.created:
                if sandbox.object_id == sandbox_id:
                    return sandbox
            raise modal.exception.NotFoundError(f"no sandbox {sandbox_id}")

        async def image_delete(image_id: str, *, client: Any = None) -> None:
            if image_id not in sdk.images:
                raise modal.exception.NotFoundError(f"no image {image_id}")
            sdk.images.discard(image_id)
            sdk.deleted.append(image_id)

        self.App = SimpleNamespace(lookup=_Aio(modal.App.lookup, lookup))
        self.Sandbox = SimpleNamespace(
            create=_Aio(modal.Sandbox.create, create), from_id=_Aio(modal.Sandbox.from_id, from_id)
        )
        self.Secret = SimpleNamespace(from_dict=_bound(modal.Secret.from_dict, lambda values: FakeSecret(dict(values))))
        self.Image = modal.Image  # the real, lazy and offline builder: nothing to fake
        self.experimental = SimpleNamespace(image_delete=_Aio(modal.experimental.image_delete, image_delete))

    def script_for(self, cmd: tuple[str, ...]) -> Script:
        """What the sandbox does for ``cmd``: the build, reading its result, a diff, or nothing."""
        if cmd[-1:] == ("sandbox.runtime.build",):
            return Script(code=self.build_exit_code, hangs=self.build_hangs)
        if cmd[:1] == ("cat",) and cmd[-1].endswith("build.json"):
            return Script(stdout=json.dumps(self.build_outcome))
        if cmd[:1] == ("git",):
            return Script(stdout=self.diff_text, hangs=self.diff_hangs)
        return Script()

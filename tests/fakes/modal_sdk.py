"""A stand-in for the ``modal`` module at its boundary: the calls ``ModalProvider`` makes, with
their ``.aio`` forms, recording what was asked. No network, no Modal account.

Behaviour worth faking: ``Sandbox.create`` returns a sandbox with an ``sb-…`` id; ``exec`` runs a
scripted process (the build's exit code and its ``build.json``); ``snapshot_filesystem`` returns an
``im-…`` image; ``Image.from_id`` is lazy; failures raise ``exception.Error`` like the SDK.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

_ids = itertools.count(1)


class Error(Exception):
    """modal.exception.Error"""


class _Aio:
    """``obj.method(...)`` is not used by the provider; ``obj.method.aio(...)`` is."""

    def __init__(self, fn: Any) -> None:
        self.aio = fn


@dataclass
class FakeImage:
    object_id: str
    steps: list[tuple[str, tuple, dict]] = field(default_factory=list)

    def _step(self, name: str, *args: Any, **kwargs: Any) -> FakeImage:
        return FakeImage(self.object_id, [*self.steps, (name, args, kwargs)])

    def apt_install(self, *a: Any, **k: Any) -> FakeImage:
        return self._step("apt_install", *a, **k)

    def run_commands(self, *a: Any, **k: Any) -> FakeImage:
        return self._step("run_commands", *a, **k)

    def pip_install(self, *a: Any, **k: Any) -> FakeImage:
        return self._step("pip_install", *a, **k)

    def env(self, *a: Any, **k: Any) -> FakeImage:
        return self._step("env", *a, **k)

    def add_local_python_source(self, *a: Any, **k: Any) -> FakeImage:
        return self._step("add_local_python_source", *a, **k)


@dataclass
class FakeSecret:
    values: dict[str, str]


class FakeProcess:
    def __init__(self, code: int, stdout: str) -> None:
        async def wait() -> int:
            return code

        async def read() -> str:
            return stdout

        self.wait = _Aio(wait)
        self.stdout = SimpleNamespace(read=_Aio(read))


class FakeSandbox:
    def __init__(self, sdk: FakeModal, args: tuple[str, ...], kwargs: dict[str, Any]) -> None:
        self.object_id = f"sb-{next(_ids)}"
        self.args, self.kwargs = args, kwargs
        self.terminated = False
        self.execs: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        self.snapshots: list[dict[str, Any]] = []

        async def snapshot_filesystem(**kw: Any) -> FakeImage:
            if sdk.fail_snapshot:
                raise Error("snapshot failed")
            self.snapshots.append(kw)
            return FakeImage(f"im-{next(_ids)}")

        async def terminate(**_kw: Any) -> None:
            self.terminated = True

        async def poll() -> int | None:
            return 0 if self.terminated else None

        async def exec_(*cmd: str, **kw: Any) -> FakeProcess:
            self.execs.append((cmd, kw))
            if cmd[:1] == ("cat",):
                return FakeProcess(0, json.dumps(sdk.build_outcome))
            if cmd[:1] == ("git",):
                return FakeProcess(0, sdk.diff_text)
            return FakeProcess(sdk.build_exit_code, "")

        self.snapshot_filesystem = _Aio(snapshot_filesystem)
        self.terminate = _Aio(terminate)
        self.poll = _Aio(poll)
        self.exec = _Aio(exec_)


class FakeModal:
    """Pass an instance as ``sdk=`` to ``ModalProvider``."""

    def __init__(self) -> None:
        self.created: list[FakeSandbox] = []
        self.apps: list[tuple[str, dict[str, Any]]] = []
        self.fail_create = False
        self.fail_snapshot = False
        self.build_exit_code = 0
        self.diff_text = " README.md | 1 +\n+hello\n"
        self.build_outcome: dict[str, Any] = {"ok": True, "commit": "c0ffee", "runtime_version": "0.1.0"}
        self.exception = SimpleNamespace(Error=Error)
        sdk = self

        async def lookup(name: str, **kwargs: Any) -> SimpleNamespace:
            sdk.apps.append((name, kwargs))
            return SimpleNamespace(name=name)

        async def create(*args: str, **kwargs: Any) -> FakeSandbox:
            if sdk.fail_create:
                raise Error("quota exceeded")
            sandbox = FakeSandbox(sdk, args, kwargs)
            sdk.created.append(sandbox)
            return sandbox

        async def from_id(sandbox_id: str) -> FakeSandbox:
            for sandbox in sdk.created:
                if sandbox.object_id == sandbox_id:
                    return sandbox
            raise Error(f"no sandbox {sandbox_id}")

        self.App = SimpleNamespace(lookup=_Aio(lookup))
        self.Sandbox = SimpleNamespace(create=_Aio(create), from_id=_Aio(from_id))
        self.Secret = SimpleNamespace(from_dict=lambda values: FakeSecret(dict(values)))
        self.Image = SimpleNamespace(
            debian_slim=lambda **kw: FakeImage("base", [("debian_slim", (), kw)]),
            from_id=lambda image_id: FakeImage(image_id),
        )

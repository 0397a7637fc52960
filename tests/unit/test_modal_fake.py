"""The Modal fake holds calls to the installed SDK's signatures and answers as modal 1.6.4 does: a
test written against it cannot pass with a call Modal would refuse."""

from __future__ import annotations

import pytest

from tests.fakes.modal_sdk import EXEC_TIMED_OUT, TERMINATED, FakeModal


async def test_a_call_modal_would_refuse_fails_in_the_fake() -> None:
    sdk = FakeModal()
    with pytest.raises(TypeError, match="idle_timout"):  # a misspelt keyword
        await sdk.Sandbox.create.aio("sleep", "infinity", idle_timout=60)
    with pytest.raises(TypeError):  # a keyword-only argument passed by position
        await sdk.App.lookup.aio("inspect", None, None, True)
    with pytest.raises(TypeError, match="image_id"):  # a required argument missing
        await sdk.experimental.image_delete.aio()
    with pytest.raises(TypeError):
        sdk.Secret.from_dict({"A": "b"}, "extra")
    with pytest.raises(AssertionError, match=r"use \.aio"):  # the blocking form, on the event loop
        sdk.Sandbox.create("sleep", "infinity")
    assert sdk.created == []


async def test_return_codes_and_errors_follow_the_sdk() -> None:
    sdk = FakeModal()
    sandbox = await sdk.Sandbox.create.aio("sleep", "infinity", timeout=60)
    assert await sandbox.poll.aio() is None
    sdk.build_hangs = True
    build = await sandbox.exec.aio("python", "-m", "sandbox.runtime.build", timeout=5)
    assert await build.wait.aio() == EXEC_TIMED_OUT  # a timeout is a return code, not an exception
    with pytest.raises(TypeError):
        await sandbox.exec.aio("true", timeout=5, cwd="/")  # exec takes workdir=, not cwd=
    await sandbox.terminate.aio()
    assert await sandbox.poll.aio() == TERMINATED
    with pytest.raises(sdk.exception.ConflictError):
        await sandbox.exec.aio("true")
    with pytest.raises(sdk.exception.Error):
        await sandbox.snapshot_filesystem.aio(timeout=10, ttl=60)
    with pytest.raises(sdk.exception.NotFoundError):
        await sdk.Sandbox.from_id.aio("sb-unknown")

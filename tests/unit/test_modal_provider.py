"""The Modal provider against a fake of the ``modal`` SDK (and the real SDK's lazy, offline image
definition). A stray real call fails at once: no credentials, an empty Modal config."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.image import OPENCODE_VERSION, modal_image
from sandbox.providers.base import ProviderError, SandboxSpec
from sandbox.providers.modal import IMAGE_TTL_S, SNAPSHOT_TTL_S, ModalProvider
from tests.fakes.modal_sdk import FakeModal, image_ids, mounted_files


@pytest.fixture(autouse=True)
def no_modal_account(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MODAL_TOKEN_ID", raising=False)
    monkeypatch.delenv("MODAL_TOKEN_SECRET", raising=False)
    config = tmp_path / "modal.toml"
    config.write_text("")
    monkeypatch.setenv("MODAL_CONFIG_PATH", str(config))


def spec(**overrides: object) -> SandboxSpec:
    base = {
        "session_id": "s1",
        "sandbox_id": "x1",
        "repo_url": "https://github.com/acme/widgets.git",
        "branch": "main",
        "bridge_url": "wss://inspect.example/api/sandbox/ws?session=s1",
        "token": "sbx_secret",
        "tool_token": "sbt_secret",
        "api_url": "https://inspect.example",
        "secrets": {"NPM_TOKEN": "npm-value"},
    }
    return SandboxSpec(**{**base, **overrides})  # type: ignore[arg-type]


def provider(sdk: FakeModal) -> ModalProvider:
    return ModalProvider(sdk=sdk, app_name="inspect-test", cpu=1.5, memory_mb=2048, lifetime_s=7200, idle_timeout_s=900)


async def test_spawn_runs_the_runtime_with_the_spec_passed_as_a_secret() -> None:
    sdk = FakeModal()
    handle = await provider(sdk).spawn(spec())
    [sandbox] = sdk.created
    assert handle.provider_id == sandbox.object_id and handle.session_id == "s1"
    assert sandbox.args == ("python", "-m", "sandbox.runtime.supervisor")
    kw = sandbox.kwargs
    assert (kw["cpu"], kw["memory"], kw["timeout"], kw["idle_timeout"]) == (1.5, 2048, 7200, 900)
    assert sdk.apps == [("inspect-test", {"create_if_missing": True})]
    [secret] = kw["secrets"]
    env = secret.values
    assert env["SANDBOX_TOKEN"] == "sbx_secret" and env["SANDBOX_BOOT_MODE"] == "fresh"
    assert env["NPM_TOKEN"] == "npm-value" and env["SANDBOX_ROOT"] == "/sandbox"
    assert "sbx_secret" not in repr(sandbox.args)  # values only in the secret, never on the command line
    assert "/root/sandbox/runtime/supervisor.py" in mounted_files(kw["image"])


async def test_snapshot_restore_and_image_starts_use_image_ids_with_deliberate_ttls() -> None:
    sdk = FakeModal()
    modal = provider(sdk)
    handle = await modal.spawn(spec())
    ref = await modal.snapshot(handle)
    assert ref.startswith("im-") and sdk.created[0].snapshots == [{"timeout": 120, "ttl": SNAPSHOT_TTL_S}]
    await modal.restore(ref, spec(sandbox_id="x2"))
    restored = sdk.created[-1]
    assert image_ids(restored.kwargs["image"]) == [ref]
    assert restored.kwargs["secrets"][0].values["SANDBOX_BOOT_MODE"] == "snapshot_restore"
    await modal.start_from_image("im-prebuilt", spec(sandbox_id="x3"))
    assert sdk.created[-1].kwargs["secrets"][0].values["SANDBOX_BOOT_MODE"] == "image"
    with pytest.raises(ProviderError, match="not a Modal image id"):
        await modal.restore("snap_local", spec())


async def test_status_stop_and_errors_translated() -> None:
    sdk = FakeModal()
    modal = provider(sdk)
    handle = await modal.spawn(spec())
    assert await modal.status(handle) == "running"
    await modal.stop(handle)
    assert sdk.created[0].terminated
    assert await modal.status(handle) == "exited"
    sdk.fail_create = True
    with pytest.raises(ProviderError, match="quota exceeded"):
        await modal.spawn(spec())
    assert modal.capabilities.outlives_server  # the control plane keeps them across restarts


async def test_the_changes_panel_reads_the_diff_inside_the_running_sandbox() -> None:
    sdk = FakeModal()
    modal = provider(sdk)
    assert await modal.diff("s1", "main") is None  # no sandbox yet
    handle = await modal.spawn(spec())
    assert await modal.diff("s1", "main") == sdk.diff_text
    command, kw = sdk.created[0].execs[-1]
    assert command[-1] == "origin/main" and command[:3] == ("git", "-C", "/sandbox/workspace") and kw["timeout"] == 20
    assert await modal.diff("s1", "--output=/etc/x") is None  # never an option in git's argument list
    await modal.stop(handle)
    assert await modal.diff("s1", "main") is None


async def test_an_image_build_snapshots_a_successful_build_and_always_terminates() -> None:
    sdk = FakeModal()
    modal = provider(sdk)
    built = await modal.build_image(spec(boot_mode="build"), timeout_s=600)
    [sandbox] = sdk.created
    assert built.ok and built.ref.startswith("im-") and built.commit == "c0ffee"
    assert sandbox.execs[0][0] == ("python", "-m", "sandbox.runtime.build")
    assert sandbox.snapshots == [{"timeout": 120, "ttl": IMAGE_TTL_S}] and sandbox.terminated

    sdk.build_exit_code, sdk.build_outcome = 1, {"ok": False, "log_tail": "setup.sh exited with 2"}
    failed = await modal.build_image(spec(boot_mode="build"), timeout_s=600)
    assert not failed.ok and failed.log_tail == "setup.sh exited with 2"
    assert sdk.created[-1].snapshots == [] and sdk.created[-1].terminated  # nothing published, nothing left


def test_the_real_base_image_definition_is_lazy_and_offline() -> None:
    import modal

    image = modal_image(modal)  # no network, no account: Modal builds it on first use
    assert isinstance(image, modal.Image)
    assert OPENCODE_VERSION in Path(__file__).resolve().parents[2].joinpath("Makefile").read_text()

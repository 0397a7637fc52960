"""The Modal provider against the signature-bound fake of the ``modal`` SDK (``tests/fakes/modal_sdk.py``)
and the real SDK's lazy, offline image definitions. A stray real call fails at once: no
credentials, an empty Modal config."""

from __future__ import annotations

import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import modal
import pytest

from sandbox.image import OPENCODE_VERSION, modal_image
from sandbox.providers.base import ProviderError, SandboxSpec
from sandbox.providers.modal import IMAGE_TTL_S, SNAPSHOT_TTL_S, ModalProvider
from tests.fakes.modal_sdk import PIPE_BUFFER, FakeModal, FakeSandbox, dockerfile_commands, image_ids, mounted_files

PROJECT = Path(__file__).resolve().parents[2]


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


def provider(sdk: FakeModal, **overrides: Any) -> ModalProvider:
    options: dict[str, Any] = {"app_name": "inspect-test", "cpu": 1.5, "memory_mb": 2048, "lifetime_s": 7200}
    return ModalProvider(sdk=sdk, **{**options, **overrides})


def environment(sandbox: FakeSandbox) -> dict[str, str]:
    """Everything the sandbox's processes see: the public ``env`` and the spec's ``Secret``."""
    [secret] = sandbox.kwargs["secrets"]
    return {**(sandbox.kwargs.get("env") or {}), **secret.values}


def runtime_files() -> set[str]:
    """Where every file of the runtime package lands in a Modal container (``/root/<path>``)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "sandbox"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    )
    return {f"/root/{path}" for path in listed.stdout.split()}


async def test_spawn_runs_the_runtime_with_the_spec_passed_as_a_secret() -> None:
    sdk = FakeModal()
    handle = await provider(sdk).spawn(spec())
    [sandbox] = sdk.created
    assert handle.provider_id == sandbox.object_id and handle.session_id == "s1"
    assert sandbox.args == ("python", "-m", "sandbox.runtime.supervisor")
    kw = sandbox.kwargs
    assert (kw["cpu"], kw["memory"], kw["timeout"]) == (1.5, 2048, 7200)
    assert sdk.apps == [("inspect-test", {"create_if_missing": True})]
    [secret] = kw["secrets"]
    assert secret.values["SANDBOX_TOKEN"] == "sbx_secret" and secret.values["NPM_TOKEN"] == "npm-value"
    env = environment(sandbox)
    assert env["SANDBOX_BOOT_MODE"] == "fresh" and env["SANDBOX_ROOT"] == "/sandbox"
    public = repr(sandbox.args) + repr(kw.get("env"))
    assert "sbx_secret" not in public and "npm-value" not in public  # values only in the secret


def test_every_image_carries_the_whole_runtime_with_its_plugin_files() -> None:
    """What the real ``add_local_python_source`` would upload, as the SDK lists it offline: every
    file of ``sandbox/`` (the ``.js`` the agent's tools are made of too), no bytecode, no inspect_app."""
    mounted = mounted_files(modal_image(modal))
    plugin_dir = PROJECT / "sandbox" / "runtime" / "opencode_plugin"
    plugins = {f"/root/sandbox/runtime/opencode_plugin/{p.name}" for p in plugin_dir.glob("*.js")}
    assert len(plugins) >= 7 and plugins <= set(mounted)
    assert set(mounted) == runtime_files()
    assert not any("__pycache__" in path or path.endswith(".pyc") or "inspect_app" in path for path in mounted)


async def test_a_restored_or_prebuilt_sandbox_runs_the_current_runtime() -> None:
    sdk = FakeModal()
    modal_provider = provider(sdk)
    handle = await modal_provider.spawn(spec())
    ref = await modal_provider.snapshot(handle)
    await modal_provider.restore(ref, spec(sandbox_id="x2"))
    await modal_provider.start_from_image("im-prebuilt", spec(sandbox_id="x3"))
    restored, prebuilt = sdk.created[1:]
    assert image_ids(restored.kwargs["image"]) == [ref] and image_ids(prebuilt.kwargs["image"]) == ["im-prebuilt"]
    for sandbox in (restored, prebuilt):  # the runtime layer on top of the old filesystem, not what it kept
        assert set(mounted_files(sandbox.kwargs["image"])) == runtime_files()


async def test_the_runtime_is_importable_where_the_image_puts_it() -> None:
    sdk = FakeModal()
    await provider(sdk).spawn(spec())
    [sandbox] = sdk.created
    python_path = PurePosixPath(environment(sandbox)["PYTHONPATH"])
    mounted = mounted_files(sandbox.kwargs["image"])
    assert str(python_path / "sandbox" / "runtime" / "supervisor.py") in mounted
    assert str(python_path / "sandbox" / "runtime" / "opencode_plugin" / "inspect-api.js") in mounted


async def test_no_idle_timeout_can_stop_a_sandbox_mid_prompt() -> None:
    """Modal counts only exec, stdin and tunnel traffic as activity, not the bridge's WebSocket: an
    idle timeout would fire in the middle of a long prompt. The control plane's watchdog decides."""
    sdk = FakeModal()
    modal_provider = provider(sdk)
    handle = await modal_provider.spawn(spec())
    await modal_provider.restore(await modal_provider.snapshot(handle), spec(sandbox_id="x2"))
    await modal_provider.start_from_image("im-prebuilt", spec(sandbox_id="x3"))
    await modal_provider.build_image(spec(boot_mode="build"), timeout_s=600)
    for sandbox in sdk.created:
        assert sandbox.kwargs.get("idle_timeout") is None and sandbox.kwargs["timeout"] > 0


def test_the_image_has_chromium_for_the_screenshot_tool() -> None:
    installs = [line for line in dockerfile_commands(modal_image(modal)) if "apt-get install" in line]
    assert any("chromium" in line.split() and "fonts-liberation" in line.split() for line in installs)


async def test_snapshot_restore_and_image_starts_use_image_ids_with_deliberate_ttls() -> None:
    sdk = FakeModal()
    modal_provider = provider(sdk)
    handle = await modal_provider.spawn(spec())
    ref = await modal_provider.snapshot(handle)
    assert ref.startswith("im-") and sdk.created[0].snapshots == [{"timeout": 120, "ttl": SNAPSHOT_TTL_S}]
    await modal_provider.restore(ref, spec(sandbox_id="x2"))
    assert environment(sdk.created[-1])["SANDBOX_BOOT_MODE"] == "snapshot_restore"
    await modal_provider.start_from_image("im-prebuilt", spec(sandbox_id="x3"))
    assert environment(sdk.created[-1])["SANDBOX_BOOT_MODE"] == "image"
    with pytest.raises(ProviderError, match="not a Modal image id"):
        await modal_provider.restore("snap_local", spec())


async def test_status_stop_and_errors_translated() -> None:
    sdk = FakeModal()
    modal_provider = provider(sdk)
    handle = await modal_provider.spawn(spec())
    assert await modal_provider.status(handle) == "running"
    await modal_provider.stop(handle)
    assert sdk.created[0].terminated
    assert await modal_provider.status(handle) == "exited"  # poll() is 137 once terminated
    with pytest.raises(ProviderError, match="snapshot"):
        await modal_provider.snapshot(handle)  # a terminated sandbox has nothing to snapshot
    sdk.fail_create = True
    with pytest.raises(ProviderError, match="quota exceeded"):
        await modal_provider.spawn(spec())
    assert modal_provider.capabilities.outlives_server  # the control plane keeps them across restarts


def test_no_tunnels_are_promised() -> None:
    """Previews are relayed through the sandbox's own bridge connection on both providers: nothing
    stands behind a Modal tunnel capability."""
    assert not ModalProvider.capabilities.tunnels


async def test_the_changes_panel_reads_the_diff_inside_the_running_sandbox() -> None:
    sdk = FakeModal()
    modal_provider = provider(sdk)
    assert await modal_provider.diff("s1", "main") is None  # no sandbox yet
    handle = await modal_provider.spawn(spec())
    assert await modal_provider.diff("s1", "main") == sdk.diff_text
    command, kw = sdk.created[0].execs[-1]
    assert command[-1] == "origin/main" and command[:3] == ("git", "-C", "/sandbox/workspace") and kw["timeout"] == 20
    assert await modal_provider.diff("s1", "--output=/etc/x") is None  # never an option in git's argument list
    await modal_provider.stop(handle)
    assert await modal_provider.diff("s1", "main") is None


async def test_a_large_diff_is_read_while_git_writes_it() -> None:
    """Waiting for git before reading its output stalls once the output outgrows the pipe."""
    sdk = FakeModal()
    modal_provider = provider(sdk)
    await modal_provider.spawn(spec())
    sdk.diff_text = "+x\n" * PIPE_BUFFER
    assert await modal_provider.diff("s1", "main") == sdk.diff_text


async def test_a_diff_past_its_timeout_is_no_diff() -> None:
    sdk = FakeModal()
    modal_provider = provider(sdk)
    await modal_provider.spawn(spec())
    sdk.diff_hangs = True  # the stream ends at the deadline: what came before is half a diff
    assert await modal_provider.diff("s1", "main") is None


async def test_an_image_build_snapshots_a_successful_build_and_always_terminates() -> None:
    sdk = FakeModal()
    modal_provider = provider(sdk)
    built = await modal_provider.build_image(spec(boot_mode="build"), timeout_s=600)
    [sandbox] = sdk.created
    assert built.ok and built.ref.startswith("im-") and built.commit == "c0ffee"
    assert sandbox.execs[0][0] == ("python", "-m", "sandbox.runtime.build")
    assert sandbox.snapshots == [{"timeout": 120, "ttl": IMAGE_TTL_S}] and sandbox.terminated

    sdk.build_exit_code, sdk.build_outcome = 1, {"ok": False, "log_tail": "setup.sh exited with 2"}
    failed = await modal_provider.build_image(spec(boot_mode="build"), timeout_s=600)
    assert not failed.ok and failed.log_tail == "setup.sh exited with 2"
    assert sdk.created[-1].snapshots == [] and sdk.created[-1].terminated  # nothing published, nothing left


async def test_a_build_past_its_timeout_is_a_timeout() -> None:
    """modal returns -1 from ``wait`` for an exec past its timeout (no exception)."""
    sdk = FakeModal()
    sdk.build_hangs = True
    built = await provider(sdk).build_image(spec(boot_mode="build"), timeout_s=600)
    assert not built.ok and "did not finish within 600s" in built.log_tail
    assert sdk.created[0].snapshots == [] and sdk.created[0].terminated


async def test_superseded_images_and_snapshots_are_deleted_at_modal() -> None:
    sdk = FakeModal()
    modal_provider = provider(sdk)
    image = (await modal_provider.build_image(spec(boot_mode="build"), timeout_s=600)).ref
    snapshot = await modal_provider.snapshot(await modal_provider.spawn(spec()))
    await modal_provider.delete_image(image)
    await modal_provider.delete_snapshot(snapshot)
    assert sdk.deleted == [image, snapshot]
    await modal_provider.delete_image(image)  # already gone (or its TTL ran out): nothing to do
    with pytest.raises(ProviderError, match="not a Modal image id"):
        await modal_provider.delete_snapshot("snap_local")


async def test_egress_is_the_repository_allowlist_as_modal_domains() -> None:
    sdk = FakeModal()
    modal_provider = provider(sdk, egress_allow=("pypi.org", ".githubusercontent.com"))
    await modal_provider.spawn(spec(egress_hosts=("registry.example.org",), llm_base_url="https://llm.example.net/v1"))
    await modal_provider.build_image(spec(boot_mode="build", bridge_url="", api_url=""), timeout_s=600)
    session, build = sdk.created
    assert set(session.kwargs["outbound_domain_allowlist"]) == {
        "inspect.example",  # the bridge and the control plane's API
        "github.com",  # the git host
        "llm.example.net",  # the model endpoint
        "pypi.org",  # the installation's registries
        "githubusercontent.com",
        "*.githubusercontent.com",
        "registry.example.org",  # the repository's own
    }
    assert "inspect.example" not in build.kwargs["outbound_domain_allowlist"]
    assert "pypi.org" in build.kwargs["outbound_domain_allowlist"]  # setup.sh installs from registries
    assert not session.kwargs.get("block_network")  # the runtime must reach the bridge


async def test_a_control_plane_at_an_address_is_allowed_by_cidr() -> None:
    sdk = FakeModal()
    await provider(sdk).spawn(
        spec(bridge_url="ws://203.0.113.7:3000/api/sandbox/ws", api_url="http://203.0.113.7:3000")
    )
    [sandbox] = sdk.created
    assert sandbox.kwargs["outbound_cidr_allowlist"] == ["203.0.113.7/32"]
    assert "203.0.113.7" not in sandbox.kwargs["outbound_domain_allowlist"]


def test_the_real_base_image_definition_is_lazy_and_offline() -> None:
    image = modal_image(modal)  # no network, no account: Modal builds it on first use
    assert isinstance(image, modal.Image)
    assert OPENCODE_VERSION in PROJECT.joinpath("Makefile").read_text()

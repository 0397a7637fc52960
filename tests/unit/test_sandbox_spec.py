from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from sandbox.providers.base import SandboxSpec, pool_key
from sandbox.providers.local import LocalProvider
from sandbox.runtime.agent_config import opencode_config
from sandbox.runtime.config import RuntimeConfig, RuntimeConfigError


def spec(**overrides: object) -> SandboxSpec:
    base = dict(
        session_id="s1",
        sandbox_id="b1",
        repo_url="/srv/repo.git",
        branch="main",
        bridge_url="ws://127.0.0.1:1/api/sandbox/ws",
        token="sbx_t",
    )
    return SandboxSpec(**{**base, **overrides})  # type: ignore[arg-type]


def test_environment_comes_from_the_spec_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INSPECT_GITHUB_APP_PRIVATE_KEY", "server-secret")
    monkeypatch.setenv("INSPECT_DATABASE_URL", "postgresql://server")
    s = spec(secrets={"NPM_TOKEN": "npm-1", "SANDBOX_TOKEN": "smuggled"}, provider_keys={"ANTHROPIC_API_KEY": "k"})
    env = LocalProvider(data_dir=tmp_path, opencode_bin="opencode", isolate=False)._environment(tmp_path, s)
    assert "server-secret" not in json.dumps(env) and "postgresql://server" not in json.dumps(env)
    assert env["NPM_TOKEN"] == "npm-1" and env["ANTHROPIC_API_KEY"] == "k"
    assert env["SANDBOX_TOKEN"] == "sbx_t"  # a secret cannot override the runtime's own variables
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert "sbx_t" not in repr(s)


def test_runtime_config_round_trip(tmp_path: Path) -> None:
    env = {**spec(model="llm/m", work_branch="inspect/s1").environment(), "SANDBOX_ROOT": str(tmp_path)}
    config = RuntimeConfig.from_env(env)
    assert config.workspace == tmp_path / "workspace"
    assert config.work_branch == "inspect/s1" and config.model == "llm/m"
    with pytest.raises(RuntimeConfigError, match="SANDBOX_BOOT_MODE"):
        RuntimeConfig.from_env({**env, "SANDBOX_BOOT_MODE": "warp"})
    with pytest.raises(RuntimeConfigError, match="SANDBOX_ID"):
        RuntimeConfig.from_env({k: v for k, v in env.items() if k != "SANDBOX_ID"})
    # no token: a sandbox on its own network, whose bridge relay presents it
    assert RuntimeConfig.from_env({**env, "SANDBOX_TOKEN": ""}).token == ""


def test_opencode_config_is_explicit_and_offline(tmp_path: Path) -> None:
    env = {
        **spec(model="llm/qwen", llm_base_url="http://127.0.0.1:9/v1", llm_model="qwen").environment(),
        "SANDBOX_ROOT": str(tmp_path),
    }
    body = opencode_config(RuntimeConfig.from_env(env))
    assert body["model"] == "llm/qwen" and body["enabled_providers"] == ["llm"]
    assert body["provider"]["llm"]["options"]["baseURL"] == "http://127.0.0.1:9/v1"
    assert body["autoupdate"] is False and body["share"] == "disabled" and body["lsp"] is False
    assert body["snapshot"] is False  # no shadow git of the workspace at every step
    assert body["tools"]["question"] is False and body["permission"] == "allow"


def test_the_pool_key_ignores_identity_and_notices_everything_else() -> None:
    base = spec(secrets={"NPM_TOKEN": "a"}, model="llm/m", work_branch="inspect/s1", tool_token="sbt_1")
    other_session = dataclasses.replace(
        base, session_id="s2", sandbox_id="b2", token="sbx_2", tool_token="sbt_2", work_branch="inspect/s2"
    )
    assert (
        pool_key("img_1", base)
        == pool_key("img_1", other_session)
        == pool_key("img_1", base.without_identity("standby"))
    )
    assert pool_key("img_2", base) != pool_key("img_1", base)  # a new image
    for changed in ({"secrets": {"NPM_TOKEN": "b"}}, {"model": "llm/n"}, {"provider_keys": {"ANTHROPIC_API_KEY": "k"}}):
        assert pool_key("img_1", dataclasses.replace(base, **changed)) != pool_key("img_1", base), changed


def test_a_standby_needs_no_identity_and_a_claim_gives_it_one(tmp_path: Path) -> None:
    standby_env = {**spec().without_identity("standby").environment(), "SANDBOX_ROOT": str(tmp_path)}
    assert not {"SANDBOX_ID", "SANDBOX_TOKEN", "SANDBOX_TOOL_TOKEN", "SANDBOX_BRIDGE_URL"} & set(standby_env)
    standby = RuntimeConfig.from_env(standby_env)
    assert (standby.boot_mode, standby.sandbox_id, standby.token) == ("standby", "", "")

    claim = spec(tool_token="sbt_9", work_branch="inspect/s1").claim()
    claimed = standby.claimed(claim)
    assert claimed.boot_mode == "image" and claimed.tool_token == "sbt_9" and claimed.work_branch == "inspect/s1"
    assert (claimed.sandbox_id, claimed.session_id, claimed.token) == ("b1", "s1", "sbx_t")
    assert claimed.repo_url == standby.repo_url and claimed.root == standby.root
    with pytest.raises(RuntimeConfigError, match="lacks sandbox_id"):
        standby.claimed({**claim, "sandbox_id": ""})
    assert standby.claimed({**claim, "token": ""}).token == ""  # its bridge relay presents it
    with pytest.raises(RuntimeConfigError, match="strings"):
        standby.claimed({**claim, "sandbox_id": 7})
    with pytest.raises(RuntimeConfigError, match="its own session"):
        claimed.claimed({**claim, "session_id": "s2"}, boot_mode="snapshot_restore")
    resumed = claimed.claimed({**claim, "token": "sbx_next"}, boot_mode="snapshot_restore")
    assert (resumed.boot_mode, resumed.token, resumed.session_id) == ("snapshot_restore", "sbx_next", "s1")

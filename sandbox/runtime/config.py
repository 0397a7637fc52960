"""The sandbox runtime's configuration: read once from the environment the provider built.

The provider builds that environment from the spawn spec alone (see ``sandbox/providers/base.py``);
this module is the only place in the runtime that reads it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sandbox.protocol import CLAIM_FIELDS

# standby: booted from an image for no session yet (a warm pool); it becomes an ``image`` boot
# when the provider claims it for a session (see ``RuntimeConfig.claimed``).
BOOT_MODES = ("fresh", "snapshot_restore", "image", "build", "standby")

RUNTIME_VERSION = "0.1.0"


class RuntimeConfigError(ValueError):
    pass


@dataclass(frozen=True)
class RuntimeConfig:
    sandbox_id: str
    session_id: str
    bridge_url: str
    token: str
    tool_token: str
    repo_url: str
    branch: str
    work_branch: str
    fork_ref: str  # refs/pull/N/head: the fork's code this session works on, fetched after the clone
    mcp: str  # OpenCode's "mcp" section (JSON), secrets as {env:NAME} references
    skills: str  # {"name": "instructions"} (JSON)
    boot_mode: str
    model: str
    llm_base_url: str
    llm_api_key: str
    llm_model: str
    root: Path
    opencode_bin: str
    plugin_template: Path | None
    setup_timeout_s: float
    start_timeout_s: float
    heartbeat_s: float
    committer_name: str
    committer_email: str

    @property
    def workspace(self) -> Path:
        return self.root / "workspace"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def tool_token_file(self) -> Path:
        return self.state_dir / "tool-token"

    def claimed(self, claim: Mapping[str, object], *, boot_mode: str = "image") -> RuntimeConfig:
        """This configuration made a session's sandbox: a standby's (an ``image`` boot) or a parked
        sandbox's (``snapshot_restore``: the same session, resumed)."""
        values = {name: claim.get(name, "") for name in CLAIM_FIELDS}
        if not all(isinstance(v, str) for v in values.values()):
            raise RuntimeConfigError("claim fields must be strings")
        # no token: a sandbox on its own network is vouched for by its bridge relay (it holds none)
        missing = [name for name in ("sandbox_id", "session_id", "bridge_url") if not values[name]]
        if missing:
            raise RuntimeConfigError(f"the claim lacks {', '.join(missing)}")
        if self.session_id and values["session_id"] != self.session_id:
            raise RuntimeConfigError("a parked sandbox resumes only for its own session")
        return dataclasses.replace(self, boot_mode=boot_mode, **values)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RuntimeConfig:
        env = os.environ if env is None else env

        def need(name: str) -> str:
            value = env.get(name, "")
            if not value:
                raise RuntimeConfigError(f"{name} is required")
            return value

        mode = env.get("SANDBOX_BOOT_MODE", "fresh")
        if mode not in BOOT_MODES:
            raise RuntimeConfigError(f"SANDBOX_BOOT_MODE must be one of {', '.join(BOOT_MODES)}")
        template = env.get("SANDBOX_OPENCODE_PLUGIN_TEMPLATE", "")

        def identity(name: str) -> str:  # a standby learns who it is when claimed
            return env.get(name, "") if mode == "standby" else need(name)

        return cls(
            sandbox_id=identity("SANDBOX_ID"),
            session_id=identity("SANDBOX_SESSION_ID"),
            bridge_url=identity("SANDBOX_BRIDGE_URL"),
            token=env.get("SANDBOX_TOKEN", ""),  # none on its own network (see ``claimed``)
            tool_token=env.get("SANDBOX_TOOL_TOKEN", ""),
            repo_url=need("SANDBOX_REPO_URL"),
            branch=env.get("SANDBOX_BRANCH", "main"),
            work_branch=env.get("SANDBOX_WORK_BRANCH", ""),
            fork_ref=env.get("SANDBOX_FORK_REF", ""),
            mcp=env.get("SANDBOX_MCP", ""),
            skills=env.get("SANDBOX_SKILLS", ""),
            boot_mode=mode,
            model=env.get("SANDBOX_MODEL", ""),
            llm_base_url=env.get("SANDBOX_LLM_BASE_URL", ""),
            llm_api_key=env.get("SANDBOX_LLM_API_KEY", ""),
            llm_model=env.get("SANDBOX_LLM_MODEL", ""),
            root=Path(need("SANDBOX_ROOT")),
            opencode_bin=env.get("SANDBOX_OPENCODE_BIN", "opencode"),
            plugin_template=Path(template) if template else None,
            setup_timeout_s=float(env.get("SANDBOX_SETUP_TIMEOUT_S", "600")),
            start_timeout_s=float(env.get("SANDBOX_START_TIMEOUT_S", "120")),
            heartbeat_s=float(env.get("SANDBOX_HEARTBEAT_S", "30")),
            committer_name=env.get("SANDBOX_COMMITTER_NAME", "Inspect"),
            committer_email=env.get("SANDBOX_COMMITTER_EMAIL", "inspect@localhost"),
        )

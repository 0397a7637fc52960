"""The sandbox provider interface, and the spawn spec every provider builds a sandbox from.

A sandbox's environment is built from the spec ALONE (``SandboxSpec.environment``): nothing of the
server's own environment (App key, Slack token, database URL, ...) can leak in, because nothing of
it is ever read here.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sandbox.protocol import CLAIM_FIELDS

BootMode = Literal["fresh", "snapshot_restore", "image", "build", "standby"]
SandboxState = Literal["running", "exited", "unknown"]


# A secret becomes an environment variable of every process in its sandbox (and, unconfined, of the
# host-side launcher): names that are loader or interpreter hooks would run code in all of them, and
# the runtime's, the agent's and git's own names would change how they behave.
_REFUSED_PREFIXES = ("LD_", "DYLD_", "GIT_", "PYTHON", "SANDBOX_", "INSPECT_", "OPENCODE_", "XDG_", "BASH_FUNC_")
_REFUSED_NAMES = frozenset(
    {
        "BASH_ENV", "ENV", "PATH", "HOME", "SHELL", "IFS", "CDPATH", "SHELLOPTS", "BASHOPTS", "PS4",
        "PROMPT_COMMAND", "ZDOTDIR", "NODE_OPTIONS", "NODE_PATH", "PERL5OPT", "PERL5LIB", "PERLLIB",
        "RUBYOPT", "RUBYLIB", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "GCONV_PATH",
        "TMPDIR", "EDITOR", "VISUAL", "PAGER", "SSH_ASKPASS", "HOSTALIASES", "LOCPATH", "NLSPATH",
    }
)  # fmt: skip


def refused_variable(name: str) -> str | None:
    """Why ``name`` may not be a sandbox environment variable (a secret's name), or None."""
    upper = name.upper()
    if upper in _REFUSED_NAMES or upper.startswith(_REFUSED_PREFIXES):
        return f"{name} is a loader, interpreter or tool hook, or Inspect's own: it cannot be a secret's name"
    return None


class ProviderError(RuntimeError):
    """A provider could not do what was asked (spawn, snapshot, restore, ...)."""


@dataclass(frozen=True)
class Capabilities:
    snapshots: bool
    tunnels: bool
    outlives_server: bool = False  # sandboxes keep running (and reconnect) across a server restart


@dataclass(frozen=True)
class SandboxSpec:
    session_id: str
    sandbox_id: str
    repo_url: str
    branch: str
    bridge_url: str
    token: str = field(repr=False)
    tool_token: str = field(default="", repr=False)  # the agent's tools authenticate with this
    api_url: str = ""  # where those tools reach the control plane
    work_branch: str = ""
    fork_ref: str = ""  # a fork's pull request (refs/pull/N/head) to work on instead of ``branch``
    boot_mode: BootMode = "fresh"
    model: str = ""
    llm_base_url: str = ""
    llm_api_key: str = field(default="", repr=False)
    llm_model: str = ""
    provider_keys: Mapping[str, str] = field(default_factory=dict, repr=False)  # ANTHROPIC_API_KEY, ...
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)  # the session's repo/global secrets
    committer_name: str = "Inspect"
    committer_email: str = "inspect@localhost"
    setup_timeout_s: float = 600
    start_timeout_s: float = 120
    heartbeat_s: float = 30
    egress_hosts: tuple[str, ...] = ()  # the repository's own allowlist entries (the provider applies them)
    mcp: str = ""  # OpenCode's "mcp" section as JSON (secrets only as {env:NAME} references)
    skills: str = ""  # {"name": "instructions"} as JSON

    def environment(self) -> dict[str, str]:
        """The variables the sandbox runtime needs, from this spec only."""
        env = {
            **{k: v for k, v in self.secrets.items() if refused_variable(k) is None},  # stored before the rule
            **self.provider_keys,
            "SANDBOX_ID": self.sandbox_id,
            "SANDBOX_SESSION_ID": self.session_id,
            "SANDBOX_BRIDGE_URL": self.bridge_url,
            "SANDBOX_TOKEN": self.token,
            "SANDBOX_REPO_URL": self.repo_url,
            "SANDBOX_BRANCH": self.branch,
            "SANDBOX_WORK_BRANCH": self.work_branch,
            "SANDBOX_FORK_REF": self.fork_ref,
            "SANDBOX_MCP": self.mcp,
            "SANDBOX_SKILLS": self.skills,
            "SANDBOX_BOOT_MODE": self.boot_mode,
            "SANDBOX_MODEL": self.model,
            "SANDBOX_LLM_BASE_URL": self.llm_base_url,
            "SANDBOX_LLM_API_KEY": self.llm_api_key,
            "SANDBOX_LLM_MODEL": self.llm_model,
            "SANDBOX_COMMITTER_NAME": self.committer_name,
            "SANDBOX_COMMITTER_EMAIL": self.committer_email,
            "SANDBOX_SETUP_TIMEOUT_S": str(self.setup_timeout_s),
            "SANDBOX_START_TIMEOUT_S": str(self.start_timeout_s),
            "SANDBOX_HEARTBEAT_S": str(self.heartbeat_s),
            # The runtime hands it to the agent's tools and git as a file (a pooled sandbox gets it
            # only when claimed, long after OpenCode started).
            "SANDBOX_TOOL_TOKEN": self.tool_token,
            # Not SANDBOX_: the agent's tools and git (credential helper) need it.
            "INSPECT_API_URL": self.api_url,
        }
        return {k: v for k, v in env.items() if v != ""}

    def without_identity(self, boot_mode: BootMode) -> SandboxSpec:
        """This spec as any session like it would have it: what a pooled sandbox starts with."""
        identity: dict[str, Any] = dict.fromkeys(self.claim(), "")
        return dataclasses.replace(self, boot_mode=boot_mode, **identity)

    def claim(self) -> dict[str, str]:
        """What makes a sandbox this session's: handed to a pooled sandbox when it is claimed."""
        return {name: getattr(self, name) for name in CLAIM_FIELDS}


def pool_key(image_ref: str, spec: SandboxSpec) -> str:
    """Which pooled sandboxes can serve ``spec``: same image, same environment but for identity.

    A changed secret, provider key, model or timeout makes a new key, so a sandbox started with
    the old values is never handed out (the pool refills with the new ones).
    """
    shared = spec.without_identity("standby").environment()
    egress = sorted(spec.egress_hosts)  # a sandbox's network is made at its start, with its policy
    digest = hashlib.sha256(json.dumps([image_ref, sorted(shared.items()), egress]).encode()).hexdigest()
    return digest[:24]


@dataclass(frozen=True)
class BuildResult:
    """What building a prebuilt image produced: the image (``ref``) or why there is none."""

    ok: bool
    ref: str = ""
    commit: str = ""
    runtime_version: str = ""
    log_tail: str = ""

    @classmethod
    def from_outcome(cls, outcome: dict, *, ref: str = "") -> BuildResult:
        """From the build runtime's ``build.json``; an image ``ref`` only for a successful build."""
        ok = bool(outcome.get("ok")) and bool(ref)
        return cls(
            ok=ok,
            ref=ref if ok else "",
            commit=str(outcome.get("commit", "")),
            runtime_version=str(outcome.get("runtime_version", "")),
            log_tail=str(outcome.get("log_tail", "")),
        )


@dataclass
class SandboxHandle:
    provider: str
    sandbox_id: str
    session_id: str
    provider_id: str
    isolated: bool = True
    warnings: list[str] = field(default_factory=list)


@dataclass
class Survivor:
    """A sandbox the database says was running when this server started."""

    sandbox_id: str
    session_id: str
    provider_id: str


@dataclass
class Adoption:
    """What ``adopt`` found: sandboxes still running (they reconnect), and why the others are gone."""

    handles: list[SandboxHandle] = field(default_factory=list)
    lost: dict[str, str] = field(default_factory=dict)  # sandbox id → why


class SandboxProvider(abc.ABC):
    name: str
    capabilities: Capabilities
    # Told of each host a sandbox was refused (session id, host, why), where a provider applies egress.
    on_egress_denied: Callable[[str, str, str], None] | None = None

    @abc.abstractmethod
    async def spawn(self, spec: SandboxSpec) -> SandboxHandle: ...

    @abc.abstractmethod
    async def restore(self, snapshot_ref: str, spec: SandboxSpec) -> SandboxHandle: ...

    @abc.abstractmethod
    async def snapshot(self, handle: SandboxHandle) -> str: ...

    @abc.abstractmethod
    async def stop(self, handle: SandboxHandle) -> None: ...

    @abc.abstractmethod
    async def status(self, handle: SandboxHandle) -> SandboxState: ...

    async def build_image(self, spec: SandboxSpec, *, timeout_s: float) -> BuildResult:
        """Clone ``spec``'s branch, run its setup.sh and capture the result as an image."""
        raise ProviderError(f"the {self.name} provider cannot build images")

    async def start_from_image(self, image_ref: str, spec: SandboxSpec) -> SandboxHandle:
        """A sandbox booted from a prebuilt image (``image`` mode: fetch + reset, no setup.sh)."""
        raise ProviderError(f"the {self.name} provider cannot start from images")

    async def park(self, handle: SandboxHandle, snapshot_ref: str) -> bool:
        """Keep an idle, just-snapshotted sandbox warm instead of stopping it, so that ``restore`` of
        ``snapshot_ref`` can resume it at once. False: not kept (the caller stops it as usual)."""
        return False

    async def unpark(self, snapshot_ref: str) -> None:  # noqa: B027 - only where ``park`` keeps sandboxes
        """The parked sandbox never learnt it was parked (the command did not arrive): stop it."""

    async def prewarm(self, image_ref: str, spec: SandboxSpec, count: int) -> None:  # noqa: B027 - optional
        """Keep ``count`` sandboxes booted from ``image_ref`` for sessions like ``spec`` (its identity
        is ignored), so that ``start_from_image`` can hand one out at once; 0 empties the pool."""

    async def delete_image(self, image_ref: str) -> None:  # noqa: B027 - optional: nothing to free by default
        """Forget an image no session needs any more (cleanup)."""

    async def delete_snapshot(self, snapshot_ref: str) -> None:  # noqa: B027 - optional, as above
        """Forget a snapshot no session needs any more (cleanup)."""

    def oom_kills(self, handle: SandboxHandle) -> int:
        """How many of the sandbox's processes were killed for going over its memory limit (so far)."""
        return 0

    def limits_summary(self) -> str:
        """What a sandbox may use and reach, in a line for people (the session's details)."""
        return ""

    def confinement(self) -> tuple[str, str]:
        """How this provider's sandboxes are confined (a word) and, when that is a problem, why."""
        return self.name, ""

    async def deliver_branch(self, session_id: str, branch: str, origin: str) -> None:
        """Bring ``branch``, which the session's sandbox wrote as a bundle (``OUTBOX_BUNDLE``) because
        its local ``origin`` is read-only to it, into that origin."""
        raise ProviderError(f"the {self.name} provider cannot push to a local repository")

    async def diff(self, session_id: str, base_branch: str) -> str | None:
        """The session's changes against its base branch, if this provider can read them cheaply."""
        return None

    async def adopt(self, survivors: list[Survivor], *, leave: frozenset[str] = frozenset()) -> Adoption:
        """Take over the sandboxes an earlier server (or a replica that died) left running. A provider
        whose sandboxes outlive the server finds them by their ids; others lost them with the server.
        ``leave``: sandbox ids another live server serves, which nothing here may touch."""
        if self.capabilities.outlives_server:
            return Adoption(
                handles=[SandboxHandle(self.name, s.sandbox_id, s.session_id, s.provider_id) for s in survivors]
            )
        return Adoption(lost={s.sandbox_id: "the server restarted" for s in survivors})

    @abc.abstractmethod
    async def close(self, *, keep_running: bool = False) -> None:
        """Server shutdown: stop every sandbox this provider started, or, ``keep_running``, only what
        cannot outlive this process (sessions' sandboxes go on and the next server adopts them)."""

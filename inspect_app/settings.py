"""Every configuration knob of Inspect, read once from the environment and `.env`.

This is the only module that reads ``os.environ``. Everything else receives a
``Settings`` object (or values taken from it) from the composition root.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import secrets
import socket
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from inspect_app.errors import ConfigError
from inspect_app.files import private_dir

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


# What a repository's setup usually needs: package registries, and the model providers' APIs.
DEFAULT_EGRESS = ",".join(
    [
        "api.anthropic.com",
        "api.openai.com",
        "pypi.org",
        "files.pythonhosted.org",
        "registry.npmjs.org",
        "registry.yarnpkg.com",
        "github.com",
        "codeload.github.com",
        ".githubusercontent.com",
        "proxy.golang.org",
        "sum.golang.org",
        "index.crates.io",
        "static.crates.io",
        "rubygems.org",
    ]
)


def _site(host: str) -> str:
    """A host's site, roughly its registrable domain: its last two labels (an address is its own)."""
    if host.replace(".", "").isdigit() or ":" in host:
        return host
    return ".".join(host.split(".")[-2:])


class Settings(BaseSettings):
    """Inspect's configuration. Field docs become the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="INSPECT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # --- server -----------------------------------------------------------------------------
    data_dir: Path = Field(Path("./data"), description="Where the database, sandboxes, snapshots and keys live.")
    host: str = Field("127.0.0.1", description="Address the server listens on.")
    port: int = Field(3000, ge=1, le=65535, description="Port for pages, API and WebSockets (one port).")
    public_url: str = Field(
        "", description="URL people reach the app at (links in Slack, PRs). Default: http://HOST:PORT."
    )
    preview_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port the live previews are served on, each at an origin of its own "
        "(<session>-<port>.PREVIEW_DOMAIN:PREVIEW_PORT). 0: PORT + 1.",
    )
    preview_domain: str = Field(
        "localhost",
        pattern=r"^[a-z0-9.-]{1,200}$",
        description="Domain under which previews get their own hosts. `localhost` works in browsers with no "
        "DNS set up; elsewhere a wildcard DNS record on a domain of its own, not the app's (previews run "
        "agent-written JavaScript: e.g. *.inspect-previews.dev for an app at inspect.example.com).",
    )
    preview_public_url: str = Field(
        "",
        description="How people reach previews, with {host} for a preview's host, e.g. "
        "https://{host} behind a TLS proxy. Default: http://{host}:PREVIEW_PORT.",
    )
    database_url: str = Field(
        "", description="SQLAlchemy URL. Default: SQLite at DATA_DIR/inspect.db. PostgreSQL: postgresql+psycopg://..."
    )
    redis_url: str = Field("", description="Redis URL for the hub and multi-worker Reflex. Empty: in-process.")
    replica_id: str = Field(
        "",
        max_length=100,
        description="This server's name among several on one database (the sandboxes it serves are "
        "recorded under it; a restart under the same name takes them back). Default: HOSTNAME:PORT.",
    )
    metrics_token: SecretStr = Field(
        SecretStr(""),
        description="Bearer token a Prometheus scraper presents at /metrics. Empty: /metrics is off.",
    )
    replica_timeout_s: float = Field(
        30, ge=5, description="Seconds without a replica's heartbeat before its peers take over its sandboxes."
    )
    secret_key: SecretStr = Field(
        SecretStr(""),
        description="AES-256-GCM key, 32 bytes as urlsafe base64. Empty: generated into DATA_DIR/secret.key (0600).",
    )
    sandbox_provider: Literal["local", "modal"] = Field("local", description="Where sandboxes run: local or modal.")
    modal_app_name: str = Field("inspect", description="Modal app the sandboxes run under (provider modal).")
    modal_cpu: float = Field(2.0, gt=0, description="CPU cores per Modal sandbox.")
    modal_memory_mb: int = Field(4096, gt=0, description="Memory per Modal sandbox, in MiB.")
    sandbox_isolation: Literal["auto", "bwrap", "none"] = Field(
        "auto",
        description="Local sandboxes: confined with bubblewrap (auto, bwrap: they refuse to start without it), "
        "or none: unconfined, with the server's own rights (dangerous; shown in the UI and /api/health).",
    )
    sandbox_uid_base: int = Field(
        200_000, ge=1000, description="First host uid local sandboxes run as when the server is root (one each)."
    )
    sandbox_uid_count: int = Field(1000, ge=1, description="How many host uids, from the base, sandboxes may take.")
    hub_queue_limit: int = Field(
        2000,
        ge=10,
        description="Live messages one subscriber (a tab, a socket) may fall behind by; past it, it gets a resync "
        "and catches up from the event store.",
    )
    sandbox_network: Literal["own", "host"] = Field(
        "own",
        description="Local sandboxes: a network of their own, out only through the egress proxy (own), "
        "or the host's network (host: they reach every service on the machine).",
    )
    egress_allow: str = Field(
        DEFAULT_EGRESS,
        description="Comma-separated hosts sandboxes may reach through the egress proxy (.example.com: "
        "and its subdomains), besides the model's and the git host's.",
    )
    sandboxes_outlive_server: bool = Field(
        True,
        description="Sessions' sandboxes go on running when the server stops (a restart or deploy interrupts no "
        "prompt; the next server adopts them). false: they stop with the server.",
    )
    sandbox_memory_mb: int = Field(
        4096, ge=256, description="Memory one local sandbox may use (its processes together), in MiB."
    )
    sandbox_max_processes: int = Field(
        2048, ge=64, description="Processes (and threads) one local sandbox may run at once."
    )
    sandbox_cpu_weight: int = Field(
        100, ge=1, le=10000, description="A local sandbox's CPU share when the machine is busy (100: an equal share)."
    )
    opencode_bin: str = Field("", description="The OpenCode binary for local sandboxes. Default: the project's .tools.")
    idle_timeout_s: float = Field(
        600, gt=0, description="Seconds without activity before a sandbox is snapshotted and stopped."
    )
    spawn_timeout_s: float = Field(
        180,
        gt=0,
        description="Seconds a booting sandbox may go without progress (git sync, each line of setup output, the "
        "agent's start) before it is given up; a whole boot may take the setup and start limits plus twice this.",
    )
    setup_timeout_s: float = Field(
        600, gt=0, description="Seconds a repository's .inspect/setup.sh may run (in a session's sandbox or a build)."
    )
    heartbeat_timeout_s: float = Field(90, gt=0, description="Seconds without a heartbeat before a sandbox is stale.")
    execution_timeout_s: float = Field(3600, gt=0, description="Seconds one prompt may run before it is stopped.")
    prebuild_interval_min: float = Field(
        30, gt=0, description="Minutes between prebuild runs (repositories with prebuild on, when their branch moved)."
    )
    build_timeout_s: float = Field(1800, gt=0, description="Seconds one image build (clone + setup.sh) may take.")
    automation_tick_s: float = Field(
        15, ge=1, le=300, description="Seconds between automation checks (schedules due, runs ended, queued runs)."
    )
    automation_grace_s: float = Field(
        3600,
        ge=0,
        description="A scheduled fire missed while the server was down runs at start if it is at most this many "
        "seconds late; an older one is recorded as missed.",
    )
    warm_pool_size: int = Field(
        1,
        ge=0,
        le=16,
        description="Sandboxes kept booted from each repository's prebuilt image, so a new session starts at once "
        "(local provider with bubblewrap; each holds an idle OpenCode, ~430 MB resident). 0 turns the pool off.",
    )
    warm_pool_limit: int = Field(
        4, ge=0, le=64, description="Pooled sandboxes kept at most, over all repositories (those in use refill first)."
    )
    parked_sandboxes: int = Field(
        2,
        ge=0,
        le=64,
        description="Idle sessions' sandboxes kept running after their idle snapshot (local provider), so a "
        "follow-up resumes at once instead of restoring the copy; the longest parked goes first. 0: stop them.",
    )
    park_ttl_s: float = Field(1800, gt=0, description="Seconds a parked sandbox is kept before it is stopped.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")

    # --- media (screenshots) --------------------------------------------------------------------
    # Served publicly at PUBLIC_URL/media/<key> (GitHub's image proxy and Slack fetch them without
    # signing in); the random key is what keeps an image private.
    media_s3_bucket: str = Field(
        "",
        pattern=r"^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?$",
        description="S3 bucket for media (screenshots), stored under media/. Empty: files in DATA_DIR/media.",
    )
    media_s3_endpoint_url: str = Field(
        "", description="An S3-compatible server's URL (MinIO, R2, ...). Empty: AWS S3 (with MEDIA_S3_BUCKET)."
    )
    media_s3_region: str = Field("", max_length=64, description="The bucket's region. Empty: boto3's default.")
    media_s3_access_key_id: str = Field(
        "", description="Access key for the media bucket. Empty: boto3's own chain (environment, instance role)."
    )
    media_s3_secret_access_key: SecretStr = Field(SecretStr(""), description="Secret key for the media bucket.")

    # --- local single-user mode ----------------------------------------------------------------
    local_user_name: str = Field(
        "", description="Name of the local user. Default: git config user.name, else 'Local User'."
    )
    local_user_email: str = Field("", description="Email of the local user. Default: git config user.email.")
    allow_remote_local_mode: bool = Field(
        False, description="Allow local mode (no sign-in) on a non-loopback address. Dangerous."
    )

    # --- GitHub -----------------------------------------------------------------------------
    github_client_id: str = Field("", description="GitHub OAuth client id; set it to require GitHub sign-in.")
    github_client_secret: SecretStr = Field(SecretStr(""), description="GitHub OAuth client secret.")
    github_app_id: str = Field("", description="GitHub App id (clone, push, installation tokens).")
    github_app_private_key: SecretStr = Field(SecretStr(""), description="GitHub App private key (PEM).")
    github_webhook_secret: SecretStr = Field(SecretStr(""), description="GitHub webhook HMAC secret.")
    github_app_slug: str = Field(
        "",
        max_length=100,
        description="The GitHub App's name as people @mention it in pull requests (e.g. inspect-bot): the bot "
        "answers those mentions. Empty: it does not.",
    )
    github_web_url: str = Field("https://github.com", description="GitHub web URL (GitHub Enterprise, test fakes).")
    github_api_url: str = Field("https://api.github.com", description="GitHub API URL (GitHub Enterprise, test fakes).")
    git_committer_name: str = Field(
        "Inspect", description="Committer of the agent's commits (use your App's bot name, e.g. my-app[bot])."
    )
    git_committer_email: str = Field(
        "inspect@localhost", description="Committer email (e.g. <bot-id>+my-app[bot]@users.noreply.github.com)."
    )
    allowed_users: str = Field("", description="Comma-separated GitHub logins allowed to sign in.")
    allowed_orgs: str = Field("", description="Comma-separated GitHub orgs whose members may sign in.")
    allowed_email_domains: str = Field("", description="Comma-separated email domains allowed to sign in.")
    admin_users: str = Field(
        "",
        description="Comma-separated GitHub logins made admins when they sign in (secrets, provider keys, "
        "settings, repositories); they may sign in without being on an allowlist.",
    )

    # --- Chrome extension -------------------------------------------------------------------------
    extension_origins: str = Field(
        "",
        description="Comma-separated origins allowed to frame /extension, e.g. chrome-extension://<extension id>.",
    )

    # --- Slack ------------------------------------------------------------------------------
    slack_bot_token: SecretStr = Field(SecretStr(""), description="Slack bot token (xoxb-...).")
    slack_signing_secret: SecretStr = Field(SecretStr(""), description="Slack signing secret (Events API).")
    slack_app_token: SecretStr = Field(SecretStr(""), description="Slack app-level token (xapp-...) for Socket Mode.")
    slack_api_url: str = Field("https://slack.com/api/", description="Slack API base URL (test fakes).")
    integration_check_s: float = Field(
        60, gt=0, description="Seconds between checks that Slack, GitHub and the model endpoint still answer."
    )

    # --- models -----------------------------------------------------------------------------
    default_model: str = Field(
        "",
        description="Default model, OpenCode 'provider/model' form. "
        "Default: llm/LLM_MODEL when LLM_BASE_URL is set, else anthropic/claude-sonnet-4-5.",
    )
    llm_base_url: str = Field("", description="An OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp, ...).")
    llm_api_key: SecretStr = Field(SecretStr(""), description="API key for LLM_BASE_URL.")
    llm_model: str = Field("", description="Model name served at LLM_BASE_URL.")
    anthropic_api_key: SecretStr = Field(
        SecretStr(""),
        validation_alias=AliasChoices("ANTHROPIC_API_KEY", "INSPECT_ANTHROPIC_API_KEY"),
        description="Anthropic key (env ANTHROPIC_API_KEY).",
    )
    openai_api_key: SecretStr = Field(
        SecretStr(""),
        validation_alias=AliasChoices("OPENAI_API_KEY", "INSPECT_OPENAI_API_KEY"),
        description="OpenAI key (env OPENAI_API_KEY).",
    )

    @field_validator("secret_key")
    @classmethod
    def _secret_key_is_32_bytes(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value():
            decode_key(value.get_secret_value())
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url_shape(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        return value

    @field_validator("extension_origins")
    @classmethod
    def _extension_origins(cls, value: str) -> str:
        for origin in (o.strip() for o in value.split(",") if o.strip()):
            if not origin.startswith(("chrome-extension://", "https://", "http://")) or " " in origin:
                raise ValueError(f"{origin!r} is not an origin like chrome-extension://<extension id>")
        return value

    @field_validator(
        "llm_base_url", "public_url", "github_web_url", "github_api_url", "slack_api_url", "media_s3_endpoint_url"
    )
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    # --- derived values ---------------------------------------------------------------------
    @property
    def egress_hosts(self) -> tuple[str, ...]:
        return tuple(h.strip() for h in self.egress_allow.split(",") if h.strip())

    @property
    def protected_paths(self) -> tuple[Path, ...]:
        """What no local repository may hold or lie in (it is bound into sandboxes): our own files."""
        return (self.data_dir, Path(__file__).resolve().parent.parent)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'inspect.db').resolve()}"

    @property
    def resolved_replica_id(self) -> str:
        return self.replica_id or f"{socket.gethostname()}:{self.port}"

    @property
    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104 - a comparison
        return f"http://{host}:{self.port}"

    @model_validator(mode="after")
    def _previews_on_another_site(self) -> Settings:
        """A preview on the app's site would get the app's cookies (SameSite does not tell them
        apart) and could set cookies for it: refuse a preview domain that shares the app's."""
        host = (urlsplit(self.resolved_public_url).hostname or "").lower()
        if host and _site(host) == _site(self.preview_domain):
            raise ValueError(
                f"INSPECT_PREVIEW_DOMAIN {self.preview_domain!r} is on the app's own site ({host}): previews run "
                "agent-written JavaScript and need a domain of their own"
            )
        return self

    @property
    def resolved_preview_port(self) -> int:
        return self.preview_port or self.port + 1

    def preview_url(self, host: str) -> str:
        """Where a preview's host is reached (see ``control/previews.py``)."""
        template = self.preview_public_url or f"http://{{host}}:{self.resolved_preview_port}"
        return template.replace("{host}", host).rstrip("/")

    @property
    def sandbox_bridge_url(self) -> str:
        """Where sandboxes connect. Local sandboxes always use loopback."""
        if self.sandbox_provider == "local":
            return f"ws://127.0.0.1:{self.port}/api/sandbox/ws"
        base = self.resolved_public_url
        return (
            "wss://" + base.removeprefix("https://")
            if base.startswith("https://")
            else "ws://" + base.removeprefix("http://")
        ) + "/api/sandbox/ws"

    @property
    def sandbox_api_url(self) -> str:
        """Where a sandbox's tools (git credential helper, create-pull-request) call the API."""
        if self.sandbox_provider == "local":
            return f"http://127.0.0.1:{self.port}"
        return self.resolved_public_url

    @property
    def extension_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.extension_origins.split(",") if o.strip()]

    @property
    def github_app_enabled(self) -> bool:
        return bool(self.github_app_id and self.github_app_private_key.get_secret_value())

    @property
    def resolved_default_model(self) -> str:
        if self.default_model:
            return self.default_model
        if self.llm_base_url:
            return f"llm/{self.llm_model or 'default'}"
        return "anthropic/claude-sonnet-4-5"

    @property
    def admin_logins(self) -> frozenset[str]:
        """INSPECT_ADMIN_USERS, lower-cased (GitHub logins are case-insensitive)."""
        return frozenset(login.strip().lower() for login in self.admin_users.split(",") if login.strip())

    @property
    def oauth_enabled(self) -> bool:
        return bool(self.github_client_id)

    @property
    def listens_on_loopback(self) -> bool:
        if self.host in LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def local_identity(self) -> tuple[str, str]:
        """The local user's (name, email): settings first, then the global git identity."""
        name = self.local_user_name or _git_config("user.name") or "Local User"
        email = self.local_user_email or _git_config("user.email") or "local@inspect.invalid"
        return name, email

    def encryption_key(self) -> bytes:
        """The AES-256-GCM key: from settings, else from (or newly into) DATA_DIR/secret.key."""
        if self.secret_key.get_secret_value():
            return decode_key(self.secret_key.get_secret_value())
        path = self.data_dir / "secret.key"
        if path.exists():
            try:
                return decode_key(path.read_text().strip())
            except ValueError as exc:
                raise ConfigError(f"{path}: {exc}") from exc
        private_dir(self.data_dir)
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.urlsafe_b64encode(key).decode() + "\n")
        return key


def decode_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.encode() + b"=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("must be 32 bytes encoded as urlsafe base64") from exc
    if len(key) != 32:
        raise ValueError(f"must be 32 bytes encoded as urlsafe base64 (got {len(key)} bytes)")
    return key


def _git_config(key: str) -> str:
    try:
        result = subprocess.run(
            ["git", "config", "--global", "--get", key], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.strip()


def env_name(field: str) -> str:
    """The environment variable a settings field is read from (for messages and docs)."""
    info = Settings.model_fields[field]
    if isinstance(info.validation_alias, AliasChoices):
        return str(info.validation_alias.choices[0])
    return f"INSPECT_{field.upper()}"


def load_settings(**overrides: object) -> Settings:
    """Build Settings, turning validation errors into one readable ConfigError line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            name = env_name(field) if field in Settings.model_fields else field
            problems.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
        raise ConfigError("; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, loaded on first use (never at import time)."""
    return load_settings()

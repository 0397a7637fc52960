"""The database tables (SQLModel), with the constraints that keep the data right.

Works on SQLite (the embedded default) and PostgreSQL. Constraints the domain relies on are
enforced by the database, not only by code:

- ``events``: unique ``(session_id, seq)``; unique ``(session_id, ack_id)`` (re-sent critical events
  are stored once); unique ``(session_id, key)`` (one growing row per streamed answer / tool call).
- ``messages``: unique ``(session_id, client_request_id)``; a partial unique index allows at most one
  ``processing`` message per session.
- ``secrets``: one value per key globally and one per key per repository (two partial indexes, since
  NULL never collides in a plain unique constraint).
"""

from __future__ import annotations

import secrets as _secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    """A short random id for rows whose id appears in URLs (sessions, messages, sandboxes)."""
    return _secrets.token_hex(8)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; use inspect_app.models.utcnow()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# A BIGINT primary key on PostgreSQL; on SQLite it must be INTEGER to be the rowid alias.
BigIntId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def _when(nullable: bool = True) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable)


def _json(default: Any) -> Any:
    return Field(default_factory=lambda: type(default)(default), sa_type=sa.JSON, nullable=False)


def _fk(
    target: str,
    *,
    nullable: bool = False,
    ondelete: Literal["CASCADE", "SET NULL", "RESTRICT"] = "CASCADE",
    index: bool = True,
) -> Any:
    return Field(default=None, foreign_key=target, nullable=nullable, ondelete=ondelete, index=index)


# --- enums (stored as plain strings so new values need no type migration) ----------------------
class SessionStatus(StrEnum):
    CREATED = "created"
    SPAWNING = "spawning"
    SYNCING = "syncing"
    READY = "ready"
    RUNNING = "running"
    IDLE = "idle"
    STOPPED = "stopped"
    STALE = "stale"
    FAILED = "failed"


class MessageStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class SandboxStatus(StrEnum):
    SPAWNING = "spawning"
    CONNECTED = "connected"
    READY = "ready"
    STOPPING = "stopping"
    STOPPED = "stopped"
    STALE = "stale"
    FAILED = "failed"


class ImageStatus(StrEnum):
    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"
    STALE = "stale"  # its branch moved on (a push webhook); the next prebuild replaces it


# --- people ------------------------------------------------------------------------------------
class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    email: str = Field(default="", max_length=320, index=True)
    login: str | None = Field(default=None, max_length=100, unique=True)
    avatar_url: str = Field(default="", max_length=500)
    commit_email: str = Field(default="", max_length=320)  # public email or GitHub noreply: commit authorship
    is_local: bool = Field(default=False)
    # admins manage secrets, provider keys, instance settings and repositories (control/data/roles.py)
    is_admin: bool = Field(default=False)
    monthly_budget_cents: int | None = Field(default=None)  # prompts are refused once spent (data/usage.py)
    created_at: datetime = _ts()
    last_seen_at: datetime | None = _when()


class Identity(SQLModel, table=True):
    """A sign-in identity (GitHub) with its encrypted OAuth token."""

    __tablename__ = "identities"
    __table_args__ = (sa.UniqueConstraint("provider", "provider_user_id", name="uq_identities_provider_user"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = _fk("users.id")
    provider: str = Field(default="github", max_length=32)
    provider_user_id: str = Field(max_length=64)
    login: str = Field(default="", max_length=100)
    token_ciphertext: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    scopes: str = Field(default="", max_length=500)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class ApiToken(SQLModel, table=True):
    """A personal API token; only its SHA-256 hash is stored."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = _fk("users.id")
    name: str = Field(default="", max_length=100)
    token_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)
    created_at: datetime = _ts()
    last_used_at: datetime | None = _when()
    revoked_at: datetime | None = _when()


# --- repositories and sessions -----------------------------------------------------------------
class Repository(SQLModel, table=True):
    __tablename__ = "repositories"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default="local", max_length=16)  # local | github
    url: str = Field(max_length=1000, unique=True)  # local path / git URL, or https://github.com/o/r
    name: str = Field(max_length=200)  # display name, e.g. "owner/repo" or the directory name
    github_owner: str | None = Field(default=None, max_length=100)
    github_name: str | None = Field(default=None, max_length=100)
    default_branch: str = Field(default="main", max_length=255)
    description: str = Field(default="", sa_type=sa.Text)
    keywords: list[str] = _json([])
    egress_hosts: list[str] = _json([])  # its sandboxes may reach these too (beyond INSPECT_EGRESS_ALLOW)
    # repositories its sessions' agents may start child sessions on (besides this one); an admin's
    # choice: a child can print its repository's secrets into the answer its parent reads
    child_repositories: list[int] = _json([])
    prebuild: bool = Field(default=False)
    created_at: datetime = _ts()


class Session(SQLModel, table=True):
    __tablename__ = "sessions"
    __table_args__ = (
        sa.Index("ix_sessions_creator_updated", "creator_id", "updated_at"),
        sa.Index("ix_sessions_archived_updated", "archived", "updated_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    repository_id: int = _fk("repositories.id", ondelete="RESTRICT")
    base_branch: str = Field(max_length=255)
    branch: str = Field(default="", max_length=255)  # the working branch the agent pushes
    status: str = Field(default=SessionStatus.CREATED, max_length=16, index=True)
    status_reason: str = Field(default="", sa_type=sa.Text)
    model: str = Field(default="", max_length=200)
    title: str = Field(default="", max_length=300)
    creator_id: int = _fk("users.id", ondelete="RESTRICT", index=False)
    source: str = Field(default="web", max_length=16)  # web | api | slack | extension
    source_ref: dict[str, Any] = _json({})  # e.g. Slack channel/thread permalink
    parent_id: str | None = _fk("sessions.id", nullable=True, ondelete="SET NULL")
    archived: bool = Field(default=False)
    last_seq: int = Field(default=0, sa_type=sa.BigInteger)  # the newest event's seq (allocated in-transaction)
    last_rev: int = Field(default=0, sa_type=sa.BigInteger)  # the newest event revision (the change feed's)
    snapshot_ref: str | None = Field(default=None, max_length=500)  # the newest snapshot to restore from
    # A fork's pull request whose code this session runs (``refs/pull/7/head``), "" for the repository's
    # own code. That code is nobody's we trust: its sandbox gets no secrets, no prebuilt image or
    # pooled sandbox, a read-only git token; nothing it makes is pushed (lifecycle, pulls).
    fork_ref: str = Field(default="", max_length=255)
    last_activity_at: datetime = _ts()  # drives the idle timeout
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Participant(SQLModel, table=True):
    __tablename__ = "participants"
    __table_args__ = (sa.UniqueConstraint("session_id", "user_id", name="uq_participants_session_user"),)

    id: int | None = Field(default=None, primary_key=True)
    session_id: str = _fk("sessions.id", index=False)
    user_id: int = _fk("users.id")
    role: str = Field(default="member", max_length=16)  # owner | member
    client_token_hash: str | None = Field(default=None, max_length=64, unique=True)
    client_token_expires_at: datetime | None = _when()
    joined_at: datetime = _ts()
    last_seen_at: datetime | None = _when()
    last_read_seq: int = Field(default=0, sa_type=sa.BigInteger)  # the newest event they have seen (unread dot)


class Message(SQLModel, table=True):
    """A prompt in a session's durable FIFO queue."""

    __tablename__ = "messages"
    __table_args__ = (
        sa.UniqueConstraint("session_id", "client_request_id", name="uq_messages_session_request"),
        sa.Index("ix_messages_session_status_created", "session_id", "status", "created_at"),
        sa.Index(
            "uq_messages_one_processing",
            "session_id",
            unique=True,
            sqlite_where=sa.text("status = 'processing'"),
            postgresql_where=sa.text("status = 'processing'"),
        ),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    session_id: str = _fk("sessions.id", index=False)
    author_id: int = _fk("users.id", ondelete="RESTRICT")
    content: str = Field(sa_type=sa.Text)
    context: dict[str, Any] = _json({})  # e.g. a picked page element from the extension
    source: str = Field(default="web", max_length=16)
    # "plan": the agent plans and changes nothing (the sandbox refuses writes); "build": it works
    mode: str = Field(default="build", max_length=8)
    status: str = Field(default=MessageStatus.PENDING, max_length=16)
    client_request_id: str | None = Field(default=None, max_length=100)
    model: str = Field(default="", max_length=200)
    error: str = Field(default="", sa_type=sa.Text)
    created_at: datetime = _ts()
    started_at: datetime | None = _when()
    completed_at: datetime | None = _when()


class Event(SQLModel, table=True):
    """One entry of a session's timeline. ``seq`` increases by one per session."""

    __tablename__ = "events"
    __table_args__ = (
        sa.UniqueConstraint("session_id", "seq", name="uq_events_session_seq"),
        sa.UniqueConstraint("session_id", "ack_id", name="uq_events_session_ack"),
        sa.UniqueConstraint("session_id", "key", name="uq_events_session_key"),
        sa.Index("ix_events_message", "message_id"),
        sa.Index("ix_events_session_rev", "session_id", "rev"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntId)
    session_id: str = _fk("sessions.id", index=False)
    seq: int = Field(sa_type=sa.BigInteger)
    rev: int = Field(default=0, sa_type=sa.BigInteger)  # bumped on insert and on every update (per session)
    type: str = Field(max_length=32)
    data: dict[str, Any] = _json({})
    message_id: str | None = Field(default=None, foreign_key="messages.id", ondelete="SET NULL", nullable=True)
    ack_id: str | None = Field(default=None, max_length=64)
    key: str | None = Field(default=None, max_length=120)  # upsert key: "text:<message>", "tool:<call>"
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Artifact(SQLModel, table=True):
    __tablename__ = "artifacts"

    id: int | None = Field(default=None, primary_key=True)
    session_id: str = _fk("sessions.id")
    type: str = Field(max_length=16)  # pr | branch | screenshot | preview
    url: str = Field(default="", max_length=1000)
    meta: dict[str, Any] = _json({})
    state: str = Field(default="", max_length=16)  # open | merged | closed | ...
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


# --- sandboxes, images, secrets, integrations --------------------------------------------------
LIVE_SANDBOX_SQL = "status IN ('spawning', 'connected', 'ready')"


class Sandbox(SQLModel, table=True):
    __tablename__ = "sandboxes"
    __table_args__ = (
        sa.Index("ix_sandboxes_session_created", "session_id", "created_at"),
        # one live sandbox per session, also when two replicas decide to start one at the same time
        sa.Index(
            "uq_sandboxes_one_live",
            "session_id",
            unique=True,
            sqlite_where=sa.text(LIVE_SANDBOX_SQL),
            postgresql_where=sa.text(LIVE_SANDBOX_SQL),
        ),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    session_id: str = _fk("sessions.id", index=False)
    provider: str = Field(max_length=16)
    provider_id: str = Field(default="", max_length=200)
    boot_mode: str = Field(default="fresh", max_length=24)  # fresh | snapshot_restore | image | build
    status: str = Field(default=SandboxStatus.SPAWNING, max_length=16, index=True)
    token_hash: str = Field(max_length=64, unique=True)
    # The agent's tools (create-pull-request, the git credential helper) authenticate with this one;
    # the bridge token above stays with the runtime, out of the agent's reach.
    tool_token_hash: str | None = Field(default=None, max_length=64, unique=True)
    last_heartbeat_at: datetime | None = _when()
    snapshot_ref: str | None = Field(default=None, max_length=500)
    runtime_version: str = Field(default="", max_length=32)
    error: str = Field(default="", sa_type=sa.Text)
    # the highest numbered bridge event handled, written when the server stops: the next server's
    # handshake says it, so the sandbox re-sends only what did not arrive (protocol.py)
    bridge_received: int = Field(default=0)
    # the replica serving it (its link, its watchdogs); another adopts it once this one stops
    # beating (``replicas``). Empty: a server from before replicas, adopted by the next to start.
    replica_id: str = Field(default="", max_length=100, index=True)
    # raised each time a replica takes the sandbox over from another (``sandboxes.take``): event
    # batches carry the epoch of the connection they came on, and a stale one is refused
    owner_epoch: int = Field(default=0)
    created_at: datetime = _ts()
    ready_at: datetime | None = _when()
    stopped_at: datetime | None = _when()


class Image(SQLModel, table=True):
    """A prebuilt sandbox image of a repository branch."""

    __tablename__ = "images"
    __table_args__ = (sa.Index("ix_images_lookup", "repository_id", "branch", "status", "built_at"),)

    id: int | None = Field(default=None, primary_key=True)
    repository_id: int = _fk("repositories.id", index=False)
    branch: str = Field(max_length=255)
    commit_sha: str = Field(default="", max_length=64)
    provider: str = Field(max_length=16)
    provider_ref: str = Field(default="", max_length=500)
    status: str = Field(default=ImageStatus.BUILDING, max_length=16)
    runtime_version: str = Field(default="", max_length=32)
    duration_s: float | None = Field(default=None)
    log_tail: str = Field(default="", sa_type=sa.Text)
    # while building: the build sandbox's tool token (git credentials for the clone), hashed
    tool_token_hash: str | None = Field(default=None, max_length=64, unique=True)
    created_at: datetime = _ts()
    built_at: datetime | None = _when()


class Secret(SQLModel, table=True):
    """An encrypted secret (AES-256-GCM: nonce || ciphertext). Global when repository_id is NULL."""

    __tablename__ = "secrets"
    __table_args__ = (
        sa.Index(
            "uq_secrets_global_key",
            "key",
            unique=True,
            sqlite_where=sa.text("repository_id IS NULL"),
            postgresql_where=sa.text("repository_id IS NULL"),
        ),
        sa.Index(
            "uq_secrets_repo_key",
            "repository_id",
            "key",
            unique=True,
            sqlite_where=sa.text("repository_id IS NOT NULL"),
            postgresql_where=sa.text("repository_id IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    repository_id: int | None = _fk("repositories.id", nullable=True, index=False)
    key: str = Field(max_length=100)
    ciphertext: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class SlackThread(SQLModel, table=True):
    __tablename__ = "slack_threads"
    __table_args__ = (sa.UniqueConstraint("channel", "thread_ts", name="uq_slack_threads_channel_ts"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(default="", max_length=32)
    channel: str = Field(max_length=32)
    thread_ts: str = Field(max_length=32)
    session_id: str = _fk("sessions.id")
    created_at: datetime = _ts()


class WebhookDelivery(SQLModel, table=True):
    """A webhook delivery already handled (GitHub re-delivers; each id is processed once)."""

    __tablename__ = "webhook_deliveries"

    delivery_id: str = Field(primary_key=True, max_length=100)
    event: str = Field(max_length=50)
    received_at: datetime = _ts()


class SessionChanges(SQLModel, table=True):
    """A session's changes against its base as last read inside its sandbox (after each prompt and
    before it sleeps): what the session page shows once the sandbox is gone."""

    __tablename__ = "session_changes"

    session_id: str = Field(foreign_key="sessions.id", primary_key=True, ondelete="CASCADE", max_length=32)
    diff: str = Field(default="", sa_type=sa.Text)  # ``git diff --stat --patch origin/<base>``, bounded
    taken_at: datetime = _ts()


class PushedCommit(SQLModel, table=True):
    """A commit Inspect pushed to a GitHub repository: an event about it (a check failing on it, a
    push) was caused by Inspect and starts no automation (no fix -> push -> fail -> fix loop)."""

    __tablename__ = "pushed_commits"

    repository_id: int = Field(foreign_key="repositories.id", primary_key=True, ondelete="CASCADE")
    sha: str = Field(primary_key=True, max_length=64)
    session_id: str | None = _fk("sessions.id", nullable=True, ondelete="SET NULL", index=False)
    pushed_at: datetime = _ts()


class BotReply(SQLModel, table=True):
    """An answer the GitHub bot owes a pull request's thread: posted once the prompt has ended, by
    whichever replica sees that first (``answered_at`` is the claim), so it outlives the replica that
    took the mention."""

    __tablename__ = "bot_replies"

    message_id: str = Field(foreign_key="messages.id", primary_key=True, max_length=32, ondelete="CASCADE")
    session_id: str = _fk("sessions.id", index=False)
    repository: str = Field(max_length=200)  # owner/name
    pull: int
    answered_at: datetime | None = _when()
    created_at: datetime = _ts()


class PromptUsage(SQLModel, table=True):
    """The tokens one prompt's steps used, summed from its ``step_finish`` events once it ended
    (``data/usage.py``); what costs, budgets and Stats add up. Prices apply when read."""

    __tablename__ = "prompt_usage"
    __table_args__ = (sa.Index("ix_prompt_usage_user_at", "user_id", "at"),)

    message_id: str = Field(foreign_key="messages.id", primary_key=True, max_length=32, ondelete="CASCADE")
    session_id: str = _fk("sessions.id")
    user_id: int = _fk("users.id", index=False)  # the prompt's author: whose budget it spends
    repository_id: int = _fk("repositories.id")
    automation_id: int | None = Field(default=None, index=True)  # a run's session (no FK: history outlives it)
    model: str = Field(default="", max_length=200)
    steps: int = Field(default=0)
    input: int = Field(default=0, sa_type=sa.BigInteger)
    output: int = Field(default=0, sa_type=sa.BigInteger)  # reasoning included
    cache_read: int = Field(default=0, sa_type=sa.BigInteger)
    cache_write: int = Field(default=0, sa_type=sa.BigInteger)
    at: datetime = _ts()  # when the prompt was sent


class AgentExtension(SQLModel, table=True):
    """What an agent gets besides its own tools: an MCP server (local: a command in the sandbox;
    remote: a URL) or a skill (named instructions), for every repository or one
    (``control/agent_extensions.py``). Secret values are references ({"secret": KEY}), never values."""

    __tablename__ = "agent_extensions"
    __table_args__ = (sa.UniqueConstraint("repository_id", "name", name="uq_agent_extensions_scope_name"),)

    id: int | None = Field(default=None, primary_key=True)
    repository_id: int | None = _fk("repositories.id", nullable=True)  # None: every repository
    kind: str = Field(max_length=16)  # mcp_local | mcp_remote | skill
    name: str = Field(max_length=40)
    config: dict[str, Any] = _json({})
    created_at: datetime = _ts()


class InstanceSetting(SQLModel, table=True):
    """A setting changed at run time from the Settings page (e.g. the default model)."""

    __tablename__ = "instance_settings"

    key: str = Field(primary_key=True, max_length=100)
    value: str = Field(default="", sa_type=sa.Text)
    updated_at: datetime = _ts()


class Replica(SQLModel, table=True):
    """A server process of the installation, alive while its heartbeat is recent."""

    __tablename__ = "replicas"

    id: str = Field(primary_key=True, max_length=100)
    started_at: datetime = _ts()
    heartbeat_at: datetime = _ts()


class Lease(SQLModel, table=True):
    """A named, expiring lock so a scheduled job runs once across several workers."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=100)
    holder: str = Field(max_length=100)
    expires_at: datetime = _ts()


class AutomationStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # by a person, or by itself after failing runs (``paused_reason`` says which)


class RunStatus(StrEnum):
    QUEUED = "queued"  # claimed; waits for a free slot (or for its session to start)
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # a body that did not match, or no free slot with overflow "skip"
    MISSED = "missed"  # a schedule's fire the server was down for, past the grace window


class Automation(SQLModel, table=True):
    """Work that starts without anyone prompting: a trigger, the repositories it works on, a prompt
    template (jinja2, sandboxed; the trigger's payload is data only), the person it acts for."""

    __tablename__ = "automations"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    trigger: str = Field(max_length=16)  # schedule | webhook | github | slack
    # schedule: {"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"}; webhook: {"filters": [...]};
    # github: {"events": ["issues.labeled"], "label": "inspect"}; slack: {"channel": "C…", "contains": "…"}
    trigger_config: dict[str, Any] = _json({})
    repository_ids: list[int] = _json([])
    template: str = Field(sa_type=sa.Text)
    model: str = Field(default="", max_length=200)
    acts_for_id: int = _fk("users.id", ondelete="RESTRICT")
    created_by_id: int = _fk("users.id", ondelete="RESTRICT", index=False)
    status: str = Field(default=AutomationStatus.ACTIVE, max_length=16)
    paused_reason: str = Field(default="", sa_type=sa.Text)
    max_concurrent: int = Field(default=1)
    overflow: str = Field(default="queue", max_length=8)  # queue | skip: a run with no free slot
    failures_in_a_row: int = Field(default=0)
    runs: int = Field(default=0)  # runs ever claimed: each run's number
    # an inbound webhook's secret (HMAC-SHA256 key or bearer token), encrypted like every secret
    webhook_secret_ciphertext: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    next_fire_at: datetime | None = _when()  # a schedule's next fire time (UTC)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class AutomationRun(SQLModel, table=True):
    """One firing of an automation for one repository. ``fire_key`` names the firing (a schedule's
    fire time, a webhook delivery): unique per automation and repository, so a fire is claimed once
    across replicas and restarts."""

    __tablename__ = "automation_runs"
    __table_args__ = (
        sa.UniqueConstraint("automation_id", "fire_key", "repository_id", name="uq_automation_runs_fire"),
        sa.Index("ix_automation_runs_status", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    automation_id: int = _fk("automations.id")
    number: int = Field(default=0)  # run #n of its automation
    repository_id: int = _fk("repositories.id", ondelete="CASCADE", index=False)
    fire_key: str = Field(max_length=200)
    source: str = Field(max_length=16)  # schedule | webhook | github | slack | manual
    status: str = Field(default=RunStatus.QUEUED, max_length=16)
    reason: str = Field(default="", sa_type=sa.Text)
    payload: dict[str, Any] = _json({})
    prompt: str = Field(default="", sa_type=sa.Text)  # the rendered template
    branch: str | None = Field(default=None, max_length=255)  # where it works (a pull request's head), else default
    pull: int | None = Field(default=None)  # the pull request it works on, whose branch its commits go to
    fork: bool = Field(default=False)  # that pull request comes from a fork: its session runs as ``fork_ref``
    session_id: str | None = _fk("sessions.id", nullable=True, ondelete="SET NULL")
    message_id: str | None = Field(default=None, max_length=32)  # the prompt it sent
    created_at: datetime = _ts()
    started_at: datetime | None = _when()
    finished_at: datetime | None = _when()

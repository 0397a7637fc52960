"""Request and response bodies of the HTTP API (public shapes: no secret column can leak)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from inspect_app.control.data.prompts import MAX_CONTENT_CHARS
from inspect_app.control.text import NUL_MESSAGE, has_nul

# The largest id or cursor a database column holds (a signed BIGINT): beyond it the driver fails (500).
MAX_BIGINT = 2**63 - 1
RowId = Annotated[int, Field(ge=1, le=MAX_BIGINT)]
RepositoryId = Annotated[int, Path(ge=1, le=MAX_BIGINT)]
AutomationId = Annotated[int, Path(ge=1, le=MAX_BIGINT)]
Cursor = Annotated[int, Query(ge=0, le=MAX_BIGINT)]


class _Body(BaseModel):
    """A request body: no unknown fields, and no NUL character in any string (nested ones too)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if has_nul(value):
            raise ValueError(NUL_MESSAGE)
        return value


class RepositoryCreate(_Body):
    url: str | None = Field(default=None, min_length=1, max_length=1000, description="A local path or a git URL")
    github: str | None = Field(
        default=None, min_length=3, max_length=201, description="owner/name of a repository the GitHub App reaches"
    )
    description: str = Field(default="", max_length=5000)

    @model_validator(mode="after")
    def _one_source(self) -> RepositoryCreate:
        if (self.url is None) == (self.github is None):
            raise ValueError("give either url (local git) or github (owner/name)")
        return self


class RepositoryUpdate(_Body):
    description: str | None = Field(default=None, max_length=5000)
    keywords: list[str] | None = Field(default=None, max_length=20, description="Aliases the Slack bot routes by")
    egress_hosts: list[str] | None = Field(
        default=None,
        max_length=50,
        description="Hosts its sandboxes may reach beyond the installation's list (.example.com: with subdomains)",
    )
    child_repositories: list[int] | None = Field(
        default=None, max_length=100, description="Repositories its sessions' agents may start child sessions on"
    )


class GitHubRepositoryPublic(BaseModel):
    full_name: str
    default_branch: str
    description: str
    private: bool
    registered: bool


class RepositoryPublic(BaseModel):
    id: int
    name: str
    url: str
    kind: str
    default_branch: str
    description: str
    keywords: list[str]
    egress_hosts: list[str]
    child_repositories: list[int]
    prebuild: bool


class SessionCreate(_Body):
    repository_id: RowId
    branch: str | None = Field(default=None, max_length=255)
    model: str | None = Field(default=None, max_length=200)
    title: str | None = Field(default=None, max_length=300)


class SessionUpdate(_Body):
    title: str = Field(min_length=1, max_length=300)


class PromptCreate(_Body):
    content: str = Field(min_length=1, max_length=MAX_CONTENT_CHARS)
    client_request_id: str | None = Field(default=None, min_length=1, max_length=100)
    context: dict[str, Any] | None = None
    mode: Literal["build", "plan"] = Field(
        default="build", description="plan: the agent plans and changes nothing (the sandbox refuses writes)"
    )
    model: str = Field(default="", max_length=200, description="provider/model for this prompt (else the session's)")


class PromptPublic(BaseModel):
    id: str
    session_id: str
    author_id: int
    content: str
    context: dict[str, Any]
    source: str
    status: str
    error: str
    created_at: datetime


class PromptAccepted(BaseModel):
    message_id: str
    position: int
    status: str
    created: bool


class SecretPut(_Body):
    value: str = Field(max_length=65536)


class EventsPage(BaseModel):
    events: list[dict[str, Any]]
    next: int | None = None  # with ``after``: the seq to ask after for the following page
    cursor: int | None = None  # with ``cursor``: the revision to pass next time (the change feed)
    more: bool = False  # with ``cursor``: more changes are waiting now


class _AutomationFields(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    cron: str | None = Field(default=None, min_length=1, max_length=100, description="e.g. '0 9 * * 1-5'")
    timezone: str | None = Field(default=None, min_length=1, max_length=64, description="IANA, e.g. Europe/Berlin")
    filters: list[dict[str, Any]] | None = Field(
        default=None, max_length=20, description="webhook: [{'path': 'a.b', 'equals': v} | {'path': ..., 'in': [...]}]"
    )
    repository_ids: list[RowId] | None = Field(default=None, min_length=1, max_length=20)
    template: str | None = Field(default=None, min_length=1, max_length=20_000, description="jinja2; {{ payload.x }}")
    model: str | None = Field(default=None, max_length=200)
    acts_for_id: RowId | None = Field(default=None, description="admins only: another person")
    max_concurrent: int | None = Field(default=None, ge=1, le=10)
    overflow: Literal["queue", "skip"] | None = None
    events: list[str] | None = Field(default=None, max_length=5, description="github: e.g. ['issues.labeled']")
    label: str | None = Field(default=None, max_length=100, description="github issues.labeled: only this label")
    channel: str | None = Field(default=None, min_length=1, max_length=32, description="slack: the channel's id")
    contains: str | None = Field(default=None, max_length=200, description="slack: a phrase the message holds")
    review: bool | None = Field(default=None, description="github: post the answer as a review of the pull request")


class AutomationCreate(_AutomationFields):
    name: str = Field(min_length=1, max_length=200)
    trigger: Literal["schedule", "webhook", "github", "slack"]
    repository_ids: list[RowId] = Field(min_length=1, max_length=20)
    template: str = Field(min_length=1, max_length=20_000)


class AutomationUpdate(_AutomationFields):
    status: Literal["active", "paused"] | None = None


class ReviewSwitch(_Body):
    on: bool

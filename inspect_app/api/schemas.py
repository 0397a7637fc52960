"""Request and response bodies of the HTTP API (public shapes: no secret column can leak)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from inspect_app.control.prompts import MAX_CONTENT_CHARS


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    prebuild: bool


class SessionCreate(_Body):
    repository_id: int
    branch: str | None = Field(default=None, max_length=255)
    model: str | None = Field(default=None, max_length=200)
    title: str | None = Field(default=None, max_length=300)


class SessionUpdate(_Body):
    title: str = Field(min_length=1, max_length=300)


class PromptCreate(_Body):
    content: str = Field(min_length=1, max_length=MAX_CONTENT_CHARS)
    client_request_id: str | None = Field(default=None, min_length=1, max_length=100)
    context: dict[str, Any] | None = None


class PromptAccepted(BaseModel):
    message_id: str
    position: int
    status: str
    created: bool


class SecretPut(_Body):
    value: str = Field(max_length=65536)


class EventsPage(BaseModel):
    events: list[dict[str, Any]]
    next: int | None

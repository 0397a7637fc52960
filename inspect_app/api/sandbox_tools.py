"""``/api/sandbox/*``: what a sandbox's tools may ask for, with the sandbox's tool token.

- ``git-credentials``: the git credential helper's question (a short-lived installation token for
  the session's own GitHub repository);
- ``pull-request``: the agent's ``create-pull-request`` tool (push the branch, open or update the PR);
- ``screenshots``: the ``screenshot`` tool's picture (a PNG as the body; what it shows in the query);
- ``sessions``: the child-session tools (``spawn-session``, ``session-status``,
  ``send-session-prompt``, ``cancel-session``; rules in ``control/children.py``).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from inspect_app.api.deps import ServicesDep
from inspect_app.control.data import sandboxes
from inspect_app.control.data.children import ChildRow
from inspect_app.control.data.sandboxes import ToolCaller
from inspect_app.control.screenshots import Shot
from inspect_app.errors import Forbidden, Unauthorized

router = APIRouter(prefix="/api/sandbox", tags=["sandbox"])


async def tool_caller(request: Request, services: ServicesDep) -> ToolCaller:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <sandbox tool token>")
    caller = await asyncio.to_thread(sandboxes.for_tool_token, services.engine, token.strip())
    if caller is None:
        raise Unauthorized("unknown tool token, or its sandbox has stopped")
    return caller


Caller = Annotated[ToolCaller, Depends(tool_caller)]


class CredentialRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    protocol: str = Field(default="https", max_length=16)
    host: str = Field(max_length=255)
    path: str = Field(default="", max_length=500)


class CredentialAnswer(BaseModel):
    username: str
    password: str
    expires_at: datetime


class PullRequestAsk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=256)
    body: str = Field(default="", max_length=60000)
    draft: bool = False


class PullRequestAnswer(BaseModel):
    kind: str
    url: str
    state: str
    opened_as: str
    message: str


@router.post("/git-credentials", response_model=CredentialAnswer)
async def git_credentials(body: CredentialRequest, caller: Caller, services: ServicesDep) -> CredentialAnswer:
    found = await services.pulls.credentials_for(caller, host=body.host, path=body.path)
    return CredentialAnswer(username=found.username, password=found.password, expires_at=found.expires_at)


@router.post("/pull-request", response_model=PullRequestAnswer)
async def pull_request(body: PullRequestAsk, caller: Caller, services: ServicesDep) -> PullRequestAnswer:
    if caller.session_id is None:
        raise Forbidden("an image build cannot open pull requests")
    result = await services.pulls.create(caller.session_id, title=body.title, body=body.body, draft=body.draft)
    return PullRequestAnswer(**result.__dict__)


def _session_of(caller: ToolCaller) -> str:
    if caller.session_id is None:
        raise Forbidden("an image build cannot start or follow sessions")
    return caller.session_id


class ChildAsk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    repository: str = Field(min_length=1, max_length=200, description="owner/name (or id) of a registered repository")
    prompt: str = Field(min_length=1, max_length=60000)
    branch: str | None = Field(default=None, max_length=255)
    model: str = Field(default="", max_length=200)
    title: str = Field(default="", max_length=300)


class ChildPrompt(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1, max_length=60000)


class ChildAnswer(BaseModel):
    id: str
    url: str
    title: str
    repository: str
    status: str  # working | done | failed | stopped | waiting
    pr_url: str
    answer: str = ""  # its newest prompt's answer (or why it failed), once it ended


def _answer(services: ServicesDep, row: ChildRow, answer: str = "") -> ChildAnswer:
    return ChildAnswer(
        id=row.id,
        url=services.children.link(row.id),
        title=row.title,
        repository=row.repository,
        status=row.status,
        pr_url=row.pr_url,
        answer=answer,
    )


@router.post("/sessions", response_model=ChildAnswer, status_code=201)
async def spawn_session(body: ChildAsk, caller: Caller, services: ServicesDep) -> ChildAnswer:
    row = await services.children.spawn(
        _session_of(caller),
        repository=body.repository,
        prompt=body.prompt,
        branch=body.branch,
        model=body.model,
        title=body.title,
    )
    return _answer(services, row)


@router.get("/sessions/{child_id}", response_model=ChildAnswer)
async def session_status(child_id: str, caller: Caller, services: ServicesDep) -> ChildAnswer:
    row, answer = await services.children.status(_session_of(caller), child_id)
    return _answer(services, row, answer)


@router.post("/sessions/{child_id}/prompts", response_model=ChildAnswer, status_code=202)
async def send_session_prompt(child_id: str, body: ChildPrompt, caller: Caller, services: ServicesDep) -> ChildAnswer:
    return _answer(services, await services.children.send(_session_of(caller), child_id, body.prompt))


@router.post("/sessions/{child_id}/cancel", response_model=ChildAnswer)
async def cancel_session(child_id: str, caller: Caller, services: ServicesDep) -> ChildAnswer:
    return _answer(services, await services.children.cancel(_session_of(caller), child_id))


class ScreenshotAnswer(BaseModel):
    url: str


@router.post("/screenshots", response_model=ScreenshotAnswer, status_code=201)
async def screenshot(
    request: Request,
    caller: Caller,
    services: ServicesDep,
    caption: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[str, Query(max_length=2000)] = "",
    width: Annotated[int, Query(ge=0, le=100_000)] = 0,
    height: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> ScreenshotAnswer:
    """The body is the PNG itself (bounded by the request limits at ``MAX_MEDIA_BYTES``)."""
    if caller.session_id is None:
        raise Forbidden("an image build cannot keep screenshots")
    shot = Shot(png=await request.body(), caption=caption, page=page, width=width, height=height)
    return ScreenshotAnswer(url=await services.screenshots.record(caller.session_id, shot))

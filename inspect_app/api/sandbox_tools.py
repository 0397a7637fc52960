"""``/api/sandbox/*``: what a sandbox's tools may ask for, with the sandbox's tool token.

- ``git-credentials``: the git credential helper's question (a short-lived installation token for
  the session's own GitHub repository);
- ``pull-request``: the agent's ``create-pull-request`` tool (push the branch, open or update the PR).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from inspect_app.api.deps import ServicesDep
from inspect_app.control.data import sandboxes
from inspect_app.control.data.sandboxes import ToolCaller
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

"""GitHub webhooks: signature check (HMAC-SHA256 over the raw body) and the payload fields we use."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from inspect_app.errors import InvalidInput, Unauthorized


def verify_signature(secret: str, body: bytes, header: str) -> None:
    """Raise Unauthorized unless ``X-Hub-Signature-256`` is the HMAC of ``body`` with ``secret``."""
    if not secret:
        raise Unauthorized("webhooks are not configured (INSPECT_GITHUB_WEBHOOK_SECRET)")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not header or not hmac.compare_digest(expected, header):
        raise Unauthorized("bad webhook signature")


@dataclass(frozen=True)
class PullRequestChange:
    url: str  # the PR's html_url, as stored on the artifact
    state: str  # open | closed | merged
    number: int


def pull_request_change(payload: dict[str, Any]) -> PullRequestChange | None:
    """The PR state a ``pull_request`` event moves to, or None for actions that do not change it."""
    action = payload.get("action")
    pr = payload.get("pull_request")
    if not isinstance(pr, dict) or "html_url" not in pr:
        raise InvalidInput("a pull_request event without pull_request.html_url")
    if action == "closed":
        state = "merged" if pr.get("merged") else "closed"
    elif action in ("opened", "reopened", "ready_for_review"):
        state = "open"
    else:
        return None
    return PullRequestChange(url=str(pr["html_url"]), state=state, number=int(pr.get("number") or 0))


def pushed_branch(payload: dict[str, Any]) -> tuple[str, str] | None:
    """(repository full name, branch) of a ``push`` to a branch."""
    ref = str(payload.get("ref", ""))
    repo = payload.get("repository") or {}
    if not ref.startswith("refs/heads/") or not repo.get("full_name"):
        return None
    return str(repo["full_name"]), ref.removeprefix("refs/heads/")

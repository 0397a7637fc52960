"""Which GitHub deliveries can start an automation, read from their payloads (pure).

An event is named ``<event>.<what happened>``: ``issues.labeled``, ``pull_request.opened``,
``pull_request.synchronize``, ``check_run.failed``, ``workflow_run.failed``. Work on a pull request
belongs on its head branch. Who may cause work is decided here too: an issue or pull request opened
by a bot starts nothing (the App's own included); a pull request's author must be an owner, member
or collaborator of the repository. A pull request from a fork is marked ``fork``: its code is not
ours to trust, so its run gets no secrets and pushes nothing (``Session.fork_ref``). A label can
only be set by someone with triage rights: the label is the approval, whoever wrote the issue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EVENTS = (
    "issues.labeled",
    "pull_request.opened",
    "pull_request.synchronize",
    "check_run.failed",
    "workflow_run.failed",
)
TRUSTED = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})
FAILED = frozenset({"failure", "timed_out"})


@dataclass(frozen=True)
class GitHubEvent:
    kind: str  # one of EVENTS
    full_name: str  # owner/name of the repository
    branch: str | None = None  # where the work belongs: a pull request's head branch (a fork's: its base)
    pull: int | None = None
    fork: bool = False  # the pull request comes from a fork: its run works on refs/pull/N/head, untrusted
    head_sha: str = ""
    label: str = ""
    refused: str = ""  # why this event may not start work ("" when it may)


def read(event: str, payload: dict[str, Any]) -> GitHubEvent | None:
    """The event, if it is one automations know; None for every other delivery."""
    action = payload.get("action")
    full_name = str((payload.get("repository") or {}).get("full_name") or "")
    if not full_name:
        return None
    sender_is_bot = (payload.get("sender") or {}).get("type") == "Bot"
    if event == "issues" and action == "labeled":
        return GitHubEvent("issues.labeled", full_name, label=str((payload.get("label") or {}).get("name") or ""))
    if event == "pull_request" and action in ("opened", "synchronize", "reopened"):
        pull = payload.get("pull_request") or {}
        head, base = pull.get("head") or {}, pull.get("base") or {}
        fork = (head.get("repo") or {}).get("full_name") != (base.get("repo") or {}).get("full_name")
        return GitHubEvent(
            "pull_request.synchronize" if action == "synchronize" else "pull_request.opened",
            full_name,
            branch=str((base if fork else head).get("ref") or "") or None,
            pull=pull.get("number"),
            head_sha=str(head.get("sha") or ""),
            fork=fork,
            refused=_refused_pull(pull, sender_is_bot),
        )
    if event in ("check_run", "workflow_run") and action == "completed":
        run = payload.get(event) or {}
        pulls = run.get("pull_requests") or []
        if run.get("conclusion") not in FAILED or not pulls:
            return None
        pull = pulls[0]
        head, base = pull.get("head") or {}, pull.get("base") or {}
        fork = (head.get("repo") or {}).get("id") != (base.get("repo") or {}).get("id")
        return GitHubEvent(
            f"{event}.failed",
            full_name,
            branch=str((base if fork else head).get("ref") or "") or None,
            pull=pull.get("number"),
            head_sha=str(run.get("head_sha") or head.get("sha") or ""),
            fork=fork,
        )
    return None


def _refused_pull(pull: dict[str, Any], sender_is_bot: bool) -> str:
    author = pull.get("user") or {}
    if sender_is_bot or author.get("type") == "Bot":
        return "opened by a bot"
    association = str(pull.get("author_association") or "")
    if association not in TRUSTED:
        return f"its author is not an owner, member or collaborator ({association or 'unknown'})"
    return ""


@dataclass(frozen=True)
class Mention:
    """Someone @mentioned the App in a pull request's conversation (a comment or a review comment)."""

    full_name: str
    pull: int
    login: str  # who wrote it
    association: str
    request: str  # the comment without the mention


def mention(event: str, payload: dict[str, Any], slug: str) -> Mention | None:
    """The mention of ``@slug`` in a new comment on a pull request, or None (another event, an issue
    that is not a pull request, no mention, or a bot's comment: the App's own answers included)."""
    if not slug or payload.get("action") != "created":
        return None
    comment = payload.get("comment") or {}
    if event == "issue_comment":
        issue = payload.get("issue") or {}
        if not issue.get("pull_request"):
            return None
        number = issue.get("number")
    elif event == "pull_request_review_comment":
        number = (payload.get("pull_request") or {}).get("number")
    else:
        return None
    author = comment.get("user") or {}
    body = str(comment.get("body") or "")
    tag = f"@{slug}".lower()
    if author.get("type") == "Bot" or tag not in body.lower() or not isinstance(number, int):
        return None
    start = body.lower().index(tag)
    request = (body[:start] + body[start + len(tag) :]).strip()
    return Mention(
        full_name=str((payload.get("repository") or {}).get("full_name") or ""),
        pull=number,
        login=str(author.get("login") or ""),
        association=str(comment.get("author_association") or ""),
        request=request,
    )

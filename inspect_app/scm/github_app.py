"""GitHub's REST API through PyGithub: App installation tokens, repositories, branches, pull requests.

The only module that imports PyGithub. Every call here is synchronous (PyGithub is); callers in
async code run them in a thread (``asyncio.to_thread``). PyGithub's errors become ``GitHubError``.

Installation tokens are cached per installation until shortly before they expire (GitHub issues
them for one hour), so a burst of git operations costs one token request.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from github import Auth, Github, GithubException, GithubIntegration

from inspect_app.errors import InspectError

TOKEN_MARGIN = timedelta(minutes=5)  # renew a cached installation token this long before it expires
TIMEOUT_S = 15


_FAILURES = (GithubException, requests.RequestException)  # what PyGithub raises: answers and network


class GitHubError(InspectError):
    status = 502
    code = "github_error"


@dataclass(frozen=True)
class RepoInfo:
    owner: str
    name: str
    default_branch: str
    description: str
    private: bool

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True)
class PullRequestInfo:
    number: int
    url: str
    state: str  # open | closed | merged
    draft: bool


def _translate(action: str, exc: Exception) -> GitHubError:
    if isinstance(exc, GithubException):
        detail = exc.data.get("message", "") if isinstance(exc.data, dict) else str(exc.data)
        return GitHubError(f"GitHub could not {action}: {exc.status} {detail}".strip())
    return GitHubError(f"GitHub could not {action}: {exc.__class__.__name__}")


def _pr_info(pr: object) -> PullRequestInfo:
    merged = bool(getattr(pr, "merged", False))
    state = "merged" if merged else str(getattr(pr, "state", "open"))
    return PullRequestInfo(
        number=int(pr.number),  # type: ignore[attr-defined]
        url=str(pr.html_url),  # type: ignore[attr-defined]
        state=state,
        draft=bool(getattr(pr, "draft", False)),
    )


class GitHubApp:
    """A GitHub App: installation tokens (cached), the repositories it can reach, pull requests."""

    def __init__(self, *, app_id: str, private_key: str, api_url: str) -> None:
        self._api = api_url.rstrip("/")
        self._integration = GithubIntegration(
            auth=Auth.AppAuth(app_id, private_key), base_url=self._api, timeout=TIMEOUT_S, retry=None
        )
        self._lock = threading.Lock()
        self._tokens: dict[tuple[int, bool], tuple[str, datetime]] = {}
        self._installations: dict[str, int] = {}

    # --- installation tokens ---------------------------------------------------------------------
    def installation_id(self, owner: str, name: str) -> int:
        key = f"{owner}/{name}".lower()
        with self._lock:
            if key in self._installations:
                return self._installations[key]
        try:
            installation = self._integration.get_repo_installation(owner, name)
        except _FAILURES as exc:
            raise _translate(f"find the App's installation on {owner}/{name}", exc) from exc
        with self._lock:
            self._installations[key] = installation.id
        return installation.id

    def installation_token(self, owner: str, name: str, *, read_only: bool = False) -> tuple[str, datetime]:
        """A token of the installation that covers this repository, and when it expires. ``read_only``
        asks GitHub for one that may read contents and nothing else (a fork's code holds it: it can
        clone the repository but not push to it)."""
        installation = self.installation_id(owner, name)
        key = (installation, read_only)
        now = datetime.now(UTC)
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[1] - now > TOKEN_MARGIN:
                return cached
        try:
            issued = self._integration.get_access_token(
                installation, permissions={"contents": "read"} if read_only else None
            )
        except _FAILURES as exc:
            raise _translate("issue an installation token", exc) from exc
        expires = issued.expires_at or now + timedelta(hours=1)
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        with self._lock:
            self._tokens[key] = (issued.token, expires)
        return issued.token, expires

    def _as_installation(self, owner: str, name: str) -> Github:
        token, _ = self.installation_token(owner, name)
        return self.client(token)

    def client(self, token: str) -> Github:
        return Github(auth=Auth.Token(token), base_url=self._api, timeout=TIMEOUT_S, retry=None)

    def probe(self) -> None:
        """Whether GitHub answers the App (its installations list): GitHubError with why, if not."""
        try:
            next(iter(self._integration.get_installations()), None)
        except _FAILURES as exc:
            raise _translate("reach GitHub as the App", exc) from exc

    # --- repositories ----------------------------------------------------------------------------
    def repositories(self) -> list[RepoInfo]:
        """Every repository the App's installations can reach."""
        found: list[RepoInfo] = []
        try:
            for installation in self._integration.get_installations():
                # PyGithub authenticates an Installation's own calls as that installation
                found.extend(_repo_info(repo) for repo in installation.get_repos())
        except _FAILURES as exc:
            raise _translate("list the App's repositories", exc) from exc
        return sorted(found, key=lambda r: r.full_name.lower())

    def repository(self, owner: str, name: str) -> RepoInfo:
        try:
            return _repo_info(self._as_installation(owner, name).get_repo(f"{owner}/{name}"))
        except _FAILURES as exc:
            raise _translate(f"read {owner}/{name}", exc) from exc

    def branches(self, owner: str, name: str) -> list[str]:
        try:
            repo = self._as_installation(owner, name).get_repo(f"{owner}/{name}")
            return [b.name for b in repo.get_branches()]
        except _FAILURES as exc:
            raise _translate(f"list the branches of {owner}/{name}", exc) from exc

    def branch_sha(self, owner: str, name: str, branch: str) -> str:
        """The commit at the tip of ``branch`` (a prebuild compares it with its image's)."""
        try:
            return str(self._as_installation(owner, name).get_repo(f"{owner}/{name}").get_branch(branch).commit.sha)
        except _FAILURES as exc:
            raise _translate(f"read branch {branch} of {owner}/{name}", exc) from exc

    # --- pull requests ---------------------------------------------------------------------------
    def open_or_update_pull(
        self,
        token: str,
        *,
        owner: str,
        name: str,
        base: str,
        head: str,
        title: str,
        body: str,
        draft: bool,
        number: int | None = None,
    ) -> PullRequestInfo:
        """Open a pull request with ``token`` (the user's, or an installation's); with ``number``
        (the session's earlier PR) or an open PR from the same branch, update that one instead."""
        try:
            repo = self.client(token).get_repo(f"{owner}/{name}")
            existing = repo.get_pull(number) if number else None
            if existing is None:
                existing = next(iter(repo.get_pulls(state="open", head=f"{owner}:{head}")), None)
            if existing is not None:
                existing.edit(title=title, body=body)  # PyGithub updates the object from the answer
                return _pr_info(existing)
            return _pr_info(repo.create_pull(base=base, head=head, title=title, body=body, draft=draft))
        except _FAILURES as exc:
            raise _translate(f"open a pull request on {owner}/{name}", exc) from exc

    def installation_pull(self, **kwargs: object) -> PullRequestInfo:
        """The same, as the App (when the user has no token or theirs was refused)."""
        token, _ = self.installation_token(str(kwargs["owner"]), str(kwargs["name"]))
        return self.open_or_update_pull(token, **kwargs)  # type: ignore[arg-type]

    # --- conversations (the bot) ---------------------------------------------------------------
    def pull_head(self, owner: str, name: str, number: int) -> PullHead:
        """Where a pull request's work lives: its head branch, commit, and whether that is a fork's."""
        try:
            pull = self._as_installation(owner, name).get_repo(f"{owner}/{name}").get_pull(number)
        except _FAILURES as exc:
            raise _translate(f"read pull request #{number} of {owner}/{name}", exc) from exc
        head_repo = pull.head.repo.full_name if pull.head.repo is not None else ""
        return PullHead(
            branch=str(pull.head.ref),
            sha=str(pull.head.sha),
            title=str(pull.title),
            fork=head_repo.lower() != f"{owner}/{name}".lower(),
            base=str(pull.base.ref),
        )

    def _lazy_repo(self, owner: str, name: str) -> Any:
        """The repository as the installation, fetching nothing until a call needs it: a comment or
        a review is one POST, with no GET of the repository, issue or pull request first."""
        token, _ = self.installation_token(owner, name)
        lazy = Github(auth=Auth.Token(token), base_url=self._api, timeout=TIMEOUT_S, retry=None, lazy=True)
        return lazy.get_repo(f"{owner}/{name}")

    def comment(self, owner: str, name: str, number: int, body: str) -> None:
        """Say something in a pull request's (or an issue's) conversation, as the App."""
        try:
            self._lazy_repo(owner, name).get_issue(number).create_comment(body)
        except _FAILURES as exc:
            raise _translate(f"comment on #{number} of {owner}/{name}", exc) from exc

    def review(self, owner: str, name: str, number: int, body: str) -> None:
        """Post a review (a comment, neither approving nor asking for changes) on a pull request."""
        try:
            self._lazy_repo(owner, name).get_pull(number).create_review(body=body, event="COMMENT")
        except _FAILURES as exc:
            raise _translate(f"review pull request #{number} of {owner}/{name}", exc) from exc


_MENTION = re.compile(r"(?<![A-Za-z0-9._%+-])@(?=[A-Za-z0-9])")  # not an email's @


def inert_mentions(text: str) -> str:
    """Agent-written text made safe to post: an ``@name`` in it would notify that person (or team)
    and an ``@app`` would summon a bot, at the word of whoever steered the agent. A word joiner after
    the ``@`` keeps it readable and mentions nobody."""
    return _MENTION.sub("@\u2060", text)


@dataclass(frozen=True)
class PullHead:
    branch: str
    sha: str
    title: str
    fork: bool
    base: str = ""  # the branch it would merge into


def _repo_info(repo: object) -> RepoInfo:
    owner, name = str(repo.full_name).split("/", 1)  # type: ignore[attr-defined]
    return RepoInfo(
        owner=owner,
        name=name,
        default_branch=str(getattr(repo, "default_branch", "") or "main"),
        description=str(getattr(repo, "description", "") or ""),
        private=bool(getattr(repo, "private", False)),
    )

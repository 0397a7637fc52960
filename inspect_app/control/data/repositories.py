"""Repositories sessions run on. Local git mode: a path or git URL checked with ``git ls-remote``.

Everyone lists them and starts sessions on them; only admins register, describe or prebuild them
(``roles``), since a registered repository gets the instance's secrets in its sandboxes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import col, select

from inspect_app.control.data import roles
from inspect_app.control.text import refuse_nul
from inspect_app.db import session_scope
from inspect_app.errors import Conflict, InvalidInput, NotFound
from inspect_app.models import Repository
from inspect_app.scm import local_git
from inspect_app.scm.github_app import GitHubApp, GitHubError, RepoInfo
from sandbox.providers.egress import entry_problem

_URL_RE = re.compile(r"^(https?|ssh|git|file)://[^\s]+$|^[\w.-]+@[\w.-]+:[^\s]+$")


def normalize(url: str, *, protected: Sequence[Path] = ()) -> str:
    """A repository URL as stored: a local path resolved (``file://`` too). A local repository is
    bound into its sandboxes: one holding any of ``protected`` (the data directory, the checkout)
    would show them to the agent, so it is refused."""
    refuse_nul("url", url)  # Path() and git's argv would fail on it (a 500)
    url = url.strip()
    if not url:
        raise InvalidInput("give a repository path or git URL", code="empty_url")
    if url.startswith(("/", "~", "file://")):
        path = Path(url.removeprefix("file://")).expanduser().resolve()
        if not path.exists():
            raise InvalidInput(f"{path} does not exist", code="not_found")
        for kept in protected:
            kept = kept.resolve()
            if kept == path or kept.is_relative_to(path) or path.is_relative_to(kept):
                raise InvalidInput(f"{path} holds or lies inside Inspect's own files ({kept})", code="protected_path")
        return str(path)
    if not _URL_RE.match(url):
        raise InvalidInput(f"{url!r} is neither an absolute path nor a git URL", code="bad_url")
    return url


def register(
    engine: sa.Engine, url: str, *, actor_id: int, description: str = "", protected: Sequence[Path] = ()
) -> Repository:
    roles.require_admin(engine, actor_id, "register repositories")
    url = normalize(url, protected=protected)
    with session_scope(engine) as db:
        if db.exec(select(Repository).where(Repository.url == url)).first() is not None:
            raise Conflict(f"{url} is already registered", code="exists")
    branch = local_git.default_branch(url)
    name = Path(url.rstrip("/")).name.removesuffix(".git") or url
    return _insert(engine, Repository(url=url, name=name, default_branch=branch, description=description, kind="local"))


def _insert(engine: sa.Engine, repo: Repository) -> Repository:
    with session_scope(engine) as db:
        db.add(repo)
        try:
            db.flush()
        except sa.exc.IntegrityError:
            raise Conflict(f"{repo.name} is already registered", code="exists") from None
        db.refresh(repo)
        return repo


def register_github(
    engine: sa.Engine, app: GitHubApp | None, full_name: str, *, actor_id: int, web_url: str
) -> Repository:
    """A repository the GitHub App can reach (checked with GitHub). Its URL is the clone URL without
    credentials: sandboxes get short-lived ones from the control plane when git asks."""
    roles.require_admin(engine, actor_id, "register repositories")
    owner, _, name = full_name.strip().partition("/")
    if not (_GITHUB_NAME.match(owner) and _GITHUB_NAME.match(name)):
        raise InvalidInput(f"{full_name!r} is not a GitHub repository name (owner/name)", code="bad_name")
    if app is None:
        raise InvalidInput("no GitHub App is configured (INSPECT_GITHUB_APP_ID)", code="no_github_app")
    try:
        info = app.repository(owner, name)
    except GitHubError as exc:
        raise InvalidInput(f"{owner}/{name}: {exc.message}", code="not_reachable") from exc
    owner, name = info.owner, info.name
    url = f"{web_url.rstrip('/')}/{owner}/{name}.git"
    return _insert(
        engine,
        Repository(
            url=url,
            name=f"{owner}/{name}",
            kind="github",
            github_owner=owner,
            github_name=name,
            default_branch=info.default_branch,
            description=info.description,
        ),
    )


_GITHUB_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def github_branches(app: GitHubApp | None, owner: str, name: str) -> list[str]:
    if app is None:
        raise InvalidInput("no GitHub App is configured (INSPECT_GITHUB_APP_ID)", code="no_github_app")
    if not (_GITHUB_NAME.match(owner) and _GITHUB_NAME.match(name)):
        raise InvalidInput(f"{owner}/{name} is not a GitHub repository name", code="bad_name")
    try:
        return sorted(app.branches(owner, name))
    except GitHubError as exc:
        raise NotFound(f"{owner}/{name}: {exc.message}") from exc


def github_choices(engine: sa.Engine, app: GitHubApp | None, *, actor_id: int) -> list[tuple[RepoInfo, bool]]:
    """The repositories the App reaches, each with whether it is registered here already (to register one)."""
    roles.require_admin(engine, actor_id, "register repositories")
    if app is None:
        return []
    registered = {(r.github_owner or "").lower() + "/" + (r.github_name or "").lower() for r in list_all(engine)}
    return [(info, info.full_name.lower() in registered) for info in app.repositories()]


def get(engine: sa.Engine, repository_id: int) -> Repository:
    with session_scope(engine) as db:
        repo = db.get(Repository, repository_id)
        if repo is None:
            raise NotFound(f"no repository {repository_id}")
        return repo


def by_github_name(engine: sa.Engine, full_name: str) -> Repository | None:
    """The registered GitHub repository ``owner/name`` (a webhook names it so), or None."""
    owner, _, name = full_name.partition("/")
    with session_scope(engine) as db:
        return db.exec(
            select(Repository).where(
                Repository.kind == "github", Repository.github_owner == owner, Repository.github_name == name
            )
        ).first()


def list_all(engine: sa.Engine) -> list[Repository]:
    with session_scope(engine) as db:
        return list(db.exec(select(Repository).order_by(col(Repository.name), col(Repository.id))).all())


MAX_KEYWORDS = 20


def describe(
    engine: sa.Engine, repository_id: int, *, actor_id: int, description: str | None, keywords: list[str] | None
) -> Repository:
    """What the Slack bot routes by: a description (for the classifier) and keywords/aliases (rules)."""

    def change(repo: Repository) -> None:  # checked as an admin's change: a refusal says 403 first
        if description is not None:
            repo.description = description.strip()[:5000]
        if keywords is not None:
            cleaned = list(dict.fromkeys(k.strip().lower() for k in keywords if k.strip()))
            if len(cleaned) > MAX_KEYWORDS or any(len(k) > 50 for k in cleaned):
                raise InvalidInput(f"at most {MAX_KEYWORDS} keywords of up to 50 characters", code="bad_keywords")
            repo.keywords = cleaned

    return _change(engine, repository_id, actor_id, change)


def _change(engine: sa.Engine, repository_id: int, actor_id: int, change: Callable[[Repository], None]) -> Repository:
    """Apply ``change`` to a repository, as an admin (only admins change repositories)."""
    roles.require_admin(engine, actor_id, "change repositories")
    with session_scope(engine) as db:
        repo = db.get(Repository, repository_id)
        if repo is None:
            raise NotFound(f"no repository {repository_id}")
        change(repo)
        return repo


MAX_EGRESS_HOSTS = 50


def set_egress_hosts(engine: sa.Engine, repository_id: int, hosts: list[str], *, actor_id: int) -> Repository:
    """Hosts this repository's sandboxes may reach through the egress proxy, beyond the installation's
    list (its own package registry, an API its tests call). Applies to sandboxes started from now on."""
    roles.require_admin(engine, actor_id, "change repositories")  # before saying what is wrong with the input
    cleaned = list(dict.fromkeys(h.strip().lower().rstrip(".") for h in hosts if h.strip()))
    if len(cleaned) > MAX_EGRESS_HOSTS:
        raise InvalidInput(f"at most {MAX_EGRESS_HOSTS} egress hosts", code="bad_egress_hosts")
    for host in cleaned:
        problem = entry_problem(host)
        if problem is not None:
            raise InvalidInput(problem, code="bad_egress_hosts")
    return _change(engine, repository_id, actor_id, lambda repo: setattr(repo, "egress_hosts", cleaned))


def set_child_repositories(engine: sa.Engine, repository_id: int, ids: list[int], *, actor_id: int) -> Repository:
    """Repositories this one's sessions may start child sessions on (besides itself). Admins only: a
    child can print its repository's secrets into the answer the parent's agent reads."""
    roles.require_admin(engine, actor_id, "change repositories")
    wanted = list(dict.fromkeys(i for i in ids if i != repository_id))
    with session_scope(engine) as db:
        missing = [i for i in wanted if db.get(Repository, i) is None]
    if missing:
        raise InvalidInput(f"no repository {missing[0]}", code="bad_child_repositories")
    return _change(engine, repository_id, actor_id, lambda repo: setattr(repo, "child_repositories", wanted))


def set_prebuild(engine: sa.Engine, repository_id: int, enabled: bool, *, actor_id: int) -> Repository:
    return _change(engine, repository_id, actor_id, lambda repo: setattr(repo, "prebuild", enabled))

"""The GitHub App client (PyGithub) against a loopback GitHub: installation tokens, repositories,
pull requests, and errors translated at the boundary."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from inspect_app.scm.github_app import GitHubApp, GitHubError
from tests.fakes.github import APP_ID, USER_TOKEN, FakeGitHub, app_key_pem
from tests.integration.sandbox_harness import git, make_origin


@pytest.fixture(scope="module")
def app_keys() -> tuple[str, str]:
    return app_key_pem()


@pytest.fixture
def github(tmp_path: Path, app_keys: tuple[str, str]) -> Iterator[FakeGitHub]:
    root = tmp_path / "git"
    (root / "acme").mkdir(parents=True)
    shutil.move(make_origin(tmp_path), root / "acme" / "widgets.git")
    git("branch", "release", "main", cwd=root / "acme" / "widgets.git")
    fake = FakeGitHub(app_public_key=app_keys[1], git_root=root)
    yield fake
    fake.close()


def make_app(github: FakeGitHub, private_key: str) -> GitHubApp:
    return GitHubApp(app_id=APP_ID, private_key=private_key, api_url=github.url)


def test_installation_tokens_are_cached_until_near_expiry(github: FakeGitHub, app_keys: tuple[str, str]) -> None:
    app = make_app(github, app_keys[0])
    token, expires = app.installation_token("acme", "widgets")
    again, _ = app.installation_token("acme", "widgets")
    assert token == again and token.startswith("ghs_") and github.installation_token_ok(token)
    assert len(github.calls_to("POST", "/app/installations/4242/access_tokens")) == 1  # one request, cached
    assert len(github.calls_to("GET", "/repos/acme/widgets/installation")) == 1
    assert expires.tzinfo is not None


def test_repositories_and_branches_through_the_installation(github: FakeGitHub, app_keys: tuple[str, str]) -> None:
    app = make_app(github, app_keys[0])
    repos = app.repositories()
    assert [(r.full_name, r.default_branch, r.private) for r in repos] == [("acme/widgets", "main", True)]
    assert repos[0].description == "The widgets service"
    assert sorted(app.branches("acme", "widgets")) == ["main", "release"]


def test_a_pull_request_is_opened_once_then_updated(github: FakeGitHub, app_keys: tuple[str, str]) -> None:
    app = make_app(github, app_keys[0])
    ask = {"owner": "acme", "name": "widgets", "base": "main", "head": "inspect/s1", "body": "Why", "draft": True}
    first = app.open_or_update_pull(USER_TOKEN, title="Add widgets", **ask)
    assert (first.number, first.state, first.draft) == (1, "open", True)
    assert first.url.endswith("/acme/widgets/pull/1")
    created = github.calls_to("POST", "/repos/acme/widgets/pulls")
    assert len(created) == 1 and created[0].authorization == f"token {USER_TOKEN}"  # the user's own token
    second = app.open_or_update_pull(USER_TOKEN, title="Add more widgets", number=first.number, **ask)
    assert second.number == 1 and len(github.pulls) == 1 and github.pulls[0].title == "Add more widgets"
    as_app = app.installation_pull(title="Add widgets again", number=None, **ask)  # finds the open PR by branch
    assert as_app.number == 1 and len(github.pulls) == 1


def test_failures_become_github_errors(github: FakeGitHub, app_keys: tuple[str, str]) -> None:
    with pytest.raises(GitHubError, match="installation on acme/nothing"):
        make_app(github, app_keys[0]).installation_token("acme", "nothing")
    wrong_key, _ = app_key_pem()
    with pytest.raises(GitHubError, match="401"):
        make_app(github, wrong_key).installation_token("acme", "widgets")
    github.refuse_pulls = {"user"}
    with pytest.raises(GitHubError, match="403"):
        make_app(github, app_keys[0]).open_or_update_pull(
            USER_TOKEN, owner="acme", name="widgets", base="main", head="x", title="t", body="", draft=False
        )

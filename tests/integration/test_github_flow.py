"""GitHub end to end: sign in → register a repository → prompt → the agent commits and calls
``create-pull-request`` → the branch reaches the git server authored by the person → the PR is opened
with *their* token → a webhook merges it live. A person without a GitHub token gets the App's PR.
Then the sandbox environment, the event store and the logs are scanned for every token used.

Real server, real sandbox and OpenCode, a scripted model, and a loopback GitHub (OAuth, REST API,
git smart HTTP through ``git http-backend``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from inspect_app.db import create_db_engine
from tests import png
from tests.e2e.conftest import click, new_browser, screenshot, text_of, wait_text
from tests.fakes.github import APP_ID, USER_TOKEN, FakeGitHub, Pull, app_key_pem
from tests.fakes.llm_server import MODEL, FakeLLM, Turn
from tests.fakes.llm_server import ToolCall as LLMToolCall
from tests.integration.sandbox_harness import environments, git, make_origin, require_opencode, sandbox_processes
from tests.integration.stream_client import Client, bash
from tests.servers import RunningServer, start_server

pytestmark = [pytest.mark.timeout(400)]

SHARED: dict[str, str] = {}  # what a later test looks at in the browser
CLIENT_SECRET = "oauth-client-secret-value"
WEBHOOK_SECRET = "webhook-secret-value"
COMMITTER = ("inspect-test[bot]", "31337+inspect-test[bot]@users.noreply.github.com")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeGitHub, FakeLLM, RunningServer, str]]:
    require_opencode()
    tmp = tmp_path_factory.mktemp("github-flow")
    root = tmp / "git"
    (root / "acme").mkdir(parents=True)
    shutil.move(make_origin(tmp), root / "acme" / "widgets.git")
    private_key, public_key = app_key_pem()
    github = FakeGitHub(app_public_key=public_key, git_root=root)
    with FakeLLM() as llm:
        server = start_server(
            tmp,
            INSPECT_GITHUB_CLIENT_ID="inspect-test",
            INSPECT_GITHUB_CLIENT_SECRET=CLIENT_SECRET,
            INSPECT_GITHUB_APP_ID=APP_ID,
            INSPECT_GITHUB_APP_PRIVATE_KEY=private_key,
            INSPECT_GITHUB_WEBHOOK_SECRET=WEBHOOK_SECRET,
            INSPECT_GITHUB_WEB_URL=github.url,
            INSPECT_GITHUB_API_URL=github.url,
            INSPECT_ALLOWED_USERS="ada",
            INSPECT_ADMIN_USERS="ada",  # she registers the repository
            INSPECT_GIT_COMMITTER_NAME=COMMITTER[0],
            INSPECT_GIT_COMMITTER_EMAIL=COMMITTER[1],
            INSPECT_LLM_BASE_URL=llm.base_url,
            INSPECT_LLM_MODEL=MODEL,
            INSPECT_AUTOMATION_TICK_S="1",
        )
        try:
            yield github, llm, server, private_key
        finally:
            server.stop()
            github.close()


def sign_in(server: RunningServer) -> str:
    """The OAuth web flow, as a browser does it; returns the browser session (also an API token)."""
    with httpx.Client(base_url=server.url, follow_redirects=True, timeout=30) as browser:
        browser.get("/api/auth/github/login")
        token = browser.cookies.get("inspect_session")
    assert token, "signing in set no session cookie"
    return token


def api(server: RunningServer, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


PAGE_PORT = 18799
# the agent serves a page in its sandbox (the screenshot tool's subject), and waits until it answers
SERVE_A_PAGE = (
    "mkdir -p /tmp/page && echo '<body style=\"background:rgb(12,150,200)\">Hi</body>' > /tmp/page/index.html && "
    f"(nohup python3 -m http.server {PAGE_PORT} --bind 127.0.0.1 --directory /tmp/page >/dev/null 2>&1 &) && "
    f"for i in $(seq 100); do python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {PAGE_PORT}))' "
    "2>/dev/null && break; sleep 0.1; done"
)


def create_pull_request(title: str, body: str) -> Turn:
    return Turn(tool_calls=[LLMToolCall("create-pull-request", {"title": title, "body": body})])


async def run_prompt(client: Client, http: httpx.AsyncClient, session_id: str, content: str) -> dict:
    accepted = await http.post(f"/api/sessions/{session_id}/prompts", json={"content": content})
    assert accepted.status_code == 202, accepted.text
    message_id = accepted.json()["message_id"]
    return await client.wait(
        lambda m: m["type"] == "execution_complete" and m.get("message_id") == message_id, "completion", 180
    )


def branch_log(github: FakeGitHub, branch: str) -> list[str]:
    return git(
        "log", "--format=%an <%ae>|%cn <%ce>|%s", f"{branch}", cwd=github.repo_path("acme", "widgets")
    ).splitlines()


def everything_written(server: RunningServer, session_ids: list[str]) -> dict[str, str]:
    """The server's log, each sandbox's logs, the live sandbox processes' environments, the events."""
    found = {"server log": server.log_path.read_text(errors="replace")}
    for sid in session_ids:
        for pid, environ in environments(sandbox_processes(sid)).items():
            found[f"/proc/{pid}/environ"] = environ.decode(errors="replace")
    for log in (server.data_dir / "sandboxes").rglob("*.log"):
        found[str(log)] = log.read_text(errors="replace")
    engine = create_db_engine(server.database_url)
    try:
        with engine.connect() as db:
            found["events"] = "\n".join(json.dumps(r[0]) for r in db.execute(sa.text("SELECT data FROM events")))
    finally:
        engine.dispose()
    return found


async def test_signed_in_prompt_to_pull_request_to_merged(
    world: tuple[FakeGitHub, FakeLLM, RunningServer, str],
) -> None:
    github, llm, server, private_key = world
    ada = sign_in(server)
    http = api(server, ada)
    refused = await http.post("/api/repositories", json={"github": "acme/nothing"})
    assert refused.status_code == 422 and "acme/nothing" in refused.json()["error"]["message"]
    listed = (await http.get("/api/github/repositories")).json()
    assert [(r["full_name"], r["registered"]) for r in listed] == [("acme/widgets", False)]
    assert (await http.get("/api/github/repositories/acme/widgets/branches")).json() == {"branches": ["main"]}
    assert (await http.get("/api/github/repositories/acme/nothing/branches")).status_code == 404
    repo = await http.post("/api/repositories", json={"github": "acme/widgets"})
    assert repo.status_code == 201, repo.text
    assert repo.json()["kind"] == "github" and repo.json()["url"] == f"{github.url}/acme/widgets.git"
    session = (await http.post("/api/sessions", json={"repository_id": repo.json()["id"], "title": "Greeting"})).json()
    sid, branch = session["id"], session["branch"]
    SHARED["merged_session"] = sid

    llm.add(
        Turn(tool_calls=[bash("echo 'Hello from Inspect' >> README.md && git commit -qam 'Say hello'")]),
        Turn(tool_calls=[bash(SERVE_A_PAGE)]),
        Turn(tool_calls=[LLMToolCall("screenshot", {"url": f"http://127.0.0.1:{PAGE_PORT}/", "caption": "After"})]),
        create_pull_request("Say hello", "Adds a greeting to the README."),
        Turn(text="Opened the pull request."),
    )
    async with Client(server, sid, ada) as client:
        done = await run_prompt(client, http, sid, "Add a greeting to the README and open a pull request")
        assert done["data"]["success"] is True, done
        artifact = await client.wait(
            lambda m: m["type"] == "artifact" and m["data"]["kind"] == "pr", "the PR artifact", 30
        )
        assert artifact["data"]["state"] == "open"
        assert artifact["data"]["meta"]["opened_as"] == "user"

        # the branch reached the git server, authored by Ada (her GitHub noreply address), committed by the App
        assert branch_log(github, branch)[0] == (
            f"Ada Lovelace <1815+ada@users.noreply.github.com>|{COMMITTER[0]} <{COMMITTER[1]}>|Say hello"
        )
        # the PR was opened with Ada's own token, against the session's base branch
        created = github.calls_to("POST", "/repos/acme/widgets/pulls")
        assert len(created) == 1 and created[0].authorization == f"token {USER_TOKEN}"
        assert created[0].body["head"] == branch and created[0].body["base"] == "main"
        # the screenshot the agent took is embedded in the body, at a URL anyone can fetch
        shot = re.search(r"!\[After\]\((\S+/media/\S+\.png)\)", created[0].body["body"])
        assert shot, created[0].body["body"]
        picture = await asyncio.to_thread(httpx.get, shot.group(1))
        assert png.decode(picture.content).pixel(10, 10) == (12, 150, 200)
        assert artifact["data"]["url"] == f"{github.url}/acme/widgets/pull/1"
        # the sandbox cloned and pushed with installation tokens the control plane handed out
        assert any(path.endswith("git-receive-pack") and user == "x-access-token" for path, user in github.git_requests)

        # a merged-PR webhook turns the artifact into merged, live
        payload = json.dumps(
            {"action": "closed", "pull_request": {"html_url": artifact["data"]["url"], "merged": True, "number": 1}}
        ).encode()
        signature = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), payload, hashlib.sha256).hexdigest()
        headers = {"x-github-event": "pull_request", "x-github-delivery": "d-1", "x-hub-signature-256": signature}
        forged = {**headers, "x-hub-signature-256": "sha256=" + "0" * 64, "x-github-delivery": "d-2"}
        assert (await http.post("/api/github/webhook", content=payload, headers=forged)).status_code == 401
        assert (await http.post("/api/github/webhook", content=payload, headers=headers)).status_code == 200
        merged = await client.wait(
            lambda m: m["type"] == "artifact" and m["data"].get("state") == "merged", "merged artifact", 30
        )
        assert merged["data"]["url"] == artifact["data"]["url"]
    assert (await http.get(f"/api/sessions/{sid}")).json()["artifacts"][-1]["state"] == "merged"

    # someone without a GitHub token (an API-token user): the App opens their pull request
    grace = server.create_user("Grace Hopper", "grace@example.com")
    as_grace = api(server, grace)
    other = (await as_grace.post("/api/sessions", json={"repository_id": repo.json()["id"]})).json()
    llm.add(
        Turn(tool_calls=[bash("echo 'Ship it' >> NOTES.md && git add NOTES.md && git commit -qm 'Notes'")]),
        create_pull_request("Add notes", "Notes for the release."),
        Turn(text="Done."),
    )
    async with Client(server, other["id"], grace) as client:
        done = await run_prompt(client, as_grace, other["id"], "Add release notes and open a PR")
        assert done["data"]["success"] is True
        artifact = await client.wait(lambda m: m["type"] == "artifact", "the App's PR", 30)
    assert artifact["data"]["meta"]["opened_as"] == "app"
    by_app = github.calls_to("POST", "/repos/acme/widgets/pulls")[-1]
    assert by_app.authorization.startswith("token ghs_")  # an installation token, not a person's
    assert branch_log(github, other["branch"])[0].startswith("Grace Hopper <grace@example.com>|")

    # no token the run used appears in a sandbox's environment, the event store or any log
    secrets = [USER_TOKEN, CLIENT_SECRET, WEBHOOK_SECRET, private_key.splitlines()[1], *github.installation_tokens]
    assert len(github.installation_tokens) >= 1
    haystacks = everything_written(server, [sid, other["id"]])
    assert any("/proc/" in name for name in haystacks), "no sandbox process found to inspect"
    leaks = [(name, s[:8]) for name, text in haystacks.items() for s in secrets if s and s in text]
    assert leaks == [], leaks
    await http.aclose()
    await as_grace.aclose()


async def test_without_any_pull_request_the_branch_and_a_compare_link_are_recorded(
    world: tuple[FakeGitHub, FakeLLM, RunningServer, str], tmp_path: Path
) -> None:
    github, llm, server, _ = world
    ada = sign_in(server)
    http = api(server, ada)
    repos = {r["name"]: r["id"] for r in (await http.get("/api/repositories")).json()}
    session = (await http.post("/api/sessions", json={"repository_id": repos["acme/widgets"]})).json()
    github.refuse_pulls = {"user", "installation"}  # neither Ada's token nor the App may open it
    llm.add(
        Turn(tool_calls=[bash("echo 'Refused' >> README.md && git commit -qam 'Try'")]),
        create_pull_request("Try", ""),
        Turn(text="Here is the compare link instead."),
    )
    try:
        async with Client(server, session["id"], ada) as client:
            done = await run_prompt(client, http, session["id"], "Change something and open a PR")
            artifact = await client.wait(lambda m: m["type"] == "artifact", "the branch artifact", 30)
            tool = await client.wait(
                lambda m: (
                    m["type"] == "tool_call"
                    and m["data"].get("tool") == "create-pull-request"
                    and m["data"].get("status") == "completed"
                ),
                "the tool's answer",
                30,
            )
    finally:
        github.refuse_pulls = set()
    assert done["data"]["success"] is True
    compare = f"{github.url}/acme/widgets/compare/main...{session['branch']}?expand=1"
    assert artifact["data"] == {
        "kind": "branch",
        "url": compare,
        "state": "pushed",
        "meta": {"branch": session["branch"], "base": "main", "commit": artifact["data"]["meta"]["commit"]},
    }
    assert compare in tool["data"]["output"]  # the agent is told where the person can open it
    assert branch_log(github, session["branch"])[0].endswith("|Try")

    # a local repository (a path): the branch is pushed to it, no pull request is involved
    origin = make_origin(tmp_path)
    local = (await http.post("/api/repositories", json={"url": str(origin)})).json()
    session = (await http.post("/api/sessions", json={"repository_id": local["id"]})).json()
    llm.add(
        Turn(tool_calls=[bash("echo 'Local' >> README.md && git commit -qam 'Local change'")]),
        create_pull_request("Local change", ""),
        Turn(text="Pushed."),
    )
    async with Client(server, session["id"], ada) as client:
        await run_prompt(client, http, session["id"], "Change it locally")
        artifact = await client.wait(lambda m: m["type"] == "artifact", "the local branch artifact", 30)
    assert artifact["data"]["kind"] == "branch" and artifact["data"]["url"] == ""
    assert git("log", "-1", "--format=%s", session["branch"], cwd=origin).strip() == "Local change"
    await http.aclose()


def test_in_the_browser_github_repositories_and_the_merged_pull_request(
    world: tuple[FakeGitHub, FakeLLM, RunningServer, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    _, _, server, _ = world
    if "merged_session" not in SHARED:
        pytest.skip("needs the merged pull request of the first test")
    browser = new_browser(tmp_path_factory)
    try:
        browser.get(f"{server.url}/api/auth/github/login")  # through the fake GitHub's consent, back signed in
        WebDriverWait(browser, 60).until(lambda d: "Ada Lovelace" in text_of(d, "sidebar"))
        browser.get(f"{server.url}/settings")
        click(browser, "github-load", 60)
        wait_text(browser, "github-repos", "acme/widgets")
        assert "added" in text_of(browser, "github-repos")  # registered by the first test
        browser.get(f"{server.url}/sessions/{SHARED['merged_session']}")
        wait_text(browser, "pr-link", "merged")
        assert browser.find_element(By.ID, "pr-link").get_attribute("href").endswith("/acme/widgets/pull/1")
        screenshot(browser, "session-pr-merged")
    finally:
        browser.quit()


async def test_a_private_repository_is_prebuilt_with_brokered_credentials(
    world: tuple[FakeGitHub, FakeLLM, RunningServer, str],
) -> None:
    """The image build clones through git's credential helper: its tool token, traded at the real
    control plane for an installation token (the loopback GitHub answers 401 to anything else)."""
    github, _, server, _ = world
    http = api(server, sign_in(server))
    repos = {r["name"]: r["id"] for r in (await http.get("/api/repositories")).json()}
    repo_id = (
        repos.get("acme/widgets")
        or (await http.post("/api/repositories", json={"github": "acme/widgets"})).json()["id"]
    )
    asked = len(github.git_requests)
    assert (await http.post(f"/api/repositories/{repo_id}/rebuild")).status_code == 202
    image: dict = {}
    for _ in range(300):
        image = (await http.get(f"/api/repositories/{repo_id}/image")).json()["image"] or {}
        if image.get("status") in ("ready", "failed"):
            break
        await asyncio.sleep(0.5)
    await http.aclose()
    assert image.get("status") == "ready", image
    assert any(user == "x-access-token" for _, user in github.git_requests[asked:])  # cloned as the App
    engine = create_db_engine(server.database_url)
    try:
        with engine.connect() as db:
            spent = db.execute(sa.text("SELECT tool_token_hash FROM images WHERE status = 'ready'")).scalars().all()
    finally:
        engine.dispose()
    assert spent == [None]  # the build's token is spent with the build


async def test_a_failed_check_on_a_pull_request_is_fixed_on_its_branch_by_an_automation(
    world: tuple[FakeGitHub, FakeLLM, RunningServer, str],
) -> None:
    """The automation acts for Ada: the fix is committed as her and pushed onto the pull request's
    own branch (a fast-forward), and no other pull request is opened."""
    github, llm, server, _ = world
    http, widgets = await ada_with_widgets(server)
    bare = github.repo_path("acme", "widgets")
    git("branch", "-f", "faster-login", "main", cwd=bare)
    head = git("rev-parse", "faster-login", cwd=bare).strip()
    github.pulls.append(
        Pull(len(github.pulls) + 1, "acme", "widgets", head="faster-login", base="main", title="Speed up login",
             body="Mine.", draft=False, head_sha=head)
    )  # fmt: skip
    number, pulls_before = github.pulls[-1].number, len(github.pulls)
    automation = await http.post(
        "/api/automations",
        json={
            "name": "Fix failing CI",
            "trigger": "github",
            "events": ["check_run.failed"],
            "repository_ids": [widgets],
            "template": "The check {{ payload.check_run.name }} failed. Fix it.",
        },
    )
    assert automation.status_code == 201, automation.text
    llm.add(
        Turn(
            tool_calls=[bash("echo 'fixed' > login.txt && git add login.txt && git commit -qm 'Fix the login check'")]
        ),
        create_pull_request("Fix the login check", "ignored: the pull request is its author's"),
        Turn(text="Fixed the check."),
    )
    same_repo = {"id": 1}
    payload = json.dumps(
        {
            "action": "completed",
            "repository": {"full_name": "acme/widgets"},
            "sender": {"login": "github-actions[bot]", "type": "Bot"},
            "check_run": {
                "name": "login-test",
                "conclusion": "failure",
                "head_sha": head,
                "pull_requests": [
                    {"number": number, "head": {"ref": "faster-login", "sha": head, "repo": same_repo},
                     "base": {"ref": "main", "repo": same_repo}}
                ],
            },
        }
    ).encode()  # fmt: skip
    assert (await deliver(http, "check_run", payload, "check-1")).status_code == 200
    run = await newest_run_ended(http, automation.json()["id"])
    assert run["status"] == "succeeded", run
    assert run["pr_url"] == f"{github.url}/acme/widgets/pull/{number}"  # the history links the pull request
    # the fix is on the pull request's branch, right after its old head, authored by Ada
    log = branch_log(github, "faster-login")
    assert (
        log[0]
        == f"Ada Lovelace <1815+ada@users.noreply.github.com>|{COMMITTER[0]} <{COMMITTER[1]}>|Fix the login check"
    )
    assert git("rev-parse", "faster-login~1", cwd=bare).strip() == head
    assert len(github.pulls) == pulls_before and github.pulls[-1].title == "Speed up login"  # nothing opened or edited
    session = (await http.get(f"/api/sessions/{run['session_id']}")).json()
    assert session["session"]["started_by"] == "automation Fix failing CI (run #1)"
    assert session["artifacts"][-1]["url"] == f"{github.url}/acme/widgets/pull/{number}"

    # the check fails on the fix Inspect pushed: that starts nothing (no fix -> push -> fail -> fix loop)
    pushed = git("rev-parse", "faster-login", cwd=bare).strip()
    again = payload.replace(head.encode(), pushed.encode())
    assert (await deliver(http, "check_run", again, "check-2")).status_code == 200
    run = await newest_run_ended(http, automation.json()["id"])
    assert (run["status"], run["session_id"]) == ("skipped", None)
    assert run["reason"] == f"it is about {pushed[:10]}, a commit Inspect pushed (its own work starts nothing)"
    await http.aclose()


async def test_a_forks_pull_request_runs_its_code_with_no_secrets_and_pushes_nothing(
    world: tuple[FakeGitHub, FakeLLM, RunningServer, str], tmp_path: Path
) -> None:
    """A collaborator's pull request from a fork starts the automation's run on the fork's code
    (``refs/pull/N/head``, which no branch holds). The agent, steered by that code, looks for the
    repository's secret and tries to push and to open a pull request: the secret is not there, git's
    token can only read, and the tool refuses."""
    github, llm, server, _ = world
    http, repo_id = await ada_with_widgets(server)
    secret = "s3cret-deploy-token-for-forks"
    put = await http.put(f"/api/repositories/{repo_id}/secrets/DEPLOY_TOKEN", json={"value": secret})
    assert put.status_code == 204, put.text
    bare = github.repo_path("acme", "widgets")
    work = tmp_path / "fork"
    git("clone", "-q", str(bare), str(work), cwd=tmp_path)
    (work / "fork.txt").write_text("written-in-the-fork\n")
    git("add", "fork.txt", cwd=work)
    git("-c", "user.name=Mallory", "-c", "user.email=m@example.com", "commit", "-qm", "From the fork", cwd=work)
    number = len(github.pulls) + 1
    git("push", "-q", str(bare), f"HEAD:refs/pull/{number}/head", cwd=work)  # what GitHub keeps for it
    head = git("rev-parse", "HEAD", cwd=work).strip()
    github.pulls.append(
        Pull(number, "acme", "widgets", head="patch-1", base="main", title="Faster start", body="",
             draft=False, head_sha=head, head_repo="mallory/widgets")
    )  # fmt: skip
    heads_before = git("for-each-ref", "--format=%(refname)", "refs/heads", cwd=bare)
    automation = await http.post(
        "/api/automations",
        json={
            "name": "Review pull requests",
            "trigger": "github",
            "events": ["pull_request.opened"],
            "repository_ids": [repo_id],
            "template": "Review “{{ payload.pull_request.title }}”.",
        },
    )
    assert automation.status_code == 201, automation.text
    llm.clear()
    llm.add(
        Turn(
            tool_calls=[
                bash(
                    'cat fork.txt; git log -1 --format=%s; echo "token=${DEPLOY_TOKEN:-none}"; '
                    "git push origin HEAD:refs/heads/stolen 2>&1 | tail -n 2"
                )
            ]
        ),
        create_pull_request("Stolen", "from a fork"),
        Turn(text="Reviewed."),
    )
    base = {"full_name": "acme/widgets", "id": 1}
    pull = {
        "number": number,
        "html_url": f"{github.url}/acme/widgets/pull/{number}",
        "title": "Faster start",
        "author_association": "COLLABORATOR",
        "user": {"login": "mallory", "type": "User"},
        "head": {"ref": "patch-1", "sha": head, "repo": {"full_name": "mallory/widgets", "id": 2}},
        "base": {"ref": "main", "repo": base},
    }
    sender = {"login": "mallory", "type": "User"}
    body = {"action": "opened", "repository": base, "sender": sender, "pull_request": pull}
    assert (await deliver(http, "pull_request", json.dumps(body).encode(), "fork-1")).status_code == 200
    run = await newest_run_ended(http, automation.json()["id"])
    assert run["status"] == "succeeded", run
    session = (await http.get(f"/api/sessions/{run['session_id']}")).json()
    assert session["session"]["fork_ref"] == f"refs/pull/{number}/head"
    answered = json.dumps(llm.agent_requests()[-1])  # what the tools answered, as the model saw it
    assert "written-in-the-fork" in answered and "From the fork" in answered  # the fork's code, checked out
    assert "token=none" in answered and secret not in answered  # no secret in its environment
    assert "403" in answered  # git's token may read, not write
    assert "from a fork: nothing it makes is pushed" in answered  # the tool refused
    assert git("for-each-ref", "--format=%(refname)", "refs/heads", cwd=bare) == heads_before  # nothing pushed
    assert session["artifacts"] == []
    assert secret not in json.dumps(everything_written(server, [run["session_id"]]))
    await http.aclose()


async def ada_with_widgets(server: RunningServer) -> tuple[httpx.AsyncClient, int]:
    """Ada signed in (her API client) and acme/widgets registered (the first test that needs it does)."""
    http = api(server, sign_in(server))
    repos = {r["name"]: r["id"] for r in (await http.get("/api/repositories")).json()}
    if "acme/widgets" not in repos:
        repos["acme/widgets"] = (await http.post("/api/repositories", json={"github": "acme/widgets"})).json()["id"]
    return http, repos["acme/widgets"]


async def deliver(http: httpx.AsyncClient, event: str, payload: bytes, delivery: str) -> httpx.Response:
    """A delivery to the App's webhook, signed as GitHub signs it."""
    signature = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), payload, hashlib.sha256).hexdigest()
    headers = {"x-github-event": event, "x-github-delivery": delivery, "x-hub-signature-256": signature}
    return await http.post("/api/github/webhook", content=payload, headers=headers)


async def newest_run_ended(http: httpx.AsyncClient, automation_id: int) -> dict:
    """The automation's newest run, once it has ended."""
    deadline = asyncio.get_running_loop().time() + 240
    while True:
        runs = (await http.get(f"/api/automations/{automation_id}/runs")).json()["runs"]
        if runs and runs[0]["status"] not in ("queued", "running"):
            return runs[0]
        assert asyncio.get_running_loop().time() < deadline, "the run never ended"
        await asyncio.sleep(1)

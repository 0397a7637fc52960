"""Outside services down when the app starts: it starts and serves, /api/health says which are
degraded and why, and each recovers by itself once its service answers."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes.github import APP_ID, FakeGitHub, app_key_pem
from tests.fakes.llm_server import MODEL, FakeLLM
from tests.fakes.slack import FakeSlack
from tests.integration.sandbox_harness import until
from tests.servers import free_port, start_server

pytestmark = pytest.mark.timeout(300)


async def test_the_app_starts_with_slack_github_and_the_model_unreachable_and_recovers(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    slack_port, github_port, model_port = free_port(), free_port(), free_port()
    private_key, public_key = app_key_pem()
    server = start_server(
        tmp_path_factory.mktemp("outage"),
        INSPECT_SLACK_BOT_TOKEN="xoxb-test",
        INSPECT_SLACK_SIGNING_SECRET="signing-secret",
        INSPECT_SLACK_API_URL=f"http://127.0.0.1:{slack_port}/api/",
        INSPECT_GITHUB_APP_ID=APP_ID,
        INSPECT_GITHUB_APP_PRIVATE_KEY=private_key,
        INSPECT_GITHUB_API_URL=f"http://127.0.0.1:{github_port}",
        INSPECT_LLM_BASE_URL=f"http://127.0.0.1:{model_port}/v1",
        INSPECT_LLM_MODEL=MODEL,
        INSPECT_INTEGRATION_CHECK_S="1",
    )
    started: list = []

    def bring_up() -> None:
        started[:] = [
            FakeSlack(port=slack_port),
            FakeGitHub(app_public_key=public_key, port=github_port),
            FakeLLM(port=model_port),
        ]

    def take_down() -> None:
        for fake in started:
            fake.close()
        started.clear()

    def integrations() -> dict[str, dict[str, str]]:
        return httpx.get(f"{server.url}/api/health", timeout=10).json()["integrations"]

    def all_in(state: str) -> dict[str, dict[str, str]] | None:
        found = integrations()
        return (
            found
            if {"slack", "github", "model"} <= found.keys()
            and all(found[name]["status"] == state for name in ("slack", "github", "model"))
            else None
        )

    try:
        down = await until(lambda: all_in("degraded"), "every integration degraded", 60, every=0.5)
        for name, port in (("slack", slack_port), ("github", github_port), ("model", model_port)):
            assert down[name]["reason"], (name, down[name])  # says why (e.g. the refused connection)
            assert str(port) in down[name]["reason"] or "connect" in down[name]["reason"].lower(), down[name]
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {server.token}"}) as client:
            assert (await client.get(f"{server.url}/api/sessions")).is_success  # it serves meanwhile
            health = await client.get(f"{server.url}/api/health")
            assert health.status_code == 200 and health.json()["status"] == "ok"  # outside services aside
        async with httpx.AsyncClient() as anyone:  # like /api/health: for load balancers, no credentials
            lag = (await anyone.get(f"{server.url}/api/health/loop", params={"seconds": 30})).json()
            assert lag["samples"] > 0 and 0 <= lag["p50_ms"] <= lag["p99_ms"] <= lag["max_ms"]
            for bad in ("-1", "601", "lots"):  # refused with the reason, not a sweep of all history
                refused = await anyone.get(f"{server.url}/api/health/loop", params={"seconds": bad})
                assert refused.status_code == 422 and "seconds" in refused.text, (bad, refused.text)

        bring_up()
        await until(lambda: all_in("ok"), "every integration to recover without a restart", 120, every=1)
        assert any(method == "auth.test" for method, _ in started[0].calls)

        # and later: each going away shows (checked every INSPECT_INTEGRATION_CHECK_S), then comes back
        take_down()
        await until(lambda: all_in("degraded"), "every integration degraded again", 60, every=0.5)
        bring_up()
        await until(lambda: all_in("ok"), "every integration to recover again", 120, every=1)
    finally:
        server.stop()
        take_down()

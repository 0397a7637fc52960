"""Slack downloads a message's images as it is posted and refuses the whole message when one cannot
be fetched: the answer then goes without its screenshots, never not at all (fake Slack does fetch)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack.bot import SlackBot
from bots.slack.classifier import Classifier
from tests.fakes.slack import FakeSlack
from tests.servers import free_port

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def media() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def image(url: str) -> dict[str, Any]:
    return {"type": "image", "image_url": url, "alt_text": "After"}


async def test_an_answer_whose_screenshot_slack_cannot_fetch_goes_without_it(media: str) -> None:
    slack = FakeSlack()
    try:
        bot = SlackBot(
            client=AsyncWebClient(token="xoxb-test", base_url=slack.api_url),
            plane=None,  # type: ignore[arg-type]  # posting needs no control plane
            classifier=Classifier(base_url="", api_key="", model=""),
            public_url="http://inspect.example",
        )
        answer = {"type": "section", "text": {"type": "mrkdwn", "text": "Done"}}
        assert await bot._post("C1", "1.0", "Done", [answer, image(f"{media}/m.png")])
        unreachable = f"http://127.0.0.1:{free_port()}/m.png"
        assert await bot._post("C1", "1.0", "Done again", [answer, image(unreachable)])
        first, second = slack.messages
        assert [b["type"] for b in first["blocks"]] == ["section", "image"]
        assert [b["type"] for b in second["blocks"]] == ["section"] and second["text"] == "Done again"
        refused = [args for method, args in slack.calls if method == "chat.postMessage"]
        assert len(refused) == 3  # the refused post, then the same answer without its image
    finally:
        slack.close()

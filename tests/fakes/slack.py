"""A loopback Slack: the Web API methods the bot calls, and a Socket Mode WebSocket server.

Web API (``INSPECT_SLACK_API_URL`` = ``fake.api_url``): auth.test, users.info, chat.postMessage,
chat.update, chat.getPermalink, conversations.info, conversations.replies, apps.connections.open.
Bodies arrive as JSON or form data, as slack_sdk sends them; every call is recorded. Messages the
bot posts (and the people's messages a test registers with ``say``) make up each thread.

Socket Mode: ``apps.connections.open`` hands out ``ws://127.0.0.1:<port>/link``; ``push`` sends an
envelope to the connected client and ``wait_ack`` waits for its acknowledgement.

Also signs Events API requests the way Slack does (``signed_headers``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import websockets
from websockets.asyncio.server import ServerConnection, serve

BOT_USER = "UBOT"


def signed_headers(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + stamp.encode() + b":" + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"x-slack-request-timestamp": stamp, "x-slack-signature": signature}


class FakeSlack:
    def __init__(
        self,
        users: dict[str, dict[str, str]] | None = None,
        channels: dict[str, str] | None = None,
        *,
        port: int = 0,  # a fixed one: Slack "coming back" where the server has been trying
    ) -> None:
        self.users = users or {}
        self.channels = channels or {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.messages: list[dict[str, Any]] = []  # everything in every thread, in order
        self._ts = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self._ws_server: Any = None
        self._socket: ServerConnection | None = None
        self.acks: list[str] = []
        self.ws_port = 0

    # --- Web API ---------------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/"

    def say(self, channel: str, ts: str, text: str, user: str, thread_ts: str | None = None) -> None:
        """A person's message, so conversations.replies can return it."""
        with self._lock:
            self.messages.append(
                {"channel": channel, "ts": ts, "thread_ts": thread_ts or ts, "text": text, "user": user}
            )

    def posted(self, method: str = "chat.postMessage") -> list[dict[str, Any]]:
        with self._lock:
            return [args for name, args in self.calls if name == method]

    def call(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.calls.append((method, args))
            if method == "auth.test":
                return {"ok": True, "user_id": BOT_USER, "team_id": "T1", "bot_id": "B1"}
            if method == "users.info":
                user = self.users.get(str(args.get("user")))
                if user is None:
                    return {"ok": False, "error": "user_not_found"}
                profile = {
                    "email": user.get("email", ""),
                    "display_name": user.get("name", ""),
                    "real_name": user.get("name", ""),
                }
                return {"ok": True, "user": {"id": args["user"], "name": user.get("name", ""), "profile": profile}}
            if method == "chat.postMessage":
                ts = f"{900 + next(self._ts)}.000100"
                blocks = args.get("blocks")
                if not _images_load(json.loads(blocks) if isinstance(blocks, str) else blocks or []):
                    # as Slack: it downloads each image as the message is posted, and refuses it all
                    return {"ok": False, "error": "invalid_blocks", "errors": ["downloading image failed"]}
                self.messages.append(
                    {
                        "channel": args.get("channel"),
                        "ts": ts,
                        "thread_ts": args.get("thread_ts") or ts,
                        "text": args.get("text", ""),
                        "blocks": json.loads(blocks) if isinstance(blocks, str) else blocks,
                        "user": BOT_USER,
                        "bot_id": "B1",
                    }
                )
                return {"ok": True, "channel": args.get("channel"), "ts": ts}
            if method == "chat.update":
                return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts")}
            if method == "chat.getPermalink":
                return {
                    "ok": True,
                    "permalink": f"https://slack.example/archives/{args.get('channel')}/p{args.get('message_ts')}",
                }
            if method == "conversations.info":
                name = self.channels.get(str(args.get("channel")), "general")
                return {"ok": True, "channel": {"id": args.get("channel"), "name": name}}
            if method == "conversations.replies":
                thread = [
                    m for m in self.messages if m["channel"] == args.get("channel") and m["thread_ts"] == args.get("ts")
                ]
                return {"ok": True, "messages": thread[: int(args.get("limit") or 100)]}
            if method == "apps.connections.open":
                return {"ok": True, "url": f"ws://127.0.0.1:{self.ws_port}/link"}
            return {"ok": False, "error": "unknown_method"}

    # --- Socket Mode (its own thread and event loop, so it lives as long as the fake) ---------------
    def start_socket_mode(self) -> None:
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)

            async def main() -> None:
                self._ws_server = await serve(self._connected, "127.0.0.1", 0)
                self.ws_port = self._ws_server.sockets[0].getsockname()[1]
                ready.set()
                await self._ws_server.wait_closed()

            self._loop.run_until_complete(main())

        self._loop = asyncio.new_event_loop()
        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)

    async def _connected(self, ws: ServerConnection) -> None:
        self._socket = ws
        await ws.send(json.dumps({"type": "hello", "num_connections": 1}))
        try:
            async for raw in ws:
                message = json.loads(raw)
                if "envelope_id" in message:
                    self.acks.append(message["envelope_id"])
        except websockets.ConnectionClosed:
            pass

    async def wait_connected(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self._socket is None:
            if time.monotonic() > deadline:
                raise TimeoutError("no Socket Mode client connected")
            await asyncio.sleep(0.05)

    async def push(self, envelope_id: str, kind: str, payload: dict[str, Any]) -> None:
        assert self._socket is not None
        frame = json.dumps(
            {"envelope_id": envelope_id, "type": kind, "payload": payload, "accepts_response_payload": False}
        )
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._socket.send(frame), self._loop))

    def close(self) -> None:
        if self._ws_server is not None:
            self._loop.call_soon_threadsafe(self._ws_server.close)
        self._server.shutdown()
        self._server.server_close()


def _images_load(blocks: list[dict[str, Any]]) -> bool:
    """Whether every image block's URL answers with an image."""
    for block in blocks:
        if block.get("type") != "image":
            continue
        try:
            answer = httpx.get(str(block.get("image_url")), timeout=5)
        except httpx.HTTPError:
            return False
        if answer.status_code != 200 or not answer.headers.get("content-type", "").startswith("image/"):
            return False
    return True


def _handler(slack: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            return

        def _answer(self, method: str, args: dict[str, Any]) -> None:
            body = json.dumps(slack.call(method, args)).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            self._answer(url.path.rsplit("/", 1)[-1], {k: v[0] for k, v in parse_qs(url.query).items()})

        def do_POST(self) -> None:
            url = urlparse(self.path)
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.headers.get("content-type", "").startswith("application/json"):
                args = json.loads(raw or b"{}")
            else:
                args = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            args.update({k: v[0] for k, v in parse_qs(url.query).items()})
            self._answer(url.path.rsplit("/", 1)[-1], args)

    return Handler

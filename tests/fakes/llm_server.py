"""A scripted OpenAI-compatible chat-completions server on loopback.

OpenCode talks to it through ``@ai-sdk/openai-compatible`` (``INSPECT_LLM_BASE_URL``). A script is
data, a list of turns, so a test reads like the conversation it expects::

    llm = FakeLLM([
        Turn(tool_calls=[ToolCall("write", {"filePath": "hello.txt", "content": "hi"})]),
        Turn(text="Done: wrote hello.txt"),
    ])

Each chat request the agent makes takes the next turn; requests that only ask for a session title
(OpenCode's title generator) are answered with ``title`` and take no turn. A turn with ``when`` is
taken only by a conversation whose first prompt contains that text: several sessions at once
(a parent and its children) each follow their own script. When the script runs out,
the server answers ``fallback`` text. Every request body is kept in ``requests`` for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "scripted"


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Turn:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    chunk_delay_s: float = 0.0  # pause between streamed text chunks (a slow model)
    chunk_size: int = 8
    when: str = ""  # only for a conversation whose first user message contains this


class FakeLLM:
    """Starts on a free loopback port; use as a context manager or call ``close()``."""

    def __init__(
        self,
        turns: list[Turn] | None = None,
        *,
        title: str = "Scripted session",
        fallback: str = "OK",
        port: int = 0,  # a fixed one: the model "coming back" where the server has been trying
    ) -> None:
        self._turns = list(turns or [])
        self._lock = threading.Lock()
        self.title = title
        self.fallback = fallback
        self.requests: list[dict[str, Any]] = []
        self.asked_at: list[float] = []  # time.monotonic() of each request, beside ``requests``
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-llm", daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def add(self, *turns: Turn) -> None:
        with self._lock:
            self._turns.extend(turns)

    def clear(self) -> None:
        """Forget the scripted turns not taken (a test that cannot know how many it used)."""
        with self._lock:
            self._turns.clear()

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._turns)

    def agent_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if not _is_title_request(r)]

    def agent_asked_at(self) -> list[float]:
        """When each of the agent's requests arrived (``time.monotonic()``; title requests aside)."""
        return [t for r, t in zip(self.requests, self.asked_at, strict=True) if not _is_title_request(r)]

    def next_turn(self, body: dict[str, Any]) -> Turn:
        with self._lock:
            self.requests.append(body)
            self.asked_at.append(time.monotonic())
            if _is_title_request(body):
                return Turn(text=self.title)
            first = _first_prompt(body)
            for i, turn in enumerate(self._turns):
                if not turn.when or turn.when in first:
                    return self._turns.pop(i)
            return Turn(text=self.fallback)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeLLM:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _first_prompt(body: dict[str, Any]) -> str:
    """The conversation's first user message, as text (its content may be a list of parts)."""
    for message in body.get("messages") or []:
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def _is_title_request(body: dict[str, Any]) -> bool:
    messages = body.get("messages") or []
    system = " ".join(str(m.get("content", "")) for m in messages if m.get("role") == "system")
    return "title generator" in system.lower() or ("title" in system.lower() and not body.get("tools"))


def _chunk(delta: dict[str, Any] | None, finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    payload: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": MODEL,
        "choices": choices,
    }
    if usage is not None:
        payload["usage"] = usage
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _handler_for(llm: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: object) -> None:  # keep test output quiet
            return

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._json({"object": "list", "data": [{"id": MODEL, "object": "model"}]})
            else:
                self._json({"error": {"message": "not found"}}, status=404)

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._json({"error": {"message": "not found"}}, status=404)
                return
            turn = llm.next_turn(body)
            if body.get("stream"):
                self._stream(turn)
            else:
                self._json(_completion(turn))

        def _json(self, payload: dict[str, Any], status: int = 200) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, turn: Turn) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("connection", "close")
            self.end_headers()
            try:
                self.wfile.write(_chunk({"role": "assistant", "content": ""}))
                text = turn.text
                for start in range(0, len(text), turn.chunk_size):
                    if turn.chunk_delay_s:
                        time.sleep(turn.chunk_delay_s)
                    self.wfile.write(_chunk({"content": text[start : start + turn.chunk_size]}))
                    self.wfile.flush()
                for index, call in enumerate(turn.tool_calls):
                    self.wfile.write(
                        _chunk(
                            {
                                "tool_calls": [
                                    {
                                        "index": index,
                                        "id": f"call_{index}_{int(time.time() * 1000)}",
                                        "type": "function",
                                        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                                    }
                                ]
                            }
                        )
                    )
                finish = "tool_calls" if turn.tool_calls else "stop"
                usage = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
                self.wfile.write(_chunk({}, finish=finish))
                self.wfile.write(_chunk(None, usage=usage))  # usage arrives in a final, choice-less chunk
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return  # the agent aborted mid-stream
            self.close_connection = True

    return Handler


def _completion(turn: Turn) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": turn.text}
    if turn.tool_calls:
        message["tool_calls"] = [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for i, c in enumerate(turn.tool_calls)
        ]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if turn.tool_calls else "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }

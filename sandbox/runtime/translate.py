"""Translate OpenCode's event stream into bridge protocol messages, for one prompt at a time.

Pure: no I/O, the clock is passed in. Invariants:
- only events of our agent session and of the assistant messages answering this prompt count
  (``parentID`` is this prompt's user message), so late events of an aborted prompt are ignored;
- streamed text is coalesced: a ``token`` is emitted when the buffer reaches ``flush_chars`` or is
  older than ``flush_after_s`` (see ``due``), and always before any other message, so order holds;
- a text part's final ``message.part.updated`` adds only what the deltas did not already carry;
- a tool call is emitted once per status it passes through;
- the prompt is complete at the first idle after the session was seen busy; ``complete`` is then set
  and the final messages include exactly one ``execution_complete``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from sandbox.protocol import ExecutionComplete, SessionTitle, StepFinish, Token, ToolCall

MAX_TOOL_OUTPUT = 16_000
DEFAULT_TITLE_PREFIX = "New session - "


@dataclass
class PromptTranslator:
    message_id: str
    agent_session_id: str
    user_message_id: str = ""  # OpenCode's id of this prompt's user message; "" accepts any answer
    flush_chars: int = 64
    flush_after_s: float = 0.05
    complete: bool = False
    error: str | None = None
    stop_requested: bool = False
    _busy_seen: bool = False
    _assistant_ids: set[str] = field(default_factory=set)
    _emitted: dict[str, int] = field(default_factory=dict)  # part id -> chars already sent
    _tool_status: dict[str, str] = field(default_factory=dict)
    _buffer: list[str] = field(default_factory=list)
    _buffer_since: float | None = None
    _title: str = ""

    # --- text coalescing -----------------------------------------------------------------------
    def due(self, now: float) -> bool:
        return self._buffer_since is not None and now - self._buffer_since >= self.flush_after_s

    def flush(self) -> list[BaseModel]:
        if not self._buffer:
            return []
        text = "".join(self._buffer)
        self._buffer.clear()
        self._buffer_since = None
        return [Token(message_id=self.message_id, text=text)]

    def _add_text(self, text: str, now: float) -> list[BaseModel]:
        if not text:
            return []
        if self._buffer_since is None:
            self._buffer_since = now
        self._buffer.append(text)
        if sum(len(t) for t in self._buffer) >= self.flush_chars:
            return self.flush()
        return []

    # --- events --------------------------------------------------------------------------------
    def feed(self, event: dict[str, Any], now: float) -> list[BaseModel]:
        """Messages caused by one OpenCode event (possibly none)."""
        if self.complete:
            return []
        kind = event.get("type", "")
        props = event.get("properties") or {}
        if props.get("sessionID") not in (None, self.agent_session_id):
            return []
        handler = _HANDLERS.get(kind)
        return handler(self, props, now) if handler else []

    def _on_message_updated(self, props: dict[str, Any], _now: float) -> list[BaseModel]:
        info = props.get("info") or {}
        if info.get("role") != "assistant" or info.get("sessionID") != self.agent_session_id:
            return []
        if self.user_message_id and info.get("parentID") != self.user_message_id:
            return []
        self._assistant_ids.add(str(info.get("id")))
        err = info.get("error")
        if err and not self.error:
            self.error = _error_text(err)
        return []

    def _on_delta(self, props: dict[str, Any], now: float) -> list[BaseModel]:
        if props.get("field") != "text" or props.get("messageID") not in self._assistant_ids:
            return []
        part_id = str(props.get("partID"))
        delta = str(props.get("delta") or "")
        self._emitted[part_id] = self._emitted.get(part_id, 0) + len(delta)
        return self._add_text(delta, now)

    def _on_part_updated(self, props: dict[str, Any], now: float) -> list[BaseModel]:
        part = props.get("part") or {}
        if part.get("messageID") not in self._assistant_ids:
            return []
        kind = part.get("type")
        if kind == "text":
            part_id = str(part.get("id"))
            text = str(part.get("text") or "")
            sent = self._emitted.get(part_id, 0)
            self._emitted[part_id] = max(sent, len(text))
            return self._add_text(text[sent:], now) if len(text) > sent else []
        if kind == "tool":
            return self._tool(part)
        if kind == "step-finish":
            return [
                *self.flush(),
                StepFinish(
                    message_id=self.message_id, tokens=part.get("tokens") or {}, cost=float(part.get("cost") or 0)
                ),
            ]
        return []

    def _tool(self, part: dict[str, Any]) -> list[BaseModel]:
        state = part.get("state") or {}
        status = state.get("status", "pending")
        call_id = str(part.get("callID") or part.get("id"))
        if self._tool_status.get(call_id) == status or status not in ("pending", "running", "completed", "error"):
            return []
        self._tool_status[call_id] = status
        output = state.get("output") if status == "completed" else state.get("error", "")
        output = str(output or "")
        if len(output) > MAX_TOOL_OUTPUT:
            output = output[:MAX_TOOL_OUTPUT] + f"\n… ({len(output) - MAX_TOOL_OUTPUT} more characters)"
        given = state.get("input")
        args: dict[str, Any] = given if isinstance(given, dict) else {}
        return [
            *self.flush(),
            ToolCall(
                message_id=self.message_id,
                call_id=call_id,
                tool=str(part.get("tool")),
                args=args,
                status=status,
                output=output,
            ),
        ]

    def _on_session_updated(self, props: dict[str, Any], _now: float) -> list[BaseModel]:
        title = str((props.get("info") or {}).get("title") or "")
        if title and title != self._title and not title.startswith(DEFAULT_TITLE_PREFIX):
            self._title = title
            return [SessionTitle(title=title[:300])]
        return []

    def _on_session_error(self, props: dict[str, Any], _now: float) -> list[BaseModel]:
        if self._busy_seen:  # a late error of the previous prompt arrives before our busy
            self.error = _error_text(props.get("error") or {})
        return []

    def _on_status(self, props: dict[str, Any], now: float) -> list[BaseModel]:
        status = (props.get("status") or {}).get("type")
        if status == "busy":
            self._busy_seen = True
            return []
        if status == "idle":
            return self._on_idle(props, now)
        return []

    def _on_idle(self, _props: dict[str, Any], _now: float) -> list[BaseModel]:
        if not self._busy_seen:
            return []
        return self.finish()

    def finish(self, error: str | None = None) -> list[BaseModel]:
        """Complete the prompt now (idle seen, or the runner gave up waiting)."""
        if self.complete:
            return []
        self.complete = True
        if error and not self.error:
            self.error = error
        if self.stop_requested:
            self.error = "stopped by a participant"
        return [
            *self.flush(),
            ExecutionComplete(message_id=self.message_id, success=self.error is None, error=self.error),
        ]


def _error_text(error: dict[str, Any]) -> str:
    name = str(error.get("name") or "Error")
    data = error.get("data") or {}
    message = data.get("message") if isinstance(data, dict) else None
    if name == "MessageAbortedError":
        return "aborted"
    return f"{name}: {message}" if message else name


_HANDLERS = {
    "message.updated": PromptTranslator._on_message_updated,
    "message.part.delta": PromptTranslator._on_delta,
    "message.part.updated": PromptTranslator._on_part_updated,
    "session.updated": PromptTranslator._on_session_updated,
    "session.error": PromptTranslator._on_session_error,
    "session.status": PromptTranslator._on_status,
    "session.idle": PromptTranslator._on_idle,
}

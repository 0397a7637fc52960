"""The bridge protocol between the control plane and a sandbox: JSON over one WebSocket.

Typed once, here, and shared by both sides. Every message is a JSON object whose ``type`` selects
its model. Parsing happens at the edge (``parse_from_sandbox`` / ``parse_from_control``); past that
line code handles typed models only. A message that does not parse raises ``ProtocolError``; the
receiver answers it with an ``error`` message and keeps the connection.

Critical sandbox events (``execution_complete``, ``error`` with an ack id, ``push_complete``,
``push_error``, ``snapshot_ready``) carry an ``ack_id``; the sandbox re-sends them after a reconnect
until the control plane answers ``ack``; the control plane stores each ack id once.

Every sandbox event but ``ready`` and ``heartbeat`` is numbered (``n``: 1, 2, 3, ... over the
runtime's life). A socket can die with frames written into it that never arrived; so the control
plane answers each connection's handshake with ``X-Bridge-Received: <the highest n it handled from
this sandbox>``, the sandbox sends again what it sent after that (it keeps a window of sent events),
and the control plane handles each ``n`` once.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

PROTOCOL_VERSION = 1

# WebSocket close codes the control plane uses to refuse a sandbox for good (no reconnect).
CLOSE_UNAUTHORIZED = 4401
CLOSE_REFUSED = 4403
CLOSE_GONE = 4410  # the sandbox was stopped or replaced
CLOSE_REPLACED = 4409  # a newer connection of the same sandbox took over: reconnect if still alive
TERMINAL_CLOSE_CODES = frozenset({CLOSE_UNAUTHORIZED, CLOSE_REFUSED, CLOSE_GONE})
TERMINAL_HTTP_STATUSES = frozenset({401, 403, 410})
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
MAX_PROMPT_CHARS = 64_000


class ProtocolError(ValueError):
    """A message that is not valid JSON, has an unknown type, or has bad fields."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Numbered(_Message):
    """A sandbox event that is sent again after a reconnect if it may not have arrived."""

    n: int | None = Field(default=None, ge=1)


RECEIVED_HEADER = "X-Bridge-Received"  # the control plane's answer to a sandbox's handshake (see above)


# --- provider → sandbox, outside the bridge ------------------------------------------------------
# A pooled or parked sandbox learns whose it is from a claim file its provider writes
# (one JSON line down its claim pipe): these fields of the session's spawn spec, as strings.
CLAIM_FIELDS = ("sandbox_id", "session_id", "bridge_url", "token", "tool_token", "work_branch")
# A local origin is read-only to its sandbox: a push there writes the branch as a bundle at this path
# of the sandbox's directory instead, and the provider fetches it into the origin (``deliver_branch``).
OUTBOX_BUNDLE = "state/outbox.bundle"
# A local sandbox on a network of its own (loopback only) reaches out through Unix sockets its
# provider binds in at RELAY_DIR; its runtime carries these loopback ports to them (see relay.py).
RELAY_DIR = "/run/inspect"
RELAY_PORTS = {"control": 7701, "model": 7702, "egress": 7703, "git": 7704, "bridge": 7705}
# The bridge's own relay: its host end presents the sandbox's identity (its token never enters it).
BRIDGE_PATH = "/api/sandbox/ws"


# --- control plane → sandbox -------------------------------------------------------------------
class Author(_Message):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320)


class PromptCommand(_Message):
    type: Literal["prompt"] = "prompt"
    message_id: str = Field(min_length=1, max_length=64)
    content: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    model: str = Field(default="", max_length=200)  # "provider/model"; empty: the sandbox default
    # plan: OpenCode's plan agent, and the sandbox refuses file writes and writing commands meanwhile
    mode: Literal["build", "plan"] = "build"
    author: Author


class StopCommand(_Message):
    type: Literal["stop"] = "stop"
    message_id: str | None = None


class SnapshotCommand(_Message):
    type: Literal["snapshot"] = "snapshot"


class PushCommand(_Message):
    type: Literal["push"] = "push"
    branch: str = Field(min_length=1, max_length=255)
    remote: str = Field(default="origin", min_length=1, max_length=1000)  # a remote name, URL or local path
    force: bool = False  # credentials come from the control plane through git's credential helper


class AckCommand(_Message):
    type: Literal["ack"] = "ack"
    ack_id: str


class ShutdownCommand(_Message):
    type: Literal["shutdown"] = "shutdown"


class ParkCommand(_Message):
    """Idle stop where the provider keeps the sandbox warm: drop this bridge and wait to be claimed
    again (the same session's next sandbox, resumed from the snapshot just taken)."""

    type: Literal["park"] = "park"


# A person's terminal in the sandbox (``sandbox/runtime/terminals.py``): a shell on a PTY, as the
# sandbox's user. Its bytes are base64 both ways; they are not numbered (nothing to resend: a
# terminal that lost its bridge is opened again).
TERMINAL_ID = r"^[A-Za-z0-9_-]{1,64}$"
MAX_TERMINAL_CHUNK = 64 * 1024


class TerminalOpen(_Message):
    type: Literal["terminal_open"] = "terminal_open"
    terminal_id: str = Field(pattern=TERMINAL_ID)
    cols: int = Field(default=80, ge=2, le=1000)
    rows: int = Field(default=24, ge=2, le=1000)


class TerminalInput(_Message):
    type: Literal["terminal_input"] = "terminal_input"
    terminal_id: str = Field(pattern=TERMINAL_ID)
    data: str = Field(max_length=MAX_TERMINAL_CHUNK)  # base64


class TerminalResize(_Message):
    type: Literal["terminal_resize"] = "terminal_resize"
    terminal_id: str = Field(pattern=TERMINAL_ID)
    cols: int = Field(ge=2, le=1000)
    rows: int = Field(ge=2, le=1000)


class TerminalClose(_Message):
    type: Literal["terminal_close"] = "terminal_close"
    terminal_id: str = Field(pattern=TERMINAL_ID)


# A live preview (``sandbox/runtime/tunnels.py``): a byte stream between a person's browser, through
# the control plane's preview origin, and a port the workspace declares in ``.inspect/preview``,
# opened inside the sandbox (its network is its own: no port is reachable from outside any other
# way). Bytes are base64 both ways, not numbered: a stream that loses its bridge is simply closed.
TUNNEL_ID = TERMINAL_ID
MAX_TUNNEL_CHUNK = 48 * 1024  # of raw bytes per frame
MAX_PREVIEWS = 8


class PreviewPort(_Message):
    """A port the workspace declares for previews (``.inspect/preview``: ``<port> [label]``)."""

    port: int = Field(ge=1, le=65535)
    label: str = Field(default="", max_length=60)


class TunnelOpen(_Message):
    type: Literal["tunnel_open"] = "tunnel_open"
    tunnel_id: str = Field(pattern=TUNNEL_ID)
    port: int = Field(ge=1, le=65535)


class TunnelData(_Message):
    """Either way: bytes of one stream."""

    type: Literal["tunnel_data"] = "tunnel_data"
    tunnel_id: str = Field(pattern=TUNNEL_ID)
    data: str = Field(max_length=2 * MAX_TUNNEL_CHUNK)  # base64


class TunnelClose(_Message):
    """Either way: the stream ended (from the sandbox, with why when it never opened)."""

    type: Literal["tunnel_close"] = "tunnel_close"
    tunnel_id: str = Field(pattern=TUNNEL_ID)
    reason: str = Field(default="", max_length=300)


class ControlError(_Message):
    """The control plane's answer to a sandbox message it could not parse."""

    type: Literal["error"] = "error"
    code: str
    message: str


ControlMessage = Annotated[
    PromptCommand
    | StopCommand
    | SnapshotCommand
    | PushCommand
    | AckCommand
    | ShutdownCommand
    | ParkCommand
    | TerminalOpen
    | TerminalInput
    | TerminalResize
    | TerminalClose
    | TunnelOpen
    | TunnelData
    | TunnelClose
    | ControlError,
    Field(discriminator="type"),
]


# --- sandbox → control plane -------------------------------------------------------------------
class Ready(_Message):
    type: Literal["ready"] = "ready"
    protocol_version: int = PROTOCOL_VERSION
    runtime_version: str = ""
    sandbox_id: str = ""
    boot_mode: str = ""
    branch: str = ""
    commit: str = ""
    agent_session_id: str = ""
    previews: list[PreviewPort] = Field(default_factory=list, max_length=MAX_PREVIEWS)


class Heartbeat(_Message):
    type: Literal["heartbeat"] = "heartbeat"
    busy: bool = False
    message_id: str | None = None  # the prompt running now, if any


class TerminalOutput(_Message):
    type: Literal["terminal_output"] = "terminal_output"
    terminal_id: str = Field(pattern=TERMINAL_ID)
    data: str = Field(max_length=2 * MAX_TERMINAL_CHUNK)  # base64


class TerminalExit(_Message):
    type: Literal["terminal_exit"] = "terminal_exit"
    terminal_id: str = Field(pattern=TERMINAL_ID)
    code: int | None = None
    reason: str = Field(default="", max_length=500)


class GitSync(_Numbered):
    type: Literal["git_sync"] = "git_sync"
    status: Literal["started", "running", "done", "failed"]  # running: still at it (within git's own timeout)
    detail: str = ""
    elapsed_ms: int = 0


class BootProgress(_Numbered):
    type: Literal["boot_progress"] = "boot_progress"
    stage: Literal["setup", "start", "agent"]
    # running: the step printed something new (``detail``: its last line) — progress, for the watchdog
    status: Literal["started", "running", "done", "skipped", "failed"]
    elapsed_ms: int = 0
    detail: str = Field(default="", max_length=500)


class Token(_Numbered):
    type: Literal["token"] = "token"
    message_id: str
    text: str


class ToolCall(_Numbered):
    type: Literal["tool_call"] = "tool_call"
    message_id: str
    call_id: str
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    status: Literal["pending", "running", "completed", "error"]
    output: str = ""


class StepFinish(_Numbered):
    type: Literal["step_finish"] = "step_finish"
    message_id: str
    tokens: dict[str, Any] = Field(default_factory=dict)
    cost: float = 0.0


class SandboxError(_Numbered):
    type: Literal["error"] = "error"
    code: str
    message: str
    message_id: str | None = None
    ack_id: str | None = None


class ExecutionComplete(_Numbered):
    type: Literal["execution_complete"] = "execution_complete"
    message_id: str
    success: bool
    error: str | None = None
    ack_id: str | None = None


class PushComplete(_Numbered):
    type: Literal["push_complete"] = "push_complete"
    branch: str
    commit: str = ""
    ack_id: str | None = None


class PushError(_Numbered):
    type: Literal["push_error"] = "push_error"
    branch: str
    error: str
    ack_id: str | None = None


class SnapshotReady(_Numbered):
    type: Literal["snapshot_ready"] = "snapshot_ready"
    commit: str = ""
    ack_id: str | None = None


class ArtifactEvent(_Numbered):
    type: Literal["artifact"] = "artifact"
    kind: Literal["pr", "branch", "screenshot", "preview"]
    url: str = ""
    meta: dict[str, Any] = Field(default_factory=dict)


class SessionTitle(_Numbered):
    type: Literal["session_title"] = "session_title"
    title: str = Field(max_length=300)


class Warning(_Numbered):
    type: Literal["warning"] = "warning"
    message: str
    detail: str = ""


SandboxMessage = Annotated[
    Ready
    | Heartbeat
    | GitSync
    | BootProgress
    | Token
    | ToolCall
    | StepFinish
    | SandboxError
    | ExecutionComplete
    | PushComplete
    | PushError
    | SnapshotReady
    | ArtifactEvent
    | SessionTitle
    | Warning
    | TerminalOutput
    | TerminalExit
    | TunnelData
    | TunnelClose,
    Field(discriminator="type"),
]

CRITICAL_TYPES = frozenset({"execution_complete", "push_complete", "push_error", "snapshot_ready", "error"})

_from_sandbox: TypeAdapter[Any] = TypeAdapter(SandboxMessage)
_from_control: TypeAdapter[Any] = TypeAdapter(ControlMessage)


def _parse(adapter: TypeAdapter[Any], raw: str | bytes) -> Any:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("a message must be a JSON object with a string 'type'")
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or "type"
        raise ProtocolError(f"bad {data['type']!r} message: {where}: {first['msg']}") from None


def parse_from_sandbox(raw: str | bytes) -> SandboxMessage:
    return _parse(_from_sandbox, raw)


def parse_from_control(raw: str | bytes) -> ControlMessage:
    return _parse(_from_control, raw)


def encode(message: BaseModel) -> str:
    return message.model_dump_json(exclude_none=True)

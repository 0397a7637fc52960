"""What the terminal shows of a session's change feed (pure: rows in, lines out).

The feed gives each row in its latest version whenever it changes: an answer row grows, a tool
call row goes from running to completed. ``Transcript`` remembers what it has shown, so a growing
answer prints only its new characters and a tool call prints once per status it reaches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TOOL_OUTPUT_LINES = 6


@dataclass(frozen=True)
class Line:
    text: str
    style: str = ""  # a rich style: "bold", "dim", "green", "red" ...
    end: str = "\n"  # "" while an answer is still being written


@dataclass
class Transcript:
    shown_text: dict[int, int] = field(default_factory=dict)  # answer row seq -> characters shown
    tool_status: dict[str, str] = field(default_factory=dict)  # call id -> last status shown
    open_answer: int | None = None  # an answer row printed without its final newline

    def lines(self, event: dict[str, Any]) -> list[Line]:
        kind, data = event.get("type"), event.get("data") or {}
        out: list[Line] = []
        if kind != "text" and self.open_answer is not None:
            out.append(Line(""))  # end the answer's line before anything else
            self.open_answer = None
        match kind:
            case "prompt":
                author = (data.get("author") or {}).get("name") or "someone"
                out.append(Line(f"> {author}: {data.get('content', '')}", "bold"))
            case "text":
                out += self._answer(int(event.get("seq") or 0), str(data.get("text") or ""))
            case "tool_call":
                out += self._tool(data)
            case "execution_complete":
                if data.get("success"):
                    out.append(Line("✓ done", "green"))
                else:
                    out.append(Line(f"✗ failed: {data.get('error') or 'unknown error'}", "red"))
            case "sandbox_status" if data.get("status") in ("spawning", "ready", "failed", "stopped"):
                reason = f" ({data['reason']})" if data.get("reason") else ""
                out.append(Line(f"· sandbox {data['status']}{reason}", "dim"))
            case "artifact":
                out.append(Line(f"· {data.get('kind', 'artifact')}: {data.get('url', '')}", "magenta"))
            case "child":
                out.append(Line(f"· child session {data.get('title', '')}: {data.get('status', '')}", "cyan"))
            case "warning" | "error":
                out.append(Line(f"! {data.get('message', '')}", "yellow"))
        return out

    def _answer(self, seq: int, text: str) -> list[Line]:
        shown = self.shown_text.get(seq, 0)
        if len(text) <= shown:
            return []
        self.shown_text[seq] = len(text)
        self.open_answer = seq
        return [Line(text[shown:], end="")]

    def _tool(self, data: dict[str, Any]) -> list[Line]:
        """A call shows once (its tool and arguments), then once more when it has ended: the feed
        may give its first version already ended (a quick call between two polls)."""
        call, status = str(data.get("call_id") or ""), str(data.get("status") or "")
        before = self.tool_status.get(call)
        if before in ("completed", "error") or before == status:
            return []
        self.tool_status[call] = status
        out = []
        if before is None:
            args = data.get("args") or {}
            # a command is what matters of a shell call; other tools' arguments as key=value
            detail = str(args.get("command") or " ".join(f"{k}={v}" for k, v in args.items()))[:160]
            out.append(Line(f"⚙ {data.get('tool', '')} {detail}", "blue"))
        if status in ("completed", "error"):
            out.append(Line(f"  → {status}", "green" if status == "completed" else "red"))
            output = str(data.get("output") or "").rstrip().splitlines()
            out += [Line(f"  {line}", "dim") for line in output[:TOOL_OUTPUT_LINES]]
            if len(output) > TOOL_OUTPUT_LINES:
                out.append(Line(f"  … {len(output) - TOOL_OUTPUT_LINES} more lines", "dim"))
        return out

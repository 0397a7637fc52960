"""Block Kit for the Slack bot: pure functions from what happened to the blocks people see."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_ANSWER_CHARS = 2800  # a section block holds 3000 characters
MAX_STATUS_LINES = 6
MAX_IMAGES = 3  # screenshots attached to a completion message (its prompt's newest)
PICK_ACTION = "inspect_pick_repo"
PICK_SELECT_ACTION = "inspect_pick_repo_select"


@dataclass(frozen=True)
class Choice:
    repository_id: int
    name: str


def escape(text: str) -> str:
    """Untrusted text as Slack shows it, never as its markup: an agent's ``<!channel>``, ``<@U…>``
    or ``<https://elsewhere|Sign in>`` stays text (Slack's own escaping rule: &, <, >)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(markdown: str) -> str:
    """The common Markdown an agent writes, in Slack's mrkdwn: bold, http(s) links, headings; the
    rest of the text escaped."""
    text = re.sub(r"\*\*(.+?)\*\*", r"*\1*", escape(markdown))
    text = re.sub(r"\[([^\]|]+)\]\((https?://[^)\s|]+)\)", r"<\2|\1>", text)
    return re.sub(r"^#{1,6}\s+(.+)$", r"*\1*", text, flags=re.MULTILINE)


def plain(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


def trim(text: str, limit: int = MAX_ANSWER_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _view_button(url: str) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": "View session"},
        "url": url,
        "action_id": "inspect_view_session",
    }


def working(repository: str, session_url: str, status_lines: list[str]) -> list[dict[str, Any]]:
    """The thread's progress message: updated in place as the agent works (never a flood)."""
    lines = [escape(line) for line in status_lines[-MAX_STATUS_LINES:]] or ["Starting a sandbox…"]
    return [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f":hourglass_flowing_sand: Working on it in *{repository}*"},
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "\n".join(lines)}]},
        {"type": "actions", "elements": [_view_button(session_url)]},
    ]


def finished(
    *,
    answer: str,
    success: bool,
    error: str,
    artifacts: list[dict[str, Any]],
    session_url: str,
    model: str,
    repository: str,
) -> list[dict[str, Any]]:
    """The completion message: the answer, the PR or branch, a context line, the session link."""
    blocks: list[dict[str, Any]] = []
    if answer.strip():
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": trim(to_mrkdwn(answer))}})
    if not success:
        what_next = "Reply in this thread to try again or give more detail."
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f":warning: {escape(error) or 'The agent stopped.'} {what_next}"},
            }
        )
    shots = [a for a in artifacts if a.get("kind") == "screenshot" and str(a.get("url", "")).startswith("http")]
    for shot in shots[-MAX_IMAGES:]:  # Slack fetches each from its public media URL
        caption = str(shot.get("meta", {}).get("caption") or "Screenshot")[:150]
        blocks.append({"type": "image", "image_url": shot["url"], "alt_text": caption, "title": plain(caption)})
    for artifact in artifacts:
        if artifact.get("kind") == "screenshot":
            continue
        label = {"pr": "Pull request", "branch": "Branch"}.get(str(artifact.get("kind")), "Artifact")
        target = str(artifact.get("url") or artifact.get("meta", {}).get("branch", ""))
        state = f" ({artifact['state']})" if artifact.get("state") else ""
        link = f"<{target}|{label}{state}>" if target.startswith("http") else f"{label}{state}: `{escape(target)}`"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": link}})
    status = "completed" if success else "failed"
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"{status} · {model or 'default model'} · {repository}"}],
        }
    )
    blocks.append({"type": "actions", "elements": [_view_button(session_url)]})
    return blocks


def picker(guesses: list[Choice], everything: list[Choice]) -> list[dict[str, Any]]:
    """Which repository? Buttons for the best guesses, a select for all of them. The request itself
    is the thread's first message: the bot reads it back when someone chooses (no state kept)."""
    buttons = [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": choice.name[:75]},
            "action_id": f"{PICK_ACTION}_{choice.repository_id}",
            "value": str(choice.repository_id),
        }
        for choice in guesses[:3]
    ]
    select = {
        "type": "static_select",
        "action_id": PICK_SELECT_ACTION,
        "placeholder": {"type": "plain_text", "text": "Another repository"},
        "options": [
            {"text": {"type": "plain_text", "text": c.name[:75]}, "value": str(c.repository_id)}
            for c in everything[:100]
        ],
    }
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Which repository should I work on?"}},
        {"type": "actions", "elements": [*buttons, select]},
    ]


def error(message: str) -> list[dict[str, Any]]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": f":x: {message}"}}]

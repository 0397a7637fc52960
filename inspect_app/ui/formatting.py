"""Small, pure helpers that turn domain values into what the UI shows."""

from __future__ import annotations

from datetime import UTC, datetime


def relative_time(when: datetime, now: datetime | None = None) -> str:
    """'just now', '5 min ago', '3 h ago', 'yesterday', '12 Mar'."""
    now = now or datetime.now(UTC)
    seconds = max(0, int((now - when).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    if seconds < 2 * 86400:
        return "yesterday"
    if when.year == now.year:
        return when.strftime("%-d %b")
    return when.strftime("%-d %b %Y")


STATUS_COLORS = {
    "created": "gray",
    "spawning": "amber",
    "syncing": "amber",
    "ready": "green",
    "running": "blue",
    "idle": "gray",
    "stopped": "gray",
    "stale": "orange",
    "failed": "red",
}


def status_color(status: str) -> str:
    return STATUS_COLORS.get(status, "gray")


def http_url(value: str) -> str:
    """``value`` if it is an http(s) URL, else "": what may become a link's href (a sandbox's
    artifact could name ``javascript:…``)."""
    return value if value.lower().startswith(("https://", "http://")) else ""

"""A page element picked with the Chrome extension: checked at the edge, kept small, attached to the
next prompt as context the agent sees ("selected element" in the timeline)."""

from __future__ import annotations

import json
from typing import Any

import reflex as rx

from inspect_app.ui.state import AppState
from inspect_app.ui.timeline import element_label

MAX_RAW = 64 * 1024
LIMITS = {"url": 2000, "title": 300, "selector": 1000, "html": 4000, "text": 1000}
MAX_COMPONENTS = 40


def clean_selection(raw: str) -> dict[str, Any] | None:
    """The selection the extension sent, with known fields only and every string capped; None when
    it is not a selection at all (the page's other scripts can post messages too)."""
    if not raw or len(raw) > MAX_RAW:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("selector"), str) or not data["selector"]:
        return None
    clean: dict[str, Any] = {key: str(data.get(key) or "")[:limit] for key, limit in LIMITS.items()}
    given_box, given_react = data.get("box"), data.get("react")
    box: dict[str, Any] = given_box if isinstance(given_box, dict) else {}
    clean["box"] = {k: int(box[k]) for k in ("x", "y", "width", "height") if isinstance(box.get(k), int | float)}
    react: dict[str, Any] = given_react if isinstance(given_react, dict) else {}
    components = []
    for entry in (react.get("components") or [])[:MAX_COMPONENTS]:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            component: dict[str, Any] = {"name": entry["name"][:100]}
            source = entry.get("source")
            if isinstance(source, dict) and isinstance(source.get("file"), str):
                component["source"] = {"file": source["file"][:500], "line": int(source.get("line") or 0)}
            components.append(component)
    if components:
        clean["react"] = {"components": components}
    return clean


class SelectionState(AppState):
    """What the extension picked, until the next prompt takes it."""

    selection: str = ""  # the cleaned selection, JSON
    selection_error: str = ""

    @rx.var
    def selection_label(self) -> str:
        return element_label(json.loads(self.selection)) if self.selection else ""

    @rx.event
    def set_selection(self, raw: str) -> None:
        cleaned = clean_selection(raw)
        if cleaned is None:
            self.selection_error = "That selection could not be read; pick the element again."
            return
        self.selection, self.selection_error = json.dumps(cleaned), ""

    @rx.event
    def clear_selection(self) -> None:
        self.selection = ""

    def take(self) -> dict[str, Any] | None:
        """The context for the prompt being sent (and forget it)."""
        if not self.selection:
            return None
        context = {"element": json.loads(self.selection)}
        self.selection = ""
        return context

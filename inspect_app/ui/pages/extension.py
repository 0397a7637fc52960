"""The Chrome extension's side panel: a compact Inspect, framed by the extension.

``/extension``: start a session (repository + prompt) or open a recent one; ``/extension/<id>``:
the same live, multiplayer session as the web page, narrowed to a side panel. A page element picked
with the extension arrives by ``postMessage`` from the side panel (its origin checked against the
frame's parent), lands in ``SelectionState`` and rides along with the next prompt.
"""

from __future__ import annotations

import reflex as rx

from inspect_app.ui import routes
from inspect_app.ui.new_session import new_session
from inspect_app.ui.pages.session import composer, conversation
from inspect_app.ui.selection import SelectionState
from inspect_app.ui.session_state import SessionPageState as S
from inspect_app.ui.sessions_list import SessionListState, SessionRow, status_badge

# The bridge between the side panel and this page. Only the frame's parent (the extension that
# framed us; CSP frame-ancestors already limits who that can be) may hand us a selection; replies
# go to that origin only. The selection reaches Reflex through a hidden input's change event.
BRIDGE = """
(() => {
  if (window.__inspectBridge) return;
  window.__inspectBridge = true;
  const parentOrigin = (location.ancestorOrigins && location.ancestorOrigins[0]) || "";
  const trusted = (origin) => origin === parentOrigin && origin.startsWith("chrome-extension://");
  window.addEventListener("message", (event) => {
    if (!trusted(event.origin) || event.data?.type !== "inspect-selection") return;
    const input = document.getElementById("inspect-selection");
    if (!input) return;
    const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set;
    setter.call(input, JSON.stringify(event.data.selection));
    input.dispatchEvent(new Event("input", { bubbles: true }));
  });
  window.inspectAskToPick = () => {
    if (!parentOrigin.startsWith("chrome-extension://")) return;
    window.parent.postMessage({ type: "inspect-pick" }, parentOrigin);
  };
})();
"""


def selection_bar() -> rx.Component:
    sel = SelectionState
    return rx.vstack(
        rx.el.input(
            id="inspect-selection",
            type="text",
            on_change=sel.set_selection,
            style={"display": "none"},
            aria_hidden="true",
        ),
        rx.cond(
            sel.selection_label != "",
            rx.hstack(
                rx.badge(
                    rx.icon("mouse-pointer-click", size=12),
                    sel.selection_label,
                    color_scheme="violet",
                    white_space="normal",
                    id="selection-label",
                ),
                rx.icon_button(
                    rx.icon("x", size=12), size="1", variant="ghost", on_click=sel.clear_selection, title="Forget it"
                ),
                align="center",
            ),
            rx.button(
                rx.icon("mouse-pointer-click", size=14),
                "Pick an element on the page",
                size="1",
                variant="soft",
                on_click=rx.call_script("window.inspectAskToPick && window.inspectAskToPick()"),
                id="ask-pick",
            ),
        ),
        rx.cond(sel.selection_error != "", rx.text(sel.selection_error, size="1", color_scheme="red")),
        rx.script(BRIDGE),
        width="100%",
        spacing="1",
    )


def recent(row: SessionRow) -> rx.Component:
    return rx.link(
        rx.hstack(rx.text(row.title, size="2", flex="1", trim="both"), status_badge(row), width="100%", align="center"),
        href="/extension/" + row.id,
        underline="none",
        color_scheme="gray",
        high_contrast=True,
        width="100%",
        class_name="extension-session",
    )


def extension_home() -> rx.Component:
    return rx.vstack(
        rx.hstack(rx.icon("scan-search", size=18), rx.heading("Inspect", size="4"), align="center"),
        selection_bar(),
        new_session(),
        rx.text("Recent sessions", size="1", weight="bold", color_scheme="gray"),
        rx.vstack(rx.foreach(SessionListState.rows, recent), width="100%", spacing="1"),
        padding="0.75rem",
        width="100%",
        max_width="100vw",
        overflow_x="hidden",
        spacing="3",
        id="extension-home",
    )


def extension_session() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.link(rx.icon("arrow-left", size=16), href=routes.EXTENSION, title="All sessions"),
            rx.text(S.title, weight="bold", size="3", flex="1", trim="both"),
            rx.badge(S.status, color_scheme=S.status_color, variant="soft", id="session-status"),
            rx.cond(S.running, rx.button("Stop", size="1", color_scheme="red", variant="soft", on_click=S.stop)),
            width="100%",
            align="center",
        ),
        rx.cond(S.boot != "", rx.text(S.boot, size="1", color_scheme="amber")),
        *conversation(spacing="2"),
        selection_bar(),
        composer(),
        padding="0.75rem",
        width="100%",
        max_width="100vw",
        overflow_x="hidden",
        spacing="3",
        id="extension-session",
    )

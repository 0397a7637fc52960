"""The page frame: a sidebar (brand, navigation, sessions) beside the page's content."""

from __future__ import annotations

import reflex as rx

from inspect_app.ui import routes
from inspect_app.ui.sessions_list import sidebar_sessions
from inspect_app.ui.shortcuts import SCRIPT as SHORTCUTS_SCRIPT
from inspect_app.ui.shortcuts import SHOW_SHORTCUTS
from inspect_app.ui.state import AppState

# a plain <select>, styled to sit beside Radix inputs (forms post its value as is)
NATIVE_SELECT = {
    "padding": "0.3rem 0.5rem",
    "border_radius": "6px",
    "border": f"1px solid {rx.color('gray', 7)}",
    "background": rx.color("gray", 2),
    "color": rx.color("gray", 12),
}


def nav_link(icon: str, label: str, href: str) -> rx.Component:
    return rx.link(
        rx.hstack(rx.icon(icon, size=16), rx.text(label, size="2"), align="center"),
        href=href,
        underline="none",
        color_scheme="gray",
        high_contrast=True,
        padding_x="0.5rem",
    )


# A native form posting to the server, as fixed markup: Reflex's forms always prevent the
# browser's submit, and its router takes a link to /api/… for a page of its own. A POST, so that
# another site cannot sign the person out with a link (the session guard checks its Origin).
SIGN_OUT = f"""<form action="{routes.LOGOUT}" method="post" id="sign-out" style="display:flex">
<button type="submit" title="Sign out" style="all:unset;cursor:pointer;display:flex;color:inherit">
<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24" fill="none"
stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">
<path d="m16 17 5-5-5-5"/><path d="M21 12H9"/><path d="M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4"/></svg>
</button></form>"""


def sign_out_button() -> rx.Component:
    return rx.html(SIGN_OUT)


def sidebar() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.icon("scan-search", size=22),
            rx.heading("Inspect", size="5"),
            align="center",
            spacing="2",
            padding_x="0.5rem",
        ),
        nav_link("house", "Home", routes.HOME),
        nav_link("workflow", "Automations", routes.AUTOMATIONS),
        nav_link("settings", "Settings", routes.SETTINGS),
        nav_link("chart-column", "Stats", routes.STATS),
        rx.divider(),
        sidebar_sessions(),  # takes the height left, and scrolls
        rx.hstack(
            rx.avatar(fallback=AppState.user_name[:1], size="2", radius="full"),
            rx.text(AppState.user_name, size="2", overflow="hidden", text_overflow="ellipsis", white_space="nowrap"),
            rx.spacer(),
            sign_out_button(),
            rx.icon_button(
                rx.icon("keyboard", size=14),
                size="1",
                variant="ghost",
                color_scheme="gray",
                on_click=rx.call_script(SHOW_SHORTCUTS),
                id="show-shortcuts",
                title="Keyboard shortcuts (?)",
            ),
            rx.color_mode.button(size="1", variant="ghost", id="color-mode", title="Light or dark theme"),
            align="center",
            width="100%",
            padding_x="0.5rem",
        ),
        width="16rem",
        min_width="16rem",
        height="100vh",
        padding="1rem",
        spacing="3",
        border_right=f"1px solid {rx.color('gray', 5)}",
        background=rx.color("gray", 2),
        display=["none", "none", "flex"],
        position="sticky",
        top="0",
        id="sidebar",
    )


def mobile_bar() -> rx.Component:
    """Navigation on narrow screens, where the sidebar is hidden."""
    return rx.hstack(
        rx.icon("scan-search", size=20),
        rx.heading("Inspect", size="4"),
        rx.spacer(),
        nav_link("house", "", routes.HOME),
        nav_link("workflow", "", routes.AUTOMATIONS),
        nav_link("settings", "", routes.SETTINGS),
        nav_link("chart-column", "", routes.STATS),
        rx.color_mode.button(size="1", variant="ghost", id="color-mode-phone", title="Light or dark theme"),
        width="100%",
        align="center",
        padding_bottom="0.75rem",
        display=["flex", "flex", "none"],
        id="mobile-bar",
    )


def page_frame(*children: rx.Component) -> rx.Component:
    return rx.hstack(
        sidebar(),
        rx.box(
            mobile_bar(),
            rx.vstack(*children, width="100%", max_width="56rem", margin_x="auto", spacing="4"),
            rx.script(SHORTCUTS_SCRIPT),
            flex="1",
            padding=["1rem", "1.5rem", "2rem"],
            min_width="0",
        ),
        spacing="0",
        width="100%",
        align="start",
    )


def section(title: str, *children: rx.Component) -> rx.Component:
    """A titled card: one part of a page (Settings' sections)."""
    return rx.card(rx.vstack(rx.heading(title, size="4"), *children, width="100%", spacing="3"), width="100%")

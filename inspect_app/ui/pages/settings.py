"""Settings: repositories (add, prebuild), secrets (write-only), the default model, agents' MCP servers
and skills, budgets, API tokens — a module per section, composed here.

Everyone manages their own API tokens here; the rest is for admins (``control/roles``): the page hides
it from others, and the control functions the handlers call refuse them anyway.
"""

from __future__ import annotations

import reflex as rx

from inspect_app.ui.layout import page_frame, section
from inspect_app.ui.pages.settings_agents import agent_sections
from inspect_app.ui.pages.settings_repositories import repositories_section
from inspect_app.ui.pages.settings_secrets import models_section, secrets_section
from inspect_app.ui.pages.settings_state import SettingsState, TokenRow

__all__ = ["SettingsState", "settings_page"]


def token_row(row: TokenRow) -> rx.Component:
    return rx.hstack(
        rx.code(row.prefix),
        rx.text(row.name, size="2", flex="1"),
        rx.text(row.created, size="1", color_scheme="gray"),
        rx.badge(row.status, color_scheme=rx.cond(row.status == "active", "green", "gray")),
        rx.cond(
            row.status == "active",
            rx.button(
                "Revoke", size="1", variant="ghost", color_scheme="red", on_click=SettingsState.revoke_token(row.id)
            ),
        ),
        width="100%",
        align="center",
    )


def admin_sections() -> rx.Component:
    """Repositories, secrets, models and agents: shown to admins only."""
    return rx.fragment(repositories_section(), secrets_section(), models_section(), agent_sections())


def settings_page() -> rx.Component:
    s = SettingsState
    return page_frame(
        rx.heading("Settings", size="7"),
        rx.cond(s.error != "", rx.callout(s.error, icon="triangle_alert", color_scheme="red", id="settings-error")),
        rx.cond(s.message != "", rx.callout(s.message, icon="check", color_scheme="green")),
        rx.cond(
            s.is_admin,
            admin_sections(),
            rx.callout(
                "Repositories, secrets, provider keys and the default model are managed by an admin.",
                icon="info",
                color_scheme="gray",
                id="settings-not-admin",
            ),
        ),
        section(
            "API tokens",
            rx.cond(s.new_token != "", rx.code_block(s.new_token, language="log")),
            rx.vstack(rx.foreach(s.tokens, token_row), width="100%"),
            rx.form(
                rx.hstack(
                    rx.input(name="name", placeholder="What is it for?"), rx.button("Create token", type="submit")
                ),
                on_submit=s.create_token,
                reset_on_submit=True,
            ),
        ),
    )

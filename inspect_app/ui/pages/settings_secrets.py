"""Settings: the secrets section (write-only values, global or per repository) and the models section
(the default model, provider keys)."""

from __future__ import annotations

import reflex as rx

from inspect_app.ui.layout import NATIVE_SELECT, section
from inspect_app.ui.pages.settings_state import PROVIDER_KEYS, SecretRow, SettingsState


def secret_row(row: SecretRow) -> rx.Component:
    return rx.hstack(
        rx.code(row.key),
        rx.text(row.scope, size="1", color_scheme="gray"),
        rx.spacer(),
        rx.button(
            "Delete",
            size="1",
            variant="ghost",
            color_scheme="red",
            on_click=SettingsState.delete_secret(row.key, row.repo_id),
        ),
        width="100%",
        align="center",
        class_name="secret-row",
    )


def secrets_section() -> rx.Component:
    """Secrets: admins only."""
    s = SettingsState
    return section(
        "Secrets",
        rx.text(
            "Values are write-only: they go into sandboxes, never back to a browser.", size="2", color_scheme="gray"
        ),
        rx.vstack(rx.foreach(s.secrets, secret_row), width="100%", id="secret-list"),
        rx.form(
            rx.hstack(
                rx.input(name="key", placeholder="NAME", id="secret-key"),
                rx.input(name="value", placeholder="value", type="password", flex="1", id="secret-value"),
                rx.el.select(
                    rx.el.option("All repositories", value="global"),
                    rx.foreach(s.repos, lambda r: rx.el.option(r.name, value=r.id)),
                    name="scope",
                    id="secret-scope",
                    style=NATIVE_SELECT,
                ),
                rx.button("Save", type="submit", id="secret-save"),
                width="100%",
                wrap="wrap",
            ),
            on_submit=s.put_secret,
            reset_on_submit=True,
        ),
    )


def models_section() -> rx.Component:
    """The default model and provider keys: admins only."""
    s = SettingsState
    return section(
        "Models",
        rx.text("New sessions use ", rx.code(s.default_model, id="default-model"), "."),
        rx.form(
            rx.hstack(
                rx.input(
                    name="model",
                    placeholder="provider/model, e.g. anthropic/claude-sonnet-4-5",
                    flex="1",
                    id="model-input",
                ),
                rx.button("Use this model", type="submit", id="model-save"),
                width="100%",
            ),
            on_submit=s.save_model,
            reset_on_submit=True,
        ),
        rx.text("Configured default: ", rx.code(s.configured_model), size="1", color_scheme="gray"),
        rx.form(
            rx.hstack(
                rx.el.select(
                    *[rx.el.option(label, value=env) for label, env in PROVIDER_KEYS.items()],
                    name="provider",
                    id="provider-select",
                    style=NATIVE_SELECT,
                ),
                rx.input(name="value", placeholder="provider API key", type="password", flex="1", id="provider-key"),
                rx.button("Save key", type="submit", id="provider-save"),
                width="100%",
            ),
            on_submit=s.save_provider_key,
            reset_on_submit=True,
        ),
        rx.text("Provider keys are kept as encrypted secrets and reach sandboxes only.", size="1", color_scheme="gray"),
    )

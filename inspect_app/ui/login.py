"""``/login``: sign this browser in with a personal API token (local mode, several people)."""

from __future__ import annotations

import asyncio

import reflex as rx

from inspect_app import services
from inspect_app.control import users
from inspect_app.errors import Unauthorized
from inspect_app.ui.layout import page_frame
from inspect_app.ui.state import AppState


class LoginState(AppState):
    error: str = ""

    @rx.event
    async def submit(self, form: dict) -> rx.event.EventSpec | None:
        token = str(form.get("token", "")).strip()
        try:
            user = await asyncio.to_thread(users.user_for_token, services.current().engine, token)
        except Unauthorized:
            self.error = "That token is not valid. Ask your Inspect admin for a personal token."
            return None
        self.error = ""
        self.token = token
        self.user_id, self.user_name = user.id or 0, user.name
        return rx.redirect("/")


class DeniedState(AppState):
    @rx.var
    def reason(self) -> str:
        return str(self.router.url.query_parameters.get("reason", "")) or "You are not allowed to use this instance."


def denied() -> rx.Component:
    return page_frame(
        rx.heading("Access denied", size="7"),
        rx.callout(DeniedState.reason, icon="shield_alert", color_scheme="red", id="denied-reason"),
        rx.text("Ask the person who runs this Inspect instance to add you to its allowlist.", color_scheme="gray"),
        rx.link("Try again", href="/login"),
    )


def login() -> rx.Component:
    return page_frame(
        rx.heading("Sign in", size="7"),
        rx.cond(
            LoginState.oauth,
            rx.link(
                rx.button(rx.icon("log-in"), "Sign in with GitHub", size="3"),
                href="/api/auth/github/login",
                is_external=False,
                id="github-sign-in",
            ),
        ),
        rx.text("Paste your personal API token (from `python -m inspect_app.admin create-user`).", color_scheme="gray"),
        rx.form(
            rx.vstack(
                rx.input(
                    name="token", placeholder="insp_…", type="password", width="100%", id="login-token", auto_focus=True
                ),
                rx.button("Sign in", type="submit", id="login-submit"),
                rx.cond(
                    LoginState.error != "", rx.callout(LoginState.error, color_scheme="red", icon="triangle_alert")
                ),
                width="100%",
                max_width="28rem",
            ),
            on_submit=LoginState.submit,
            reset_on_submit=True,
        ),
    )

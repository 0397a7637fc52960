"""Settings: the repositories section (add one, by path or URL or from the GitHub App; Slack keywords,
egress hosts, prebuilt images and their builds, followed live)."""

from __future__ import annotations

import reflex as rx

from inspect_app.ui.layout import section
from inspect_app.ui.pages.settings_state import GitHubRow, RepoRow, SettingsState


def repo_row(row: RepoRow) -> rx.Component:
    status_color = rx.cond(row.image_status == "ready", "green", rx.cond(row.image_status == "failed", "red", "gray"))
    return rx.vstack(
        rx.hstack(
            rx.vstack(
                rx.text(row.name, weight="medium"),
                rx.text(row.url, " @ ", row.branch, size="1", color_scheme="gray"),
                spacing="0",
                flex="1",
            ),
            rx.cond(
                row.image != "",
                rx.badge(rx.icon("package", size=12), row.image, color_scheme=status_color, class_name="image-status"),
            ),
            rx.input(
                default_value=row.keywords,
                placeholder="Slack keywords, comma-separated",
                on_blur=lambda v: SettingsState.save_keywords(row.id, v),
                size="1",
                width="14rem",
                class_name="repo-keywords",
            ),
            rx.input(
                default_value=row.egress,
                placeholder="Extra egress hosts, comma-separated",
                title="Hosts this repository's sandboxes may reach beyond the installation's list "
                "(e.g. its own package registry; .example.com allows its subdomains)",
                on_blur=lambda v: SettingsState.save_egress(row.id, v),
                size="1",
                width="16rem",
                class_name="repo-egress",
            ),
            rx.text("Prebuild", size="1"),
            rx.switch(checked=row.prebuild, on_change=lambda v: SettingsState.toggle_prebuild(row.id, v)),
            rx.button(
                "Rebuild now", size="1", variant="soft", on_click=SettingsState.rebuild(row.id), class_name="rebuild"
            ),
            width="100%",
            align="center",
            wrap="wrap",
        ),
        rx.cond(
            (row.image_status == "failed") & (row.image_log != ""),
            rx.el.details(
                rx.el.summary("Why the last build failed", style={"cursor": "pointer", "font-size": "0.8rem"}),
                rx.code_block(row.image_log, language="log", wrap_long_lines=True),
                width="100%",
            ),
        ),
        width="100%",
        spacing="1",
        class_name="repo-row",
    )


def github_row(row: GitHubRow) -> rx.Component:
    return rx.hstack(
        rx.vstack(
            rx.text(row.full_name, weight="medium"),
            rx.text(row.description, size="1", color_scheme="gray"),
            spacing="0",
            flex="1",
        ),
        rx.cond(
            row.registered,
            rx.badge("added", color_scheme="green"),
            rx.button("Add", size="1", on_click=SettingsState.add_github_repo(row.full_name)),
        ),
        width="100%",
        align="center",
        class_name="github-row",
    )


def github_section() -> rx.Component:
    s = SettingsState
    return rx.cond(
        s.github_app,
        rx.vstack(
            rx.hstack(
                rx.text("From the GitHub App", weight="medium", size="2"),
                rx.button("Load from GitHub", size="1", variant="soft", on_click=s.load_github, id="github-load"),
                align="center",
            ),
            rx.cond(
                s.github_loaded & (s.github_repos.length() == 0),
                rx.text("The App is not installed on any repository yet.", size="2", color_scheme="gray"),
            ),
            rx.vstack(rx.foreach(s.github_repos, github_row), width="100%", id="github-repos"),
            width="100%",
        ),
        rx.text(
            "Set INSPECT_GITHUB_APP_ID and INSPECT_GITHUB_APP_PRIVATE_KEY to add GitHub repositories here.",
            size="1",
            color_scheme="gray",
        ),
    )


def repositories_section() -> rx.Component:
    """Repositories: admins only."""
    s = SettingsState
    return section(
        "Repositories",
        rx.vstack(rx.foreach(s.repos, repo_row), width="100%", id="repo-list"),
        rx.form(
            rx.hstack(
                rx.input(name="url", placeholder="/path/to/repo or https://…/repo.git", width="100%", id="repo-url"),
                rx.button("Add", type="submit", id="repo-add"),
                width="100%",
            ),
            on_submit=s.add_repo,
            reset_on_submit=True,
        ),
        github_section(),
    )

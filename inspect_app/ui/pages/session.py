"""The session page: header, boot progress, timeline, live answer, queue, presence and composer."""

from __future__ import annotations

import reflex as rx

from inspect_app.ui import routes
from inspect_app.ui.layout import page_frame
from inspect_app.ui.markdown import untrusted_markdown
from inspect_app.ui.session_state import FileRow, QueueRow, SessionPageState
from inspect_app.ui.timeline import TimelineItem

S = SessionPageState


def header() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.cond(
                S.editing_title,
                rx.form(
                    rx.hstack(
                        rx.input(name="title", default_value=S.title, auto_focus=True, id="title-input"),
                        rx.button("Save", type="submit", size="1"),
                    ),
                    on_submit=S.save_title,
                ),
                rx.heading(
                    S.title,
                    size="6",
                    id="session-title",
                    on_double_click=S.edit_title,
                    title="Double-click to rename",
                    cursor="text",
                ),
            ),
            rx.badge(S.status, color_scheme=S.status_color, variant="soft", id="session-status"),
            rx.cond(
                S.pr_url != "",
                rx.link(
                    rx.badge(rx.icon("git-pull-request", size=12), "PR ", S.pr_state, color_scheme="violet"),
                    href=S.pr_url,
                    is_external=True,
                    id="pr-link",
                ),
            ),
            rx.cond(
                (S.branch_pushed != "") & (S.pr_url == ""),
                rx.cond(
                    S.branch_url != "",
                    rx.link(
                        rx.badge(rx.icon("git-branch", size=12), "Open a pull request", color_scheme="amber"),
                        href=S.branch_url,
                        is_external=True,
                        id="branch-link",
                    ),
                    rx.badge(
                        rx.icon("git-branch", size=12),
                        S.branch_pushed,
                        " pushed",
                        color_scheme="gray",
                        id="branch-link",
                    ),
                ),
            ),
            rx.spacer(),
            rx.hstack(rx.foreach(S.watchers, watcher), spacing="1", id="presence"),
            rx.cond(S.running, rx.button("Stop", color_scheme="red", variant="soft", on_click=S.stop, id="stop")),
            rx.button(
                rx.cond(S.archived, "Unarchive", "Archive"),
                variant="ghost",
                size="1",
                on_click=S.toggle_archive,
                id="archive",
            ),
            align="center",
            width="100%",
            wrap="wrap",
        ),
        rx.hstack(
            rx.text(S.repo, " @ ", S.branch, size="2", color_scheme="gray"),
            rx.cond(
                S.source == "slack",
                rx.link(
                    rx.badge(rx.icon("message-square", size=12), "from Slack", color_scheme="purple"),
                    href=S.source_link,
                    is_external=True,
                    id="source-link",
                ),
            ),
            rx.cond(
                S.started_by != "",
                rx.link(
                    rx.badge(rx.icon("workflow", size=12), "started by ", S.started_by, color_scheme="cyan"),
                    href=routes.AUTOMATIONS,
                    id="started-by",
                ),
            ),
            rx.link(
                rx.badge(rx.icon("square-terminal", size=12), "Terminal", color_scheme="gray", variant="outline"),
                href="/terminal/" + S.session_id,
                is_external=True,
                id="open-terminal",
                title="A shell in this session's sandbox (what you type is recorded in the session)",
            ),
            rx.foreach(
                S.previews,
                lambda preview: rx.link(
                    rx.badge(rx.icon("app-window", size=12), "Preview: ", preview["label"], color_scheme="green"),
                    href=preview["href"],
                    is_external=True,
                    class_name="preview-link",
                    title="The app the sandbox serves, at an origin of its own",
                ),
            ),
            rx.cond(
                S.agent_has != "",
                rx.tooltip(
                    rx.badge(rx.icon("plug", size=12), S.agent_has, color_scheme="gray", id="agent-has"),
                    content="What the agent has besides its own tools (an admin configures them)",
                ),
            ),
            rx.cond(
                S.cost != "",
                rx.tooltip(
                    rx.badge(rx.icon("coins", size=12), S.cost, color_scheme="gray", id="session-cost"),
                    content="What this session's prompts cost so far (tokens times the model's prices)",
                ),
            ),
            rx.cond(
                S.fork_ref != "",
                rx.tooltip(
                    rx.badge(rx.icon("shield-alert", size=12), "a fork's code", color_scheme="amber", id="fork-badge"),
                    content="This session works on a pull request from a fork: its sandbox has none of the "
                    "repository's secrets and nothing it makes is pushed.",
                ),
            ),
            align="center",
        ),
        rx.cond(
            S.boot != "",
            rx.vstack(
                rx.foreach(S.boot_steps, lambda step: rx.text(step, size="1", color_scheme="gray")),
                rx.hstack(rx.spinner(size="1"), rx.text(S.boot, size="1", color_scheme="amber"), align="center"),
                spacing="0",
                id="boot-progress",
            ),
        ),
        rx.cond(S.status_reason != "", rx.callout(S.status_reason, icon="info", color_scheme="gray", size="1")),
        spacing="1",
        width="100%",
        id="session-header",
    )


def watcher(name: str) -> rx.Component:
    return rx.tooltip(rx.avatar(fallback=name[:2], size="1", radius="full", class_name="watcher"), content=name)


def prompt_item(item: TimelineItem) -> rx.Component:
    return rx.hstack(
        rx.avatar(fallback=item.initial, size="2", radius="full"),
        rx.vstack(
            rx.hstack(
                rx.text(item.author, weight="bold", size="2"),
                rx.cond(item.status == "plan", rx.badge("plan", color_scheme="iris", size="1")),
                align="center",
            ),
            rx.text(item.text, white_space="pre-wrap"),
            rx.cond(
                item.detail != "",
                rx.badge(
                    rx.icon("mouse-pointer-click", size=12),
                    "Selected element: ",
                    item.detail,
                    color_scheme="violet",
                    variant="soft",
                    class_name="selected-element",
                    white_space="normal",
                ),
            ),
            spacing="1",
            align="start",
        ),
        align="start",
        class_name="timeline-prompt",
        width="100%",
    )


def tool_item(item: TimelineItem) -> rx.Component:
    return rx.card(
        rx.hstack(
            rx.icon("wrench", size=14),
            rx.code(item.tool),
            rx.text(
                item.detail,
                size="1",
                color_scheme="gray",
                overflow="hidden",
                text_overflow="ellipsis",
                white_space="nowrap",
                flex="1",
            ),
            rx.badge(item.status, color_scheme=item.color, size="1"),
            align="center",
            width="100%",
        ),
        rx.cond(
            item.output != "",
            rx.el.details(
                rx.el.summary("Output", style={"cursor": "pointer", "font-size": "12px"}),
                rx.code_block(item.output, language="log", wrap_long_lines=True),
            ),
        ),
        size="1",
        width="100%",
        class_name="timeline-tool",
    )


def child_item(item: TimelineItem) -> rx.Component:
    """A session this one's agent started: live (its status, its pull request), a link to it."""
    return rx.card(
        rx.hstack(
            rx.icon("git-fork", size=14),
            rx.link(item.text, href=item.link, weight="medium", class_name="child-title"),
            rx.text(item.detail, size="1", color_scheme="gray", flex="1"),
            rx.cond(item.output != "", rx.link("Pull request", href=item.output, is_external=True, size="1")),
            rx.badge(item.status, color_scheme=item.color, size="1", class_name="child-status"),
            align="center",
            width="100%",
        ),
        size="1",
        width="100%",
        class_name="timeline-child",
    )


def screenshot_item(item: TimelineItem) -> rx.Component:
    """A screenshot the agent took, inline (a click opens it whole)."""
    return rx.card(
        rx.hstack(
            rx.icon("camera", size=14),
            rx.text(item.text, size="2", weight="medium"),
            rx.text(item.detail, size="1", color_scheme="gray", overflow="hidden", text_overflow="ellipsis"),
            align="center",
            width="100%",
        ),
        rx.link(
            rx.image(src=item.link, alt=item.text, width="100%", max_width="640px", class_name="screenshot-image"),
            href=item.link,
            is_external=True,
        ),
        size="1",
        width="100%",
        class_name="timeline-screenshot",
    )


def answer_item(item: TimelineItem) -> rx.Component:
    answer = rx.box(untrusted_markdown(item.text), class_name="timeline-answer", width="100%")
    return rx.cond(
        item.status == "plan",
        rx.card(
            rx.hstack(rx.badge(rx.icon("list-checks", size=12), "Plan", color_scheme="iris"), width="100%"),
            answer,
            rx.button(
                rx.icon("hammer", size=14),
                "Build this",
                on_click=S.build_this(item.text),
                size="1",
                class_name="build-this",
            ),
            width="100%",
            class_name="timeline-plan",
        ),
        answer,
    )


def timeline_item(item: TimelineItem) -> rx.Component:
    return rx.match(
        item.kind,
        ("prompt", prompt_item(item)),
        ("answer", answer_item(item)),
        ("tool", tool_item(item)),
        ("child", child_item(item)),
        ("screenshot", screenshot_item(item)),
        ("done", rx.text(item.text, size="1", color_scheme=item.color, class_name="timeline-done")),
        ("error", rx.callout(item.text, icon="triangle_alert", color_scheme="red", size="1")),
        rx.callout(item.text, icon="info", color_scheme=item.color, size="1"),
    )


def queued(row: QueueRow) -> rx.Component:
    return rx.hstack(
        rx.badge(rx.cond(row.status == "processing", "running", "queued"), variant="outline"),
        rx.text(
            row.author,
            ": ",
            row.content,
            size="2",
            flex="1",
            min_width="0",  # lets the text shrink (and ellipsize) in narrow panels
            overflow="hidden",
            text_overflow="ellipsis",
            white_space="nowrap",
        ),
        rx.cond(
            row.status == "pending",
            rx.button("Cancel", size="1", variant="ghost", on_click=S.cancel(row.id), class_name="cancel-prompt"),
        ),
        width="100%",
        align="center",
        class_name="queue-row",
    )


def composer() -> rx.Component:
    return rx.vstack(
        rx.cond(S.typing != "", rx.text(S.typing, size="1", color_scheme="gray", id="typing")),
        rx.cond(S.error != "", rx.callout(S.error, icon="triangle_alert", color_scheme="red", size="1")),
        rx.hstack(
            rx.text_area(
                value=S.draft,
                on_change=S.set_draft,
                on_key_down=S.typed.throttle(2000),
                placeholder="Ask for a change… (prompts queue while the agent works)",
                id="composer",
                width="100%",
                min_width="0",
                flex="1",
                rows="3",
            ),
            rx.vstack(
                rx.tooltip(
                    rx.hstack(
                        rx.switch(checked=S.plan_mode, on_change=S.set_plan_mode, size="1", id="plan-toggle"),
                        rx.text("Plan first", size="1"),
                        align="center",
                        spacing="1",
                    ),
                    content="The agent plans and changes nothing (the sandbox refuses its writes); build it after",
                ),
                rx.button(rx.cond(S.plan_mode, "Plan", "Send"), on_click=S.send, id="send", disabled=S.draft == ""),
                # Ctrl/Cmd-Enter (ui/shortcuts.py) presses this one: the composer's text reaches the
                # app as the composer is left, just before, when Send may not know of it yet
                rx.button(on_click=S.send, id="send-now", display="none", tab_index=-1, aria_hidden="true"),
                align="end",
                spacing="2",
            ),
            width="100%",
            align="end",
        ),
        width="100%",
        spacing="1",
    )


def fact(label: str, *value: rx.Component | rx.Var | str, **props: str) -> rx.Component:
    return rx.hstack(
        rx.text(label, size="1", color_scheme="gray", width="7rem", flex_shrink="0"),
        rx.text(*value, size="1", min_width="0", overflow_wrap="anywhere"),
        width="100%",
        align="start",
        **props,
    )


def changed_file(row: FileRow) -> rx.Component:
    """A file changed against the base; its patch on demand."""
    return rx.el.details(
        rx.el.summary(
            rx.text.span(row.path, font_family="monospace"),
            rx.text.span(" +", row.added.to_string(), color="var(--green-11)"),
            rx.text.span(" \u2212", row.removed.to_string(), color="var(--red-11)"),
            rx.cond(row.status != "modified", rx.text.span(" · ", row.status, color="var(--gray-11)")),
            style={"cursor": "pointer", "font-size": "13px"},
        ),
        rx.code_block(row.patch, language="diff", wrap_long_lines=True),
        class_name="changed-file",
        width="100%",
    )


def details_panel() -> rx.Component:
    """The session at a glance: where it works, who is in it, what it changed and what it cost."""
    return rx.el.details(
        rx.el.summary(
            "Details",
            rx.cond(S.files.length() > 0, rx.text.span(" · ", S.files.length().to_string(), " files changed")),
            style={"cursor": "pointer", "font-weight": "600"},
            on_click=S.load_changes,
            id="details-toggle",
        ),
        rx.vstack(
            fact("Repository", S.repo),
            fact("Branch", rx.code(S.work_branch), " from ", rx.code(S.branch)),
            fact("Model", rx.cond(S.model != "", S.model, "the default")),
            fact(
                "Pull request",
                rx.cond(
                    S.pr_url != "",
                    rx.link(S.pr_url, " (", S.pr_state, ")", href=S.pr_url, is_external=True),
                    rx.cond(S.branch_pushed != "", S.branch_pushed + " pushed", "none yet"),
                ),
            ),
            fact("Cost", rx.cond(S.cost != "", S.cost, "nothing recorded yet")),
            fact("People", S.people, id="details-people"),
            fact("Watching now", S.watching),
            fact("Sandbox", S.status, " · ", rx.text.span(S.sandbox_limits, id="sandbox-limits")),
            rx.cond(
                (S.status == "ready") & ~S.running,
                rx.button(
                    rx.icon("power", size=12),
                    "Stop the sandbox",
                    size="1",
                    variant="soft",
                    color_scheme="gray",
                    on_click=S.sleep_sandbox,
                    id="sleep-sandbox",
                    title="It resumes from its snapshot at the next prompt",
                ),
            ),
            rx.cond(S.boot_done != "", fact("Last boot", S.boot_done, id="boot-timings")),
            rx.cond(
                S.children.length() > 0,
                fact(
                    "Child sessions",
                    rx.foreach(
                        S.children,
                        lambda c: rx.text.span(rx.link(c["title"], href=c["link"]), " (", c["status"], ") "),
                    ),
                    id="details-children",
                ),
            ),
            rx.text("Files changed", size="2", weight="medium"),
            rx.cond(
                S.files.length() > 0,
                rx.vstack(rx.foreach(S.files, changed_file), width="100%", spacing="1", id="changed-files"),
                rx.text(S.changes_note, size="1", color_scheme="gray", id="changes-note"),
            ),
            width="100%",
            spacing="2",
            padding_top="0.5rem",
        ),
        width="100%",
        id="details",
    )


# Scrolling, done in the browser: a session opens at its newest entry and follows the stream while
# the person stays at the bottom; scrolling up to the top pages in older history (the "Show earlier"
# button, kept for keyboards, is clicked once it is on screen after a scroll). Polling keeps this
# independent of React re-rendering the elements.
SCROLLING = """
(() => {
  if (window.__inspectScrolling) return;
  window.__inspectScrolling = true;
  let armed = false, opened = "", height = 0;
  const page = document.documentElement;
  const bottom = () => window.scrollTo(0, page.scrollHeight);
  for (const kind of ["wheel", "touchmove", "keydown", "scroll"]) {
    window.addEventListener(kind, () => { armed = true; }, {passive: true});
  }
  setInterval(() => {
    const timeline = document.getElementById("timeline");
    if (!timeline) { opened = ""; return; }
    const atBottom = window.innerHeight + window.scrollY >= height - 120;  // before this tick's growth
    const grown = page.scrollHeight > height;
    height = page.scrollHeight;
    if (opened !== location.pathname && timeline.children.length) {
      opened = location.pathname; armed = false; bottom(); return;
    }
    if (grown && atBottom && document.getElementById("live-answer")) bottom();  // follow the stream
    const button = document.getElementById("load-older");
    if (!armed || !button) return;
    const box = button.getBoundingClientRect();
    if (box.bottom > 0 && box.top < window.innerHeight) { armed = false; button.click(); }
  }, 200);
})();
"""


def conversation(spacing: str) -> list[rx.Component]:
    """The timeline, the answer streaming in and the queue: the session page's and the extension
    panel's (the scrolling script and the tests know these ids)."""
    return [
        rx.vstack(rx.foreach(S.items, timeline_item), width="100%", spacing=spacing, id="timeline"),
        rx.cond(
            S.live_message != "",
            rx.box(
                untrusted_markdown(S.live_done),
                untrusted_markdown(S.live_tail),
                id="live-answer",
                width="100%",
                opacity="0.9",
            ),
        ),
        rx.cond(S.queue.length() > 0, rx.vstack(rx.foreach(S.queue, queued), width="100%", id="queue")),
    ]


def session_page() -> rx.Component:
    return page_frame(
        rx.cond(
            S.not_found,
            rx.callout("This session does not exist (or the link is wrong).", icon="circle_x", color_scheme="red"),
            rx.vstack(
                header(),
                details_panel(),
                rx.divider(),
                rx.cond(
                    S.has_older,
                    rx.button("Show earlier", variant="ghost", size="1", on_click=S.load_older, id="load-older"),
                ),
                *conversation(spacing="3"),
                composer(),
                rx.script(SCROLLING),
                width="100%",
                spacing="4",
            ),
        ),
    )

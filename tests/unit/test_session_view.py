"""The session page's header, boot panel and details, event by event (the pure reducer)."""

from functools import reduce as fold
from typing import Any

from inspect_app.ui.session_view import SessionView, boot_timings, reduce


def event(type_: str, **data: Any) -> dict[str, Any]:
    return {"type": type_, "seq": 1, "data": data}


def test_a_boot_is_followed_step_by_step_then_summed_up() -> None:
    start = SessionView(session_id="s1", status="created")
    boot = [
        event("sandbox_status", status="spawning", boot_mode="image"),
        event("git_sync", status="running", elapsed_ms=2500),
        event("git_sync", status="done", elapsed_ms=120),
        event("boot_progress", stage="start", status="running", detail="listening on 5173"),
        event("boot_progress", stage="start", status="running", detail="ready in 300 ms"),
    ]
    during = fold(reduce, boot, start)
    assert during.status == "spawning" and during.boot == "Start: ready in 300 ms"
    assert during.boot_steps == (
        "Sandbox starting (image)",
        "Git sync: done (120 ms)",
        "Start output: ready in 300 ms",  # the newest output line replaced the one before
    )
    ready = reduce(
        during, event("sandbox_status", status="ready", boot_mode="image", previews=[{"port": 5173, "label": "Web"}])
    )
    assert ready.boot == "" and ready.boot_steps == ()
    assert ready.boot_done == "Sandbox starting (image) · Git sync: done (120 ms) · Ready (image)"
    assert ready.previews == (("Web", "/api/sessions/s1/previews/5173"),)
    stopped = reduce(ready, event("sandbox_status", status="stopped", reason="idle for 600s"))
    assert (stopped.status, stopped.status_reason, stopped.boot) == ("stopped", "idle for 600s", "")
    failed = reduce(during, event("sandbox_status", status="failed", reason="git sync failed"))
    assert failed.boot == "Sandbox failed" and failed.boot_steps == during.boot_steps  # kept, to say what failed


def test_prompts_pull_requests_titles_and_costs() -> None:
    view = SessionView(session_id="s1", branch="main", title="Untitled session", status="ready")
    view = reduce(view, {"type": "prompt_started", "seq": 2})
    assert view.status == "running"
    view = reduce(view, {"type": "execution_complete", "seq": 3, "data": {"success": True}})
    assert view.status == "ready"
    view = reduce(view, event("session_title", title="Fix the login"))
    view = reduce(view, event("session_title", title="Something else"))  # named already: kept
    assert view.title == "Fix the login"
    view = reduce(view, event("artifact", kind="pr", url="https://github.com/o/r/pull/3", state="open"))
    assert (view.pr_url, view.pr_state) == ("https://github.com/o/r/pull/3", "open")
    sneaky = reduce(view, event("artifact", kind="pr", url="javascript:alert(1)", state="open"))
    assert sneaky.pr_url == ""  # agent-influenced: only http(s) is ever a link
    view = reduce(view, event("artifact", kind="branch", url="", meta={}))
    assert view.branch_pushed == "main"
    view = reduce(view, event("session_cost", dollars="0.4200", display="$0.42"))
    assert view.cost == "$0.42"
    assert reduce(view, event("session_cost", dollars="0", display="$0.00")).cost == ""
    assert reduce(view, event("tool_call", tool="bash")) is view  # not the header's business


def test_the_last_boot_in_steps_with_their_times() -> None:
    def event(kind: str, **data: object) -> dict[str, object]:
        return {"type": kind, "data": data}

    newest_first = [
        event("sandbox_status", status="stopped"),
        event("sandbox_status", status="ready", boot_mode="image"),
        event("boot_progress", stage="agent", status="done", elapsed_ms=2900),
        event("boot_progress", stage="agent", status="started"),
        event("boot_progress", stage="setup", status="skipped"),
        event("git_sync", status="running", elapsed_ms=500),
        event("git_sync", status="done", elapsed_ms=120),
        event("sandbox_status", status="spawning", boot_mode="image"),
        event("git_sync", status="done", elapsed_ms=9999),  # an earlier boot: not this one
    ]
    assert boot_timings(newest_first) == [
        "Started (image)",
        "Git sync done in 0.1 s",
        "Setup skipped",
        "Agent done in 2.9 s",
        "Ready (image)",
    ]
    assert boot_timings([]) == []

from __future__ import annotations

from datetime import UTC, datetime

from inspect_app.control.data.sessions import SessionSummary
from inspect_app.ui.session_state import session_id_from_path
from inspect_app.ui.sessions_list import nest
from inspect_app.ui.timeline import item_for, merge


def ev(seq: int, type_: str, mid: str = "", **data: object) -> dict:
    return {"seq": seq, "type": type_, "message_id": mid, "data": data}


def test_items_group_under_their_prompt_and_tools_update_in_place() -> None:
    author = {"name": "Ada Lovelace"}
    items = merge(
        [],
        [
            ev(1, "prompt", "a", content="first", author=author),
            ev(2, "prompt", "b", content="second", author={"name": "Grace"}),
        ],
    )
    items = merge(items, [ev(3, "tool_call", "a", call_id="c1", tool="bash", status="running", args={"command": "ls"})])
    done = ev(3, "tool_call", "a", call_id="c1", tool="bash", status="completed", output="x", args={"command": "ls"})
    items = merge(items, [done])  # the store publishes the whole updated row
    items = merge(items, [ev(4, "text", "a", text="answer A"), ev(5, "execution_complete", "a", success=True)])
    items = merge(
        items, [ev(6, "text", "b", text="answer B"), ev(7, "execution_complete", "b", success=False, error="boom")]
    )
    assert [(i.kind, i.message_id) for i in items] == [
        ("prompt", "a"),
        ("tool", "a"),
        ("answer", "a"),
        ("done", "a"),
        ("prompt", "b"),
        ("answer", "b"),
        ("done", "b"),
    ]
    assert items[0].author == "Ada Lovelace" and items[0].initial == "A"
    assert items[1].status == "completed" and items[1].detail == "ls" and items[1].color == "green"
    assert items[-1].text == "Failed: boom" and items[-1].color == "red"


def test_events_without_a_timeline_item_are_skipped() -> None:
    assert merge([], [ev(1, "heartbeat"), ev(2, "sandbox_status", status="ready"), ev(3, "token", "a", text="x")]) == []


def test_session_id_from_path() -> None:
    assert session_id_from_path("/sessions/abc123") == "abc123"
    assert session_id_from_path("/sessions/abc123/?x=1") == "abc123"
    assert session_id_from_path("/other/abc") == ""


def test_pull_request_artifacts_show_in_the_timeline() -> None:
    items = merge([], [ev(9, "artifact", kind="pr", url="https://github.com/a/b/pull/1", state="merged")])
    assert items[0].text == "Pull request (merged): https://github.com/a/b/pull/1"
    local = merge([], [ev(10, "artifact", kind="branch", url="", state="pushed", meta={"branch": "inspect/s1"})])
    assert local[0].text == "Branch (pushed): inspect/s1"  # a local branch has no URL: its name instead


def test_streamed_paragraphs_settle_but_never_inside_a_code_fence() -> None:
    from inspect_app.ui.timeline import settle

    assert settle("", "first para\n\nsecond") == ("first para\n\n", "second")
    assert settle("a\n\n", "no break yet") == ("a\n\n", "no break yet")
    fenced = "Here:\n\n```python\nx = 1\n\ny = 2"
    done, tail = settle("", fenced)
    assert done == "Here:\n\n" and tail.startswith("```python")  # cut before the open fence, not inside it
    done, tail = settle(done, tail + "\n```\n\nafter")
    assert done.endswith("```\n\n") and tail == "after"


def test_a_child_is_one_card_updated_in_place_and_its_links_are_safe() -> None:
    def card(seq: int, status: str, pr_url: str = "") -> dict:
        data = {"child_id": "c1", "title": "Alpha", "repository": "acme/a", "status": status, "pr_url": pr_url}
        return {"type": "child", "seq": seq, "data": data}

    items = merge([], [card(3, "working")])
    items = merge(items, [card(3, "done", "https://github.com/acme/a/pull/2")])
    [child] = items
    assert (child.kind, child.status, child.color) == ("child", "done", "green")
    assert (child.link, child.output) == ("/sessions/c1", "https://github.com/acme/a/pull/2")
    [hostile] = merge([], [card(4, "done", "javascript:alert(1)")])
    assert hostile.output == ""  # agent-written: no link


def test_children_sit_under_their_listed_parent_and_orphans_stay_in_place() -> None:
    def summary(sid: str, parent: str | None = None) -> SessionSummary:
        return SessionSummary(
            id=sid, title=sid, status="idle", repository="r", base_branch="main", creator="Ada",
            source="web", archived=False, updated_at=datetime(2026, 1, 1, tzinfo=UTC), parent_id=parent,
        )  # fmt: skip

    listed = [summary("b1", "p"), summary("x"), summary("p"), summary("o1", "gone"), summary("b2", "p")]
    assert [(s.id, nested) for s, nested in nest(listed)] == [
        ("x", False),
        ("p", False),
        ("b1", True),
        ("b2", True),
        ("o1", False),
    ]


def test_a_screenshot_shows_from_this_servers_media_only() -> None:
    """A sandbox may announce any artifact: the timeline shows a picture only under a real media key,
    and always from this server's own /media/ path, whatever URL the event names."""
    key = "A" * 43 + ".png"
    ours = item_for(
        {
            "type": "artifact",
            "seq": 4,
            "data": {
                "kind": "screenshot",
                "url": "https://evil.example/t.png",
                "meta": {"key": key, "caption": "After"},
            },
        }
    )
    assert ours is not None and ours.kind == "screenshot" and ours.link == f"/media/{key}" and ours.text == "After"
    for meta in ({}, {"key": "../../etc/passwd"}, {"key": "https://evil.example/t.png"}):
        event = {
            "type": "artifact",
            "seq": 5,
            "data": {"kind": "screenshot", "url": "https://evil.example/t.png", "meta": meta},
        }
        assert item_for(event) is None

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from inspect_app.ui.formatting import http_url, relative_time, status_color

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_relative_time() -> None:
    assert relative_time(NOW - timedelta(seconds=5), NOW) == "just now"
    assert relative_time(NOW - timedelta(minutes=7), NOW) == "7 min ago"
    assert relative_time(NOW - timedelta(hours=3), NOW) == "3 h ago"
    assert relative_time(NOW - timedelta(hours=30), NOW) == "yesterday"
    assert relative_time(datetime(2026, 3, 12, tzinfo=UTC), NOW) == "12 Mar"
    assert relative_time(datetime(2025, 3, 12, tzinfo=UTC), NOW) == "12 Mar 2025"
    assert relative_time(NOW + timedelta(seconds=30), NOW) == "just now"


def test_status_colors() -> None:
    assert status_color("failed") == "red"
    assert status_color("something-new") == "gray"


def test_only_http_urls_become_links() -> None:
    assert http_url("https://github.com/o/r/pull/1") == "https://github.com/o/r/pull/1"
    assert http_url("HTTP://example.com") == "HTTP://example.com"
    for hostile in ("javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,<b>x</b>", "//evil.example", ""):
        assert http_url(hostile) == ""

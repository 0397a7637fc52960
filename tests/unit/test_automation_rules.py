"""The pure rules of automations: cron fire times across daylight-saving changes, the prompt
template (sandboxed, the payload as data only) and the webhook body filters."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

import pytest

from inspect_app.control.automations import github_events, schedule, templates
from inspect_app.control.automations.filters import Filter, mismatch
from inspect_app.errors import InvalidInput


def fires(cron: str, zone: str, after: datetime, count: int) -> list[datetime]:
    found = []
    for _ in range(count):
        nxt = schedule.next_fire(cron, zone, after)
        assert nxt is not None
        found.append(nxt)
        after = nxt
    return found


def test_a_daily_job_keeps_its_wall_clock_time_across_the_spring_change() -> None:
    # Berlin moves from UTC+1 to UTC+2 on 2026-03-29: 09:00 local is 08:00 UTC, then 07:00 UTC
    assert fires("0 9 * * *", "Europe/Berlin", datetime(2026, 3, 27, 12, tzinfo=UTC), 3) == [
        datetime(2026, 3, 28, 8, tzinfo=UTC),
        datetime(2026, 3, 29, 7, tzinfo=UTC),
        datetime(2026, 3, 30, 7, tzinfo=UTC),
    ]


def test_a_time_that_does_not_exist_fires_once_that_day_and_one_that_exists_twice_fires_once() -> None:
    spring = fires("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 28, 12, tzinfo=UTC), 3)
    assert [f.date().isoformat() for f in spring] == ["2026-03-29", "2026-03-30", "2026-03-31"]
    assert spring[0] > datetime(2026, 3, 29, 1, tzinfo=UTC)  # after the gap (02:00 -> 03:00 local)
    autumn = fires("30 2 * * *", "Europe/Berlin", datetime(2026, 10, 24, 12, tzinfo=UTC), 3)
    assert autumn == [  # 02:30 happens twice on 2026-10-25 (CEST, then CET): the first one only
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 26, 1, 30, tzinfo=UTC),
        datetime(2026, 10, 27, 1, 30, tzinfo=UTC),
    ]


def test_the_next_fire_is_strictly_after_the_given_time() -> None:
    at = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    assert schedule.next_fire("0 9 * * *", "UTC", at) == datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "zone", "message"),
    [
        ("0 9 * *", "UTC", "not a cron expression"),
        ("61 * * * *", "UTC", "not a cron expression"),
        ("0 9 * * *", "Mars/Olympus", "unknown time zone"),
        ("0 9 * * *", "../../etc/passwd", "unknown time zone"),
    ],
)
def test_a_bad_schedule_is_refused_with_what_is_wrong(cron: str, zone: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        schedule.next_fire(cron, zone, datetime(2026, 1, 1, tzinfo=UTC))


def test_the_payload_is_data_and_a_missing_field_renders_as_nothing() -> None:
    payload = {"title": "{{ 7 * 7 }}{% for x in range(3) %}x{% endfor %}", "n": 3}
    rendered = templates.render("Fix {{ payload.title }} ({{ payload.n }}){{ payload.absent.deeper }}", payload=payload)
    assert rendered == "Fix {{ 7 * 7 }}{% for x in range(3) %}x{% endfor %} (3)"


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ payload.__class__.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
    ],
)
def test_the_template_cannot_reach_python_internals(template: str) -> None:
    """The sandbox refuses the call (an error) or hides the attribute (nothing is rendered)."""
    try:
        rendered = templates.render("Shown: " + template, payload={})
    except InvalidInput as exc:
        assert "could not be rendered" in exc.message
    else:
        assert rendered == "Shown:"


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ '%d' % 'x' }}", "TypeError"),
        ("{{ range(10 ** 9) | list }}", "Range too big"),  # the sandbox's bound on loops
    ],
)
def test_a_template_that_raises_is_a_clear_error(template: str, error: str) -> None:
    with pytest.raises(InvalidInput, match=f"could not be rendered.*{error}"):
        templates.render(template, payload={})


def test_a_template_that_loops_for_ever_or_writes_gigabytes_is_stopped() -> None:
    """Nested loops of 10^10 steps: the silent one ends at the time bound, the loud one once its
    output passes the prompt's size (long before gigabytes are kept); the thread renders on after."""
    silent = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}x"
    started = time.monotonic()
    with pytest.raises(InvalidInput, match=r"took longer than 2 s to render"):
        templates.render(silent, payload={})
    assert time.monotonic() - started < templates.RENDER_S + 5
    loud = "{% for a in range(100000) %}{% for b in range(100000) %}xxxxxxxx{% endfor %}{% endfor %}"
    with pytest.raises(InvalidInput, match="rendered prompt is longer than"):
        templates.render(loud, payload={})
    assert sys.gettrace() is None  # the bound is gone with the render
    assert templates.render("Still {{ payload.ok }}", payload={"ok": "fine"}) == "Still fine"


def test_a_template_that_does_not_parse_names_its_line() -> None:
    with pytest.raises(InvalidInput, match=r"does not parse \(line 2\)"):
        templates.check("Fine\n{% if %}")
    with pytest.raises(InvalidInput, match="empty"):
        templates.check("   ")


def test_filters_match_paths_values_and_list_indexes() -> None:
    body = {"pull_request": {"base": {"ref": "main"}, "labels": [{"name": "bug"}]}, "action": "opened"}
    rules = [
        Filter.model_validate({"path": "pull_request.base.ref", "equals": "main"}),
        Filter.model_validate({"path": "action", "in": ["opened", "synchronize"]}),
        Filter.model_validate({"path": "pull_request.labels.0.name", "equals": "bug"}),
    ]
    assert mismatch(body, rules) is None
    assert mismatch({**body, "action": "closed"}, rules) == "action is 'closed', not one of ['opened', 'synchronize']"
    assert mismatch({"action": "opened"}, rules) == "the body has no pull_request.base.ref"
    assert mismatch(body, [Filter.model_validate({"path": "pull_request.labels.5.name", "equals": "bug"})]) == (
        "the body has no pull_request.labels.5.name"
    )


@pytest.mark.parametrize(
    "rule",
    [{"path": "a"}, {"path": "a", "equals": 1, "in": [1]}, {"path": "a..b", "equals": 1}, {"path": "a", "is": 1}],
)
def test_a_filter_says_one_thing(rule: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Filter.model_validate(rule)


def test_only_failed_checks_on_pull_requests_and_known_actions_are_github_triggers() -> None:
    repo = {"full_name": "acme/widgets"}
    pull = {"number": 3, "head": {"ref": "fix", "repo": {"id": 1}}, "base": {"repo": {"id": 1}}}
    check = {"conclusion": "failure", "head_sha": "c" * 40, "pull_requests": [pull]}
    assert github_events.read("check_run", {"action": "completed", "repository": repo, "check_run": check}) == (
        github_events.GitHubEvent("check_run.failed", "acme/widgets", branch="fix", pull=3, head_sha="c" * 40)
    )
    passed = {**check, "conclusion": "success"}
    assert github_events.read("check_run", {"action": "completed", "repository": repo, "check_run": passed}) is None
    on_a_branch = {**check, "pull_requests": []}  # a push to a branch, no pull request: nothing to fix on
    assert (
        github_events.read("check_run", {"action": "completed", "repository": repo, "check_run": on_a_branch}) is None
    )
    assert github_events.read("issues", {"action": "opened", "repository": repo}) is None
    assert github_events.read("issues", {"action": "labeled", "label": {"name": "x"}}) is None  # no repository

"""Which repository a Slack message means (pure rules and the classifier's answer), and the blocks."""

from __future__ import annotations

import json

from bots.slack import views
from bots.slack.routing import CONFIDENT, Candidate, by_rules, from_model

WIDGETS = Candidate(id=1, name="widgets", description="The widget shop", keywords=("shop", "storefront"))
GADGETS = Candidate(id=2, name="gadgets", description="Internal tools", keywords=("admin",))
BOTH = [WIDGETS, GADGETS]


def test_one_repository_is_the_answer() -> None:
    assert by_rules("anything at all", [WIDGETS], None).repository_id == 1  # type: ignore[union-attr]


def test_a_keyword_or_name_decides_when_only_one_matches() -> None:
    assert by_rules("the storefront checkout is slow", BOTH, None).reason == "keyword"  # type: ignore[union-attr]
    assert by_rules("fix the Admin page", BOTH, None).repository_id == 2  # type: ignore[union-attr]
    assert by_rules("widgets and gadgets both", BOTH, None) is None  # two match: not decided here
    assert by_rules("the shopping cart", BOTH, None) is None  # "shop" inside a word does not count


def test_a_channel_association_comes_after_keywords() -> None:
    assert by_rules("something is off", BOTH, 2).reason == "channel"  # type: ignore[union-attr]
    assert by_rules("the admin page", BOTH, 1).repository_id == 2  # type: ignore[union-attr]
    assert by_rules("something is off", BOTH, 99) is None  # a deleted repository is ignored


def test_the_models_answer_is_checked_and_low_confidence_asks() -> None:
    sure = from_model('Sure! {"repository": "Gadgets", "confidence": 0.9, "alternatives": ["widgets"]}', BOTH)
    assert (sure.repository_id, sure.reason, sure.guesses) == (2, "model", (2, 1))
    unsure = from_model(f'{{"repository": "gadgets", "confidence": {CONFIDENT - 0.1}}}', BOTH)
    assert unsure.repository_id is None and unsure.guesses == (2,)
    assert from_model('{"repository": "unknown", "confidence": 1}', BOTH).repository_id is None
    assert from_model('{"repository": "elsewhere", "confidence": 1}', BOTH).repository_id is None  # not a candidate
    assert from_model("I am not sure", BOTH).reason == "ask"
    assert from_model('{"repository": "widgets", "confidence": "high"}', BOTH).repository_id is None


def test_blocks_carry_the_answer_in_mrkdwn_the_links_and_the_context() -> None:
    assert (
        views.to_mrkdwn("**Done**: see [the PR](https://x/pr/1)\n## Notes")
        == "*Done*: see <https://x/pr/1|the PR>\n*Notes*"
    )
    blocks = json.dumps(
        views.finished(
            answer="x" * 5000,
            success=False,
            error="stopped by a participant",
            artifacts=[
                {"kind": "pr", "url": "https://x/pr/1", "state": "open"},
                {"kind": "branch", "url": "", "meta": {"branch": "inspect/s1"}},
            ],
            session_url="https://inspect/sessions/s1",
            model="llm/m",
            repository="widgets",
        ),
        ensure_ascii=False,
    )
    assert "x" * 2700 in blocks and "x" * 3000 not in blocks  # trimmed to fit a section
    assert "stopped by a participant" in blocks and "Reply in this thread" in blocks
    assert "<https://x/pr/1|Pull request (open)>" in blocks and "`inspect/s1`" in blocks
    assert "failed · llm/m · widgets" in blocks and "https://inspect/sessions/s1" in blocks
    picker = json.dumps(
        views.picker([views.Choice(2, "gadgets")], [views.Choice(1, "widgets"), views.Choice(2, "gadgets")])
    )
    assert f"{views.PICK_ACTION}_2" in picker and views.PICK_SELECT_ACTION in picker

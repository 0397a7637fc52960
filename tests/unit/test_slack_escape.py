"""An agent's answer in Slack is text: Slack's markup in it (mentions, disguised links) stays text."""

from __future__ import annotations

import json

from bots.slack import views


def test_slack_markup_in_an_answer_stays_text_and_only_http_links_are_links() -> None:
    answer = "<!channel> ping <@U123> & <https://evil.example|Sign in again> [ok](https://x/pr/1) [no](javascript:x)"
    assert views.to_mrkdwn(answer) == (
        "&lt;!channel&gt; ping &lt;@U123&gt; &amp; &lt;https://evil.example|Sign in again&gt; "
        "<https://x/pr/1|ok> [no](javascript:x)"
    )
    assert views.to_mrkdwn("[a|b](https://x/y)") == "[a|b](https://x/y)"  # a | would split Slack's link


def test_status_lines_and_errors_are_escaped_too() -> None:
    working = json.dumps(views.working("widgets", "http://inspect/s/1", ["ran <!here>"]))
    assert "<!here>" not in working and "&lt;!here&gt;" in working
    done = json.dumps(
        views.finished(
            answer="",
            success=False,
            error="<!everyone> failed",
            artifacts=[{"kind": "branch", "url": "", "meta": {"branch": "<!here>"}}],
            session_url="http://inspect/s/1",
            model="",
            repository="widgets",
        )
    )
    assert "<!everyone>" not in done and "<!here>" not in done

"""Ready-made automations a repository can switch on.

**Pull request review** (off by default): on every pull request opened by an owner, member or
collaborator, an agent reads the change on its branch and its answer is posted as a review (a
comment, neither approving nor asking for changes) through the App. It is an ordinary automation
(paused when switched off), acting for the admin who switched it on.
"""

from __future__ import annotations

import sqlalchemy as sa

from inspect_app.control.automations import manage
from inspect_app.control.crypto import Cipher
from inspect_app.control.data import automations as data
from inspect_app.control.data import repositories, roles
from inspect_app.errors import InvalidInput
from inspect_app.models import Automation, AutomationStatus, User

REVIEW = "review"
REVIEW_TEMPLATE = """\
Review pull request #{{ payload.pull_request.number }}, "{{ payload.pull_request.title }}", which would \
merge {{ payload.pull_request.head.ref }} into {{ payload.pull_request.base.ref }}. The checkout is its branch.

Read the change (git diff origin/{{ payload.pull_request.base.ref }}...HEAD). Do not change any file and do \
not commit. Answer with the review itself: what the change does in two sentences, then what is wrong or risky \
(file and line), then what is missing (tests, documentation). Say so plainly when it looks right."""


def set_review(engine: sa.Engine, cipher: Cipher, actor: User, repository_id: int, *, on: bool) -> Automation | None:
    """Switch the review preset of a GitHub repository on or off (admins); None: off and never on."""
    roles.require_admin(engine, actor.id or 0, "switch pull request reviews on or off")
    repository = repositories.get(engine, repository_id)
    if repository.kind != "github":
        raise InvalidInput("pull request reviews need a GitHub repository")
    existing = next(
        (
            a
            for a in data.list_all(engine)
            if a.trigger_config.get("preset") == REVIEW and a.repository_ids == [repository_id]
        ),
        None,
    )
    status = AutomationStatus.ACTIVE if on else AutomationStatus.PAUSED
    if existing is not None:
        return manage.update(engine, actor, existing.id or 0, manage.Spec(status=status))
    if not on:
        return None
    created, _ = manage.create(
        engine,
        cipher,
        actor,
        manage.Spec(
            name=f"Review pull requests: {repository.name}",
            trigger="github",
            events=["pull_request.opened"],
            review=True,
            repository_ids=[repository_id],
            template=REVIEW_TEMPLATE,
        ),
    )
    return data.update(engine, created.id or 0, trigger_config={**created.trigger_config, "preset": REVIEW})

"""Acting on verified GitHub webhooks: each delivery once; PR artifacts follow their PR; pushes
to a prebuilt branch make its image stale."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col, select

from inspect_app.db import session_scope
from inspect_app.models import Artifact, Image, ImageStatus, Repository, WebhookDelivery, utcnow
from inspect_app.scm.webhooks import PullRequestChange


def first_delivery(engine: sa.Engine, delivery_id: str, event: str) -> bool:
    """Record a delivery; False if it was handled before (a re-delivery or a replay)."""
    with session_scope(engine) as db:
        if db.get(WebhookDelivery, delivery_id) is not None:
            return False
        db.add(WebhookDelivery(delivery_id=delivery_id, event=event))
        try:
            db.flush()
        except sa.exc.IntegrityError:
            db.rollback()
            return False
        return True


def apply_pull_request(engine: sa.Engine, change: PullRequestChange) -> list[tuple[str, dict]]:
    """Update the PR artifacts for this PR; returns (session id, artifact data) of those changed."""
    changed = []
    with session_scope(engine) as db:
        for artifact in db.exec(select(Artifact).where(Artifact.type == "pr", Artifact.url == change.url)).all():
            if artifact.state == change.state:
                continue
            artifact.state = change.state
            artifact.updated_at = utcnow()
            changed.append(
                (artifact.session_id, {"kind": "pr", "url": artifact.url, "state": change.state, "meta": artifact.meta})
            )
    return changed


def mark_images_stale(engine: sa.Engine, full_name: str, branch: str) -> int:
    owner, _, name = full_name.partition("/")
    with session_scope(engine) as db:
        repo_ids = db.exec(
            select(Repository.id).where(Repository.github_owner == owner, Repository.github_name == name)
        ).all()
        images = db.exec(
            select(Image).where(
                col(Image.repository_id).in_(repo_ids), Image.branch == branch, Image.status == ImageStatus.READY
            )
        ).all()
        for image in images:
            image.status = ImageStatus.STALE
        return len(images)

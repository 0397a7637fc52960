"""Named, expiring database leases: a scheduled job or a build runs once across several workers.

APScheduler 3 has no cross-process locking, and each worker runs its own scheduler; whoever takes
the lease does the work, the others skip. A lease expires on its own, so a crashed holder cannot
block the job forever.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col

from inspect_app.db import session_scope
from inspect_app.models import Lease, utcnow


def acquire(engine: sa.Engine, name: str, holder: str, ttl_s: float) -> bool:
    """Take the lease if it is free, expired, or already ours; False when someone else holds it."""
    now = utcnow()
    expires = now + timedelta(seconds=ttl_s)
    with session_scope(engine) as db:
        taken = db.exec(
            sa.update(Lease)
            .where(col(Lease.name) == name, sa.or_(col(Lease.expires_at) < now, col(Lease.holder) == holder))
            .values(holder=holder, expires_at=expires)
        )
        if taken.rowcount == 1:
            return True
        if db.get(Lease, name) is not None:
            return False
        db.add(Lease(name=name, holder=holder, expires_at=expires))
        try:
            db.flush()
        except sa.exc.IntegrityError:  # another worker created it first
            db.rollback()
            return False
        return True


def release(engine: sa.Engine, name: str, holder: str) -> None:
    with session_scope(engine) as db:
        db.exec(sa.delete(Lease).where(col(Lease.name) == name, col(Lease.holder) == holder))

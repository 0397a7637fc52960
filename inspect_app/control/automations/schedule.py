"""Cron schedules in a time zone: when an automation fires next.

APScheduler's ``CronTrigger`` computes the times (it is already the prebuild scheduler's); the fires
themselves are claimed in our own table, not in an APScheduler job store, which cannot be shared
between schedulers. Across daylight-saving changes: a wall-clock time that does not exist (spring
forward) fires once, just after the gap; one that exists twice (fall back) fires once, at its first
occurrence — a daily 02:30 job runs once a day either way.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from inspect_app.errors import InvalidInput

MAX_SKIPS = 100  # second occurrences skipped in a row before giving up (a schedule never firing)


def trigger(cron: str, timezone: str) -> tuple[CronTrigger, ZoneInfo]:
    """The parsed schedule; InvalidInput naming what is wrong."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {timezone!r} (an IANA name, e.g. Europe/Berlin)") from None
    try:
        return CronTrigger.from_crontab(cron, timezone=zone), zone
    except ValueError as exc:
        raise InvalidInput(f"not a cron expression ({cron!r}): {exc}") from None


def next_fire(cron: str, timezone: str, after: datetime) -> datetime | None:
    """The first fire strictly after ``after`` (UTC), or None when the schedule never fires again."""
    cron_trigger, zone = trigger(cron, timezone)
    moment = after
    for _ in range(MAX_SKIPS):
        # APScheduler counts in whole seconds and includes ``now``: ask from the next second
        candidate = cron_trigger.get_next_fire_time(None, moment.replace(microsecond=0) + timedelta(seconds=1))
        if candidate is None:
            return None
        candidate = candidate.astimezone(UTC)
        if candidate.astimezone(zone).fold == 0:  # not the second occurrence of a repeated wall time
            return candidate
        moment = candidate
    return None

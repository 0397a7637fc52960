"""The spawn watchdog follows a boot's progress, not the clock since it was created."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from inspect_app.control.boot_watch import BootWatch

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_boot_that_keeps_moving_is_not_given_up_until_its_cap() -> None:
    watch = BootWatch(no_progress_s=3, cap_s=60)
    for second in range(0, 50, 2):  # a line of setup output every 2 s
        watch.progress("sbx", "setup: npm ci", at(second))
        assert watch.overdue("sbx", T0, at(second + 2.5)) is None
    assert "did not become ready within 60s" in str(watch.overdue("sbx", T0, at(61)))


def test_a_quiet_boot_is_given_up_naming_its_step() -> None:
    watch = BootWatch(no_progress_s=3, cap_s=60)
    assert watch.overdue("sbx", T0, at(2)) is None
    watch.progress("sbx", "setup", at(1))
    reason = watch.overdue("sbx", T0, at(4.5))
    assert reason is not None and "no progress for 3s" in reason and "setup" in reason
    never = watch.overdue("other", T0, at(4))
    assert never is not None and "never connected" in never


def test_a_forgotten_boot_starts_over_from_its_creation() -> None:
    watch = BootWatch(no_progress_s=3, cap_s=60)
    watch.progress("sbx", "agent", at(10))
    watch.forget("sbx")
    assert watch.step("sbx").startswith("starting")
    assert watch.overdue("sbx", at(10), at(12)) is None

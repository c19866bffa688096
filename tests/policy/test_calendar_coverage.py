"""Issue 9 item 11: past the calendar's published coverage nothing is silent."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from policy import default_policy

CST = timezone(timedelta(hours=8))  # Beijing time, fixed offset


def cst(*args: int) -> datetime:
    return datetime(*args, tzinfo=CST)


def test_ruling_sla_from_late_december_2026_skips_new_years_day_2027():
    policy = default_policy()
    # Escalated Thu 2026-12-24 10:00 Beijing; 7 working days: Dec 25, 28, 29, 30, 31, then
    # Fri 2027-01-01 is New Year's Day (a statutory holiday on a weekday), so Jan 4 and Jan 5.
    assert policy.due_at(cst(2026, 12, 24, 10, 0), policy.mediator_rule) == cst(2027, 1, 5, 10, 0)

"""How long the policy's calendar is still covered by a published arrangement: the
figure behind /healthz, the start-up warning of the API and the worker, and a metric.

Reads the clock, so it is not for workflow code (which has ``WorkingCalendar
.days_covered_after`` and the workflow clock).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timezone
from typing import Literal

from pydantic import BaseModel

from policy.model import Policy

__all__ = ["CalendarCoverage", "calendar_coverage", "log_calendar_coverage"]


class CalendarCoverage(BaseModel):
    calendar: str
    policy_version: str
    covers_to: date
    # Days after today still covered; negative once covers_to has passed. Export this as
    # a gauge and alert below warn_within_days.
    days_left: int
    warn_within_days: int
    # "expiring": fewer than warn_within_days left; "expired": coverage has ended.
    status: Literal["ok", "expiring", "expired"]
    message: str


def calendar_coverage(policy: Policy, warn_within_days: int, now: datetime | None = None) -> CalendarCoverage:
    calendar = policy.calendar
    left = calendar.days_covered_after(calendar.local_date(now or datetime.now(timezone.utc)))
    status = "expired" if left < 0 else "expiring" if left < warn_within_days else "ok"
    message = (f"working-day calendar {calendar.name} of policy {policy.version} has published days off "
               f"to {calendar.covers_to} ({left} days left)")
    if status != "ok":
        message += ("; past that only weekends and statutory holidays count and deadlines are marked "
                    "past_calendar_coverage: load the next year's arrangement (README, Working-day calendar)")
    return CalendarCoverage(calendar=calendar.name, policy_version=policy.version, covers_to=calendar.covers_to,
                            days_left=left, warn_within_days=warn_within_days, status=status, message=message)


def log_calendar_coverage(policy: Policy, warn_within_days: int, logger: logging.Logger) -> CalendarCoverage:
    """Log the coverage at start-up: a warning once it is expiring or expired."""
    coverage = calendar_coverage(policy, warn_within_days)
    logger.log(logging.INFO if coverage.status == "ok" else logging.WARNING, coverage.message)
    return coverage

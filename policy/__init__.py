"""Versioned policy as data: every window and SLA of the dispute life cycle, and the
working-day calendar they are counted on.

``policy.model`` (``Window``, ``WorkingCalendar``, ``Policy``) is pure and
deterministic, safe for workflow code. ``policy.presets`` builds policies from
packaged data or files, for the API, worker and CLI.
"""

from policy.model import CaseLimits, Milestone, Policy, ServiceLevel, Urgency, Window, WorkingCalendar
from policy.presets import (
    DEFAULT_VERSION,
    DEMO_VERSION,
    PolicyLoadError,
    default_policy,
    demo_policy,
    load_policy,
)
from policy.calendars import load_calendar

__all__ = [
    "CaseLimits",
    "Milestone",
    "ServiceLevel",
    "Urgency",
    "Policy",
    "Window",
    "WorkingCalendar",
    "PolicyLoadError",
    "default_policy",
    "demo_policy",
    "load_policy",
    "load_calendar",
    "DEFAULT_VERSION",
    "DEMO_VERSION",
]

"""Packaged working-day calendars (``<name>.json``), read via importlib.resources.

The JSON files are generated (see ``generate.py``); runtime code never imports the
library they are generated from.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from policy.model import WorkingCalendar

__all__ = ["load_calendar", "calendar_from_document"]


def calendar_from_document(document: dict) -> WorkingCalendar:
    """The calendar in a packaged calendar document (``{"calendar": {...}, ...}``)."""
    return WorkingCalendar.model_validate(document["calendar"])


@lru_cache(maxsize=None)
def load_calendar(name: str) -> WorkingCalendar:
    """The packaged calendar ``name`` (e.g. ``"cn"``). Reads a file: call it when
    building a policy (API, worker, CLI), never from workflow code, which gets its
    calendar from the Policy in its input."""
    filename = f"{name.lower()}.json"
    resource = resources.files(__package__).joinpath(filename)
    if not resource.is_file():
        raise LookupError(f"no packaged calendar {name!r} (looked for policy/calendars/{filename})")
    return calendar_from_document(json.loads(resource.read_text(encoding="utf-8")))

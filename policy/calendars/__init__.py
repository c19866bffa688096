"""Working-day calendars as data: a calendar document holds one entry per year, each
with its source, and folds into the ``WorkingCalendar`` a Policy records.

A year is either *published* (the State Council's 放假安排: days off and 调休 make-up
workdays) or *statutory* (only the statutory holidays known before the arrangement is
out; they become ``provisional_holidays`` after ``covers_to``). The packaged documents
(``<name>.json``) are generated (see ``generate.py``); a newly published year is added
as an arrangement file (see ``extend.py``, README "Working-day calendar"). Runtime code
never imports the libraries the data is generated from.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from functools import lru_cache
from importlib import resources
from typing import Self

from pydantic import BaseModel, ConfigDict, model_validator

from policy.model import WorkingCalendar

__all__ = ["YearArrangement", "CalendarDocument", "extend_calendar", "load_calendar", "load_calendar_document"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class YearArrangement(BaseModel):
    """One year of a calendar, and where it comes from.

    ``holidays`` are the days off as the notice lists them (放假; weekend days may be
    included, they change nothing); ``make_up_workdays`` are the weekend days worked
    (调休上班). A statutory year has no make-up days: nobody has published them yet.
    """

    model_config = _FROZEN

    year: int
    published: bool
    # The notice (title, number, address) or the library and version it was generated from.
    source: str
    # Who checked a typed-in arrangement against the notice.
    reviewed_by: tuple[str, ...] = ()
    holidays: tuple[date, ...] = ()
    make_up_workdays: tuple[date, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Self:
        elsewhere = sorted(d for d in (*self.holidays, *self.make_up_workdays) if d.year != self.year)
        if elsewhere:
            raise ValueError(f"the {self.year} arrangement lists dates of other years: {elsewhere}")
        if not self.published and self.make_up_workdays:
            raise ValueError("a statutory (unpublished) year has no make-up workdays")
        both = sorted(set(self.holidays) & set(self.make_up_workdays))
        if both:
            raise ValueError(f"dates are both holidays and make-up workdays: {both}")
        return self


class CalendarDocument(BaseModel):
    """A calendar file: the rules that do not change by year, then consecutive years,
    published ones first."""

    model_config = _FROZEN

    generated_by: str | None = None
    name: str
    utc_offset: timedelta
    weekend: tuple[int, ...]
    years: tuple[YearArrangement, ...]

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.years or not self.years[0].published:
            raise ValueError("a calendar needs at least one published year, first")
        numbers = [y.year for y in self.years]
        if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
            raise ValueError(f"years must be consecutive and in order, got {numbers}")
        flags = [y.published for y in self.years]
        if flags != sorted(flags, reverse=True):
            raise ValueError("published years come before statutory ones")
        self.calendar()  # every year must fold into a valid calendar
        return self

    def calendar(self) -> WorkingCalendar:
        first, *rest = self.years
        days_off, make_up = _days(first, self.weekend)
        calendar = WorkingCalendar(
            name=self.name, utc_offset=self.utc_offset, weekend=self.weekend, holidays=days_off,
            make_up_workdays=make_up, covers_from=date(first.year, 1, 1), covers_to=date(first.year, 12, 31),
        )
        for year in rest:
            calendar = _fold(calendar, year)
        return calendar


def extend_calendar(calendar: WorkingCalendar, arrangement: YearArrangement) -> WorkingCalendar:
    """``calendar`` with the published arrangement of the year after its coverage: what
    a new policy version records once the State Council's notice is out."""
    if not arrangement.published:
        raise ValueError(f"the {arrangement.year} arrangement is not marked published")
    return _fold(calendar, arrangement)


def _days(year: YearArrangement, weekend: tuple[int, ...]) -> tuple[tuple[date, ...], tuple[date, ...]]:
    """The year's days off that would be working days, and its make-up workdays."""
    not_weekend = sorted(d for d in year.make_up_workdays if d.isoweekday() not in weekend)
    if not_weekend:
        raise ValueError(f"make-up workdays of {year.year} must fall on a weekend: {not_weekend}")
    return tuple(d for d in year.holidays if d.isoweekday() not in weekend), year.make_up_workdays


def _fold(calendar: WorkingCalendar, year: YearArrangement) -> WorkingCalendar:
    days_off, make_up = _days(year, calendar.weekend)
    if not year.published:
        return WorkingCalendar.model_validate(
            calendar.model_dump() | {"provisional_holidays": (*calendar.provisional_holidays, *days_off)})
    if calendar.covers_to != date(year.year - 1, 12, 31):
        raise ValueError(f"the calendar covers to {calendar.covers_to}; it can only be extended by "
                         f"{calendar.covers_to.year + 1}, not {year.year}")
    return WorkingCalendar.model_validate(calendar.model_dump() | {
        "holidays": (*calendar.holidays, *days_off),
        "make_up_workdays": (*calendar.make_up_workdays, *make_up),
        "covers_to": date(year.year, 12, 31),
        "provisional_holidays": tuple(d for d in calendar.provisional_holidays if d.year != year.year),
    })


def load_calendar_document(name: str) -> CalendarDocument:
    """The packaged calendar document ``name`` (e.g. ``"cn"``)."""
    filename = f"{name.lower()}.json"
    resource = resources.files(__package__).joinpath(filename)
    if not resource.is_file():
        raise LookupError(f"no packaged calendar {name!r} (looked for policy/calendars/{filename})")
    return CalendarDocument.model_validate(json.loads(resource.read_text(encoding="utf-8")))


@lru_cache(maxsize=None)
def load_calendar(name: str) -> WorkingCalendar:
    """The packaged calendar ``name`` (e.g. ``"cn"``). Reads a file: call it when
    building a policy (API, worker, CLI), never from workflow code, which gets its
    calendar from the Policy in its input."""
    return load_calendar_document(name).calendar()

"""Regenerate ``policy/calendars/cn.json`` from the maintained libraries (dev
dependencies only; runtime code reads the JSON).

    python -m policy.calendars.generate [--from-year 2024] [--output PATH]

Each year comes from the best source that has it:

1. ``chinese_calendar``: the State Council's published arrangement (放假 and 调休), for
   every year from ``--from-year`` the library knows;
2. ``arrangements/cn-<year>.json``: a published arrangement typed in from the notice
   and reviewed like code, for the years right after those (see README, "Working-day
   calendar");
3. ``holidays``: for the one year after that, the statutory holidays only
   (全国年节及纪念日放假办法, ``observed=False``), which are off whatever the
   arrangement will say. Its own "observed" days are rules of thumb, not the notice,
   so they are left out.

``holidays`` keeps only days off that fall on a weekday (a holiday on a Saturday or
Sunday is off anyway); ``make_up_workdays`` are the weekend days worked in lieu (调休).
The range is kept short on purpose: the whole Policy, calendar included, is recorded in
every workflow input.
"""

from __future__ import annotations

import argparse
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from policy.calendars import CalendarDocument, YearArrangement

DEFAULT_FROM_YEAR = 2024
OUTPUT = Path(__file__).with_name("cn.json")
ARRANGEMENTS = Path(__file__).with_name("arrangements")
CN_UTC_OFFSET = timedelta(hours=8)  # China Standard Time, no DST
WEEKEND = (6, 7)  # ISO: Saturday, Sunday


def _from_chinese_calendar(year: int) -> YearArrangement:
    import chinese_calendar

    holidays: list[date] = []
    make_up: list[date] = []
    day = date(year, 1, 1)
    while day.year == year:
        weekday_off = day.isoweekday() in WEEKEND
        working = chinese_calendar.is_workday(day)
        if working and weekday_off:
            make_up.append(day)
        elif not working and not weekday_off:
            holidays.append(day)
        day += timedelta(days=1)
    version = getattr(chinese_calendar, "__version__", "unknown")
    return YearArrangement(year=year, published=True, source=f"chinese_calendar {version}",
                           holidays=holidays, make_up_workdays=make_up)


def _statutory_from_holidays(year: int) -> YearArrangement:
    import holidays

    days = sorted(d for d in holidays.China(years=year, observed=False) if d.isoweekday() not in WEEKEND)
    return YearArrangement(
        year=year, published=False,
        source=f"holidays {holidays.__version__}: statutory holidays only (全国年节及纪念日放假办法); "
               f"the {year} arrangement (调休) is in neither chinese_calendar nor holidays",
        holidays=days,
    )


def build_document(from_year: int = DEFAULT_FROM_YEAR) -> dict[str, Any]:
    from chinese_calendar import constants

    first_year = min(constants.holidays).year
    last_year = max(constants.holidays).year
    if not first_year <= from_year <= last_year:
        raise SystemExit(f"chinese_calendar has data for {first_year}..{last_year}, not {from_year}")
    years = [_from_chinese_calendar(year) for year in range(from_year, last_year + 1)]
    while (typed := ARRANGEMENTS / f"cn-{years[-1].year + 1}.json").is_file():
        years.append(YearArrangement.model_validate_json(typed.read_text(encoding="utf-8")))
    years.append(_statutory_from_holidays(years[-1].year + 1))
    document = CalendarDocument(generated_by="python -m policy.calendars.generate", name="CN",
                                utc_offset=CN_UTC_OFFSET, weekend=WEEKEND, years=years)
    return document.model_dump(mode="json", exclude_defaults=True)


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Regenerate policy/calendars/cn.json.")
    parser.add_argument("--from-year", type=int, default=DEFAULT_FROM_YEAR)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    document = build_document(args.from_year)
    args.output.write_text(render(document), encoding="utf-8")
    calendar = CalendarDocument.model_validate(document).calendar()
    print(
        f"wrote {args.output}: published {calendar.covers_from}..{calendar.covers_to}, "
        f"{len(calendar.holidays)} holidays, {len(calendar.make_up_workdays)} make-up workdays, "
        f"{len(calendar.provisional_holidays)} provisional holidays after"
    )


if __name__ == "__main__":
    main()

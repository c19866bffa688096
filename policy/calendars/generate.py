"""Regenerate ``policy/calendars/cn.json`` from the maintained ``chinese_calendar``
library (a dev dependency only; runtime code reads the JSON).

    python -m policy.calendars.generate [--from-year 2024] [--output PATH]

The calendar covers ``--from-year``-01-01 through 12-31 of the last year the library
has data for. ``holidays`` keeps only days off that fall on a weekday (a holiday on a
Saturday or Sunday is off anyway); ``make_up_workdays`` are the weekend days worked in
lieu (调休). The range is kept short on purpose: the whole Policy, calendar included,
is recorded in every workflow input.
"""

from __future__ import annotations

import argparse
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from policy.model import WorkingCalendar

DEFAULT_FROM_YEAR = 2024
OUTPUT = Path(__file__).with_name("cn.json")
CN_UTC_OFFSET = timedelta(hours=8)  # China Standard Time, no DST


def build_document(from_year: int = DEFAULT_FROM_YEAR) -> dict[str, Any]:
    import chinese_calendar
    from chinese_calendar import constants

    first_year = min(constants.holidays).year
    last_year = max(constants.holidays).year
    if not first_year <= from_year <= last_year:
        raise SystemExit(f"chinese_calendar has data for {first_year}..{last_year}, not {from_year}")
    covers_from = date(from_year, 1, 1)
    covers_to = date(last_year, 12, 31)
    weekend = (6, 7)  # ISO: Saturday, Sunday

    holidays: list[date] = []
    make_up: list[date] = []
    day = covers_from
    while day <= covers_to:
        weekday_off = day.isoweekday() in weekend
        working = chinese_calendar.is_workday(day)
        if working and weekday_off:
            make_up.append(day)
        elif not working and not weekday_off:
            holidays.append(day)
        day += timedelta(days=1)

    calendar = WorkingCalendar(
        name="CN",
        utc_offset=CN_UTC_OFFSET,
        weekend=weekend,
        holidays=holidays,
        make_up_workdays=make_up,
        covers_from=covers_from,
        covers_to=covers_to,
    )
    version = getattr(chinese_calendar, "__version__", "unknown")
    return {
        "generated_by": "python -m policy.calendars.generate",
        "source": f"chinese_calendar {version}",
        "calendar": calendar.model_dump(mode="json"),
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Regenerate policy/calendars/cn.json from chinese_calendar.")
    parser.add_argument("--from-year", type=int, default=DEFAULT_FROM_YEAR)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    document = build_document(args.from_year)
    args.output.write_text(render(document), encoding="utf-8")
    cal = document["calendar"]
    print(
        f"wrote {args.output}: {cal['covers_from']}..{cal['covers_to']}, "
        f"{len(cal['holidays'])} holidays, {len(cal['make_up_workdays'])} make-up workdays"
    )


if __name__ == "__main__":
    main()

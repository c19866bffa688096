"""Write a new policy version whose calendar adds the next year's published arrangement.

    python -m policy.calendars.extend --policy default --arrangement cn-2027.json \\
        --version cn-2027.1 --output policy-cn-2027.1.json

``--arrangement`` is a ``YearArrangement`` JSON file typed in from the State Council's
notice (国务院办公厅关于<year>年部分节假日安排的通知) and checked by a second person named
in ``reviewed_by``. The output is a whole Policy file: start the API and worker with
``DISPUTEFLOW_POLICY`` set to it and new cases record it; move open cases onto it with
``POST /disputes/{id}/calendar-update`` (README, "Working-day calendar"). No code changes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from policy.calendars import YearArrangement, extend_calendar
from policy.model import Policy
from policy.presets import PolicyLoadError, load_policy


def extend_policy(base: Policy, arrangement: YearArrangement, version: str) -> Policy:
    """``base`` under ``version`` with ``arrangement`` added to its calendar; a valid
    calendar update for every case on ``base``."""
    if not arrangement.reviewed_by:
        raise ValueError(f"the {arrangement.year} arrangement names no reviewer (reviewed_by): "
                         "typed-in days are checked against the notice by a second person")
    extended = Policy.model_validate(base.model_dump() | {
        "version": version, "calendar": extend_calendar(base.calendar, arrangement)})
    base.check_calendar_update(extended)
    return extended


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Add a published year to a policy's working-day calendar.")
    parser.add_argument("--policy", default="default", help="'default', 'demo' or a Policy JSON file")
    parser.add_argument("--arrangement", type=Path, required=True, help="the year's arrangement JSON file")
    parser.add_argument("--version", required=True, help="the new policy version, e.g. cn-2027.1")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        base = load_policy(args.policy)
        arrangement = YearArrangement.model_validate_json(args.arrangement.read_text(encoding="utf-8"))
        extended = extend_policy(base, arrangement, args.version)
    except (OSError, PolicyLoadError, ValidationError, ValueError) as error:
        sys.exit(f"cannot extend policy {args.policy!r}: {error}")
    args.output.write_text(extended.model_dump_json(indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}: policy {extended.version}, calendar {extended.calendar.name} published to "
          f"{extended.calendar.covers_to} (was {base.calendar.covers_to} in {base.version})")


if __name__ == "__main__":
    main()

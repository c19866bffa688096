"""Issue 9 item 11: past the calendar's published coverage nothing is silent."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from policy import Window, default_policy, load_policy
from policy.calendars import CalendarDocument, YearArrangement, extend, extend_calendar, load_calendar_document
from policy.calendars.extend import extend_policy
from policy.coverage import calendar_coverage, log_calendar_coverage

CST = timezone(timedelta(hours=8))  # Beijing time, fixed offset


def cst(*args: int) -> datetime:
    return datetime(*args, tzinfo=CST)


def test_ruling_sla_from_late_december_2026_skips_new_years_day_2027():
    policy = default_policy()
    # Escalated Thu 2026-12-24 10:00 Beijing; 7 working days: Dec 25, 28, 29, 30, 31, then
    # Fri 2027-01-01 is New Year's Day (a statutory holiday on a weekday), so Jan 4 and Jan 5.
    assert policy.due_at(cst(2026, 12, 24, 10, 0), policy.mediator_rule) == cst(2027, 1, 5, 10, 0)


# --- 2027: statutory days now, the published arrangement loaded as data ---------------

EXAMPLE_2027 = Path(__file__).with_name("data") / "cn-2027-example.json"


def example_2027() -> YearArrangement:
    return YearArrangement.model_validate_json(EXAMPLE_2027.read_text(encoding="utf-8"))


def test_2027_is_past_coverage_with_its_statutory_holidays_off():
    calendar = default_policy().calendar
    assert calendar.covers_to == date(2026, 12, 31)
    # Spring Festival 2027: New Year's Eve Fri Feb 5 and Mon Feb 8 are statutory days off;
    # the days the arrangement will add (调休) are not known yet.
    assert not calendar.is_working_day(date(2027, 2, 5))
    assert not calendar.is_working_day(date(2027, 2, 8))
    assert calendar.is_working_day(date(2027, 2, 9))
    start = cst(2027, 2, 4, 10, 0)
    due = calendar.add_working_days(start, 7)
    assert due == cst(2027, 2, 17, 10, 0)  # Feb 9, 10, 11, 12, 15, 16, 17
    assert calendar.counts_uncovered(start, due)
    assert not calendar.counts_uncovered(cst(2026, 12, 1, 10, 0), cst(2026, 12, 10, 10, 0))


def test_spring_festival_2027_from_a_published_arrangement():
    base = default_policy()
    policy = extend_policy(base, example_2027(), "cn-2027.1")
    calendar = policy.calendar
    assert (calendar.covers_from, calendar.covers_to) == (date(2024, 1, 1), date(2027, 12, 31))
    assert calendar.provisional_holidays == ()
    # The example's Spring Festival: Feb 5-12 off; Sun Jan 31 and Sat Feb 20 are worked.
    for day in range(5, 13):
        assert not calendar.is_working_day(date(2027, 2, day)), day
    assert calendar.is_working_day(date(2027, 1, 31))
    assert calendar.is_working_day(date(2027, 2, 20))
    assert not calendar.is_working_day(date(2027, 2, 21))
    # The ruling SLA from Thu Feb 4: Feb 15, 16, 17, 18, 19, Sat 20 (make-up), Mon 22.
    start = cst(2027, 2, 4, 10, 0)
    assert policy.due_at(start, policy.mediator_rule) == cst(2027, 2, 22, 10, 0)
    assert not calendar.counts_uncovered(start, policy.due_at(start, policy.mediator_rule))
    # Everything published before is kept as it was.
    assert calendar.is_working_day(date(2026, 10, 10)) and not calendar.is_working_day(date(2026, 10, 7))
    base.check_calendar_update(policy)


def test_extend_cli_writes_a_loadable_policy(tmp_path, capsys):
    output = tmp_path / "policy-cn-2027.1.json"
    extend.main(["--policy", "default", "--arrangement", str(EXAMPLE_2027), "--version", "cn-2027.1",
                 "--output", str(output)])
    assert "published to 2027-12-31" in capsys.readouterr().out
    loaded = load_policy(output)
    assert loaded == extend_policy(default_policy(), example_2027(), "cn-2027.1")
    assert loaded.version == "cn-2027.1"


def test_extend_refuses_an_unreviewed_or_misplaced_arrangement(tmp_path):
    unreviewed = example_2027().model_copy(update={"reviewed_by": ()})
    with pytest.raises(ValueError, match="reviewer"):
        extend_policy(default_policy(), unreviewed, "cn-2027.1")
    a_year_late = YearArrangement(year=2028, published=True, source="x", reviewed_by=("r",),
                                  holidays=[date(2028, 1, 3)])
    with pytest.raises(ValueError, match="only be extended by 2027"):
        extend_policy(default_policy(), a_year_late, "cn-2028.1")
    with pytest.raises(ValueError, match="not marked published"):
        extend_calendar(default_policy().calendar, example_2027().model_copy(update={"published": False}))
    bad = tmp_path / "bad.json"
    bad.write_text('{"year": 2027, "published": true, "source": "x", "reviewed_by": ["r"], '
                   '"make_up_workdays": ["2027-02-22"]}', encoding="utf-8")
    with pytest.raises(SystemExit, match="must fall on a weekend"):
        extend.main(["--arrangement", str(bad), "--version", "v", "--output", str(tmp_path / "out.json")])
    assert not (tmp_path / "out.json").exists()


def test_year_arrangement_validation():
    with pytest.raises(ValidationError, match="other years"):
        YearArrangement(year=2027, published=True, source="x", holidays=[date(2026, 12, 31)])
    with pytest.raises(ValidationError, match="no make-up workdays"):
        YearArrangement(year=2027, published=False, source="x", make_up_workdays=[date(2027, 2, 20)])
    with pytest.raises(ValidationError, match="both"):
        YearArrangement(year=2027, published=True, source="x", holidays=[date(2027, 2, 20)],
                        make_up_workdays=[date(2027, 2, 20)])


def test_calendar_document_validation():
    document = load_calendar_document("cn")
    years = list(document.years)
    with pytest.raises(ValidationError, match="consecutive"):
        CalendarDocument.model_validate(document.model_dump() | {"years": [years[0], years[2]]})
    with pytest.raises(ValidationError, match="published years come before"):
        CalendarDocument.model_validate(document.model_dump() | {
            "years": [*years, YearArrangement(year=2028, published=True, source="x")]})
    assert [y.year for y in years] == [2024, 2025, 2026, 2027]
    assert [y.published for y in years] == [True, True, True, False]
    assert years[-1].source.startswith("holidays ")


def test_check_calendar_update_accepts_only_a_wider_calendar():
    base = default_policy()
    good = extend_policy(base, example_2027(), "cn-2027.1")
    base.check_calendar_update(good)
    cases = {
        "already runs": good.model_copy(update={"version": base.version}),
        "appeal": good.model_copy(update={"appeal": Window.days(11)}),
        "does not extend": good.model_copy(update={"calendar": base.calendar}),
        "weekend": good.model_copy(update={"calendar": good.calendar.model_copy(update={"weekend": (5, 6)})}),
        "published holidays": good.model_copy(update={"calendar": good.calendar.model_copy(
            update={"holidays": tuple(d for d in good.calendar.holidays if d != date(2026, 10, 7))})}),
    }
    for expected, candidate in cases.items():
        with pytest.raises(ValueError, match=expected):
            base.check_calendar_update(candidate)


# --- how long coverage is left: health, logs, metric --------------------------------


def test_calendar_coverage_warns_within_the_lead_time(caplog):
    policy = default_policy()
    ok = calendar_coverage(policy, 60, now=datetime(2026, 9, 1, 12, tzinfo=timezone.utc))
    assert (ok.status, ok.days_left, ok.covers_to) == ("ok", 121, date(2026, 12, 31))
    expiring = calendar_coverage(policy, 60, now=datetime(2026, 12, 1, 12, tzinfo=timezone.utc))
    assert (expiring.status, expiring.days_left) == ("expiring", 30)
    assert "load the next year's arrangement" in expiring.message
    # Counted in Beijing time: 16:00 UTC on Dec 31 is already Jan 1 there.
    expired = calendar_coverage(policy, 60, now=datetime(2026, 12, 31, 16, tzinfo=timezone.utc))
    assert (expired.status, expired.days_left) == ("expired", -1)
    logger = logging.getLogger("test.coverage")
    with caplog.at_level(logging.INFO, logger="test.coverage"):
        log_calendar_coverage(policy.model_copy(update={"calendar": policy.calendar.model_copy(
            update={"covers_to": date(9999, 12, 31)})}), 60, logger)
        log_calendar_coverage(policy.model_copy(update={"calendar": policy.calendar.model_copy(
            update={"covers_to": date(2000, 12, 31)})}), 60, logger)
    assert [r.levelno for r in caplog.records] == [logging.INFO, logging.WARNING]

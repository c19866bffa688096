"""The policy package: windows, the working-day calendar, presets and loading."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from policy import (
    Policy,
    PolicyLoadError,
    Window,
    WorkingCalendar,
    default_policy,
    demo_policy,
    load_calendar,
    load_policy,
)
from policy.calendars import generate

UTC = timezone.utc
CST = timezone(timedelta(hours=8))  # Beijing time, fixed offset


def cst(*args: int) -> datetime:
    return datetime(*args, tzinfo=CST)


@pytest.fixture(scope="module")
def cn() -> WorkingCalendar:
    return load_calendar("cn")


@pytest.fixture(scope="module")
def policy() -> Policy:
    return default_policy()


# --- Window ---------------------------------------------------------------------


def test_window_constructors():
    assert Window.hours(2).duration == timedelta(hours=2)
    assert Window.days(5).duration == timedelta(days=5)
    assert Window.seconds(30).duration == timedelta(seconds=30)
    assert Window.minutes(3).duration == timedelta(minutes=3)
    assert Window.working(2).working_days == 2
    assert Window.working(2).duration is None
    assert Window.working(2).is_working_days and not Window.hours(1).is_working_days


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"duration": timedelta(hours=1), "working_days": 1},
        {"duration": timedelta(0)},
        {"duration": timedelta(seconds=-1)},
        {"working_days": 0},
        {"working_days": -2},
        {"duration": timedelta(hours=1), "extra": 1},
    ],
)
def test_window_validation(kwargs):
    with pytest.raises(ValidationError):
        Window(**kwargs)


def test_window_is_frozen():
    w = Window.hours(1)
    with pytest.raises(ValidationError):
        w.duration = timedelta(hours=2)


# --- WorkingCalendar ------------------------------------------------------------


def test_cn_calendar_shape(cn):
    assert cn.name == "CN"
    assert cn.utc_offset == timedelta(hours=8)
    assert cn.weekend == (6, 7)
    assert cn.covers_from == date(2024, 1, 1)
    assert cn.covers_to == date(2026, 12, 31)


def test_ordinary_week(cn):
    assert cn.is_working_day(date(2025, 3, 14))  # Friday
    assert not cn.is_working_day(date(2025, 3, 15))  # Saturday
    assert not cn.is_working_day(date(2025, 3, 16))  # Sunday
    assert cn.is_working_day(date(2025, 3, 17))  # Monday


def test_national_day_2025(cn):
    # Oct 1-8 off (National Day with Mid-autumn); Sun Sep 28 and Sat Oct 11 worked.
    for day in range(1, 9):
        assert not cn.is_working_day(date(2025, 10, day)), day
    assert cn.is_working_day(date(2025, 9, 28))
    assert cn.is_working_day(date(2025, 10, 11))
    assert cn.is_working_day(date(2025, 10, 9))
    assert not cn.is_working_day(date(2025, 10, 12))


def test_is_working_day_rejects_datetime(cn):
    with pytest.raises(TypeError):
        cn.is_working_day(datetime(2025, 3, 14, tzinfo=UTC))


def test_weekend_skipped(cn):
    # Escalated Friday 15:00 Beijing, 2 working days -> Tuesday 15:00 Beijing.
    due = cn.add_working_days(cst(2025, 3, 14, 15, 0), 2)
    assert due == cst(2025, 3, 18, 15, 0)
    assert due.tzinfo == UTC
    assert due == datetime(2025, 3, 18, 7, 0, tzinfo=UTC)


def test_across_national_day(cn):
    # Tue Sep 30 2025 10:00 + 2 working days: Oct 1-8 skipped, Thu Oct 9 (1), Fri Oct 10 (2).
    assert cn.add_working_days(cst(2025, 9, 30, 10, 0), 2) == cst(2025, 10, 10, 10, 0)
    # + 3 lands on the make-up Saturday Oct 11.
    assert cn.add_working_days(cst(2025, 9, 30, 10, 0), 3) == cst(2025, 10, 11, 10, 0)
    # Fri Sep 26 15:00 + 2: Sat off, Sun Sep 28 is a make-up workday (1), Mon Sep 29 (2).
    assert cn.add_working_days(cst(2025, 9, 26, 15, 0), 2) == cst(2025, 9, 29, 15, 0)


def test_mediator_rule_across_national_day(policy):
    # 7 working days from escalation on Fri Sep 26 2025 12:00 Beijing:
    # Sep 28 (make-up), 29, 30, Oct 9, 10, 11 (make-up), 13 -> Mon Oct 13 12:00.
    assert policy.due_at(cst(2025, 9, 26, 12, 0), policy.mediator_rule) == cst(2025, 10, 13, 12, 0)


def test_start_on_holiday_counts_from_next_working_day(cn):
    # Thu Oct 2 2025 (holiday) 14:30: counting starts Thu Oct 9 00:00; +2 -> Sat Oct 11 00:00.
    assert cn.add_working_days(cst(2025, 10, 2, 14, 30), 2) == cst(2025, 10, 11, 0, 0)
    # A plain Saturday: counting starts Monday 00:00; +2 -> Wednesday 00:00.
    assert cn.add_working_days(cst(2025, 3, 15, 10, 0), 2) == cst(2025, 3, 19, 0, 0)


def test_zero_working_days(cn):
    start = cst(2025, 3, 14, 15, 0)
    assert cn.add_working_days(start, 0) == start
    assert cn.add_working_days(cst(2025, 3, 15, 10, 0), 0) == cst(2025, 3, 17, 0, 0)
    with pytest.raises(ValueError):
        cn.add_working_days(start, -1)


def test_utc_plus_8_day_boundary(cn):
    # Friday 15:59 UTC is Friday 23:59 in Beijing: a working day, local time kept,
    # so the result is Monday 23:59 Beijing = Monday 15:59 UTC.
    assert cn.add_working_days(datetime(2025, 3, 14, 15, 59, tzinfo=UTC), 1) == datetime(
        2025, 3, 17, 15, 59, tzinfo=UTC
    )
    # Friday 16:00 UTC is Saturday 00:00 in Beijing.
    assert cn.local_date(datetime(2025, 3, 14, 16, 0, tzinfo=UTC)) == date(2025, 3, 15)
    assert cn.add_working_days(datetime(2025, 3, 14, 16, 0, tzinfo=UTC), 1) == cst(2025, 3, 18, 0, 0)
    # Friday 17:00 UTC is already Saturday 01:00 in Beijing: counting starts Monday
    # 00:00 Beijing (Sunday 16:00 UTC); +1 -> Tuesday 00:00 Beijing.
    assert cn.local_date(datetime(2025, 3, 14, 17, 0, tzinfo=UTC)) == date(2025, 3, 15)
    assert cn.add_working_days(datetime(2025, 3, 14, 17, 0, tzinfo=UTC), 1) == datetime(
        2025, 3, 17, 16, 0, tzinfo=UTC
    )
    # Sunday 16:30 UTC is Monday 00:30 Beijing: a working day already.
    assert cn.add_working_days(datetime(2025, 3, 16, 16, 30, tzinfo=UTC), 1) == cst(2025, 3, 18, 0, 30)


def test_any_input_offset_is_accepted(cn):
    other = timezone(timedelta(hours=-5))
    start = datetime(2025, 3, 14, 2, 0, tzinfo=other)  # = Fri 15:00 Beijing
    assert cn.add_working_days(start, 2) == cst(2025, 3, 18, 15, 0)


def test_seconds_are_kept(cn):
    start = datetime(2025, 3, 14, 7, 0, 5, 123456, tzinfo=UTC)
    assert cn.add_working_days(start, 1) == datetime(2025, 3, 17, 7, 0, 5, 123456, tzinfo=UTC)


def test_naive_datetimes_are_rejected(cn, policy):
    with pytest.raises(ValueError, match="timezone-aware"):
        cn.add_working_days(datetime(2025, 3, 14, 15, 0), 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        policy.due_at(datetime(2025, 3, 14, 15, 0), Window.hours(1))


def test_outside_coverage_falls_back_to_weekends_and_statutory_holidays(cn):
    # 2027 has no published arrangement: its weekday statutory holidays are off (Fri Oct 1
    # 2027), other weekdays work (Mon Oct 4, which the arrangement may still give off).
    assert not cn.is_working_day(date(2027, 10, 1))
    assert not cn.is_working_day(date(2027, 10, 2))
    assert cn.is_working_day(date(2027, 10, 4))
    assert cn.add_working_days(cst(2027, 9, 30, 9, 0), 1) == cst(2027, 10, 4, 9, 0)
    # Before covers_from only weekends apply.
    assert cn.is_working_day(date(2023, 10, 2))
    # Crossing the end of coverage: Thu Dec 31 2026 + 1 -> Mon Jan 4 2027 (New Year's Day skipped).
    assert cn.add_working_days(cst(2026, 12, 31, 9, 0), 1) == cst(2027, 1, 4, 9, 0)
    # A calendar without provisional holidays knows only weekends past its coverage.
    bare = cn.model_copy(update={"provisional_holidays": ()})
    assert bare.add_working_days(cst(2026, 12, 31, 9, 0), 1) == cst(2027, 1, 1, 9, 0)


def test_custom_calendar_rules():
    base = dict(name="X", covers_from=date(2025, 1, 1), covers_to=date(2025, 12, 31))
    # Python weekday numbers (0..6) are not ISO weekdays: 0 is rejected.
    with pytest.raises(ValidationError):
        WorkingCalendar(**base, weekend=[0, 6])
    with pytest.raises(ValidationError):
        WorkingCalendar(**base, weekend=[1, 2, 3, 4, 5, 6, 7])
    with pytest.raises(ValidationError):
        WorkingCalendar(**base, holidays=[date(2025, 5, 5)], make_up_workdays=[date(2025, 5, 5)])
    with pytest.raises(ValidationError):
        WorkingCalendar(**base, holidays=[date(2026, 1, 1)])
    with pytest.raises(ValidationError):
        WorkingCalendar(**base, utc_offset=timedelta(hours=24))
    with pytest.raises(ValidationError):
        WorkingCalendar(name="X", covers_from=date(2025, 2, 1), covers_to=date(2025, 1, 1))
    # Friday/Saturday weekend, UTC.
    gulf = WorkingCalendar(**base, weekend=[5, 6])
    assert gulf.add_working_days(datetime(2025, 3, 13, 9, 0, tzinfo=UTC), 1) == datetime(
        2025, 3, 16, 9, 0, tzinfo=UTC
    )


# --- Calendar data against chinese_calendar --------------------------------------


def test_cn_data_matches_chinese_calendar(cn):
    chinese_calendar = pytest.importorskip("chinese_calendar")
    day = cn.covers_from
    mismatches = []
    while day <= cn.covers_to:
        if cn.is_working_day(day) != chinese_calendar.is_workday(day):
            mismatches.append(day)
        day += timedelta(days=1)
    assert mismatches == []


def test_cn_json_is_what_the_generator_writes():
    pytest.importorskip("chinese_calendar")
    committed = (Path(generate.__file__).with_name("cn.json")).read_text(encoding="utf-8")
    assert committed == generate.render(generate.build_document()), (
        "policy/calendars/cn.json is stale: run python -m policy.calendars.generate"
    )


def test_cn_covers_every_year_chinese_calendar_knows(cn):
    pytest.importorskip("chinese_calendar")
    from chinese_calendar import constants

    assert cn.covers_to == date(max(constants.holidays).year, 12, 31)


def test_runtime_does_not_import_chinese_calendar():
    code = (
        "import sys, policy\n"
        "p = policy.default_policy(); policy.demo_policy()\n"
        "assert p.calendar.holidays\n"
        "assert 'chinese_calendar' not in sys.modules\n"
        "assert 'holidays' not in sys.modules\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)


def test_model_is_pure():
    # Workflow-facing code: no clock, no tz database, no randomness, no file access.
    import policy.model

    source = Path(policy.model.__file__).read_text(encoding="utf-8")
    for forbidden in ("zoneinfo", ".now(", ".utcnow(", ".today(", "import random", "open(", "chinese_calendar"):
        assert forbidden not in source, forbidden


# --- Policy ---------------------------------------------------------------------


def test_default_policy_windows(policy):
    assert policy.version == "cn-2026.2"
    assert policy.seller_response_not_shipped == Window.hours(24)
    assert policy.seller_response_shipped_refund_only == Window.hours(36)
    assert policy.seller_response_return_and_refund == Window.hours(48)
    assert policy.buyer_response_after_refusal == Window.days(5)
    assert policy.buyer_response_to_offer == Window.days(5)
    assert policy.buyer_return_shipment == Window.days(7)
    assert policy.seller_confirm_return == Window.days(10)
    assert policy.mediator_take == Window.working(2)
    assert policy.mediator_take_urgent == Window.hours(2)
    assert policy.mediator_rule == Window.working(7)
    assert policy.evidence_response == Window.days(3)
    assert policy.evidence_response_after_buyer == Window.hours(24)
    assert policy.appeal == Window.days(10)
    assert policy.reminder_before == timedelta(hours=24)
    assert policy.max_resubmissions == 3
    assert set(policy.urgent_reasons) == {"safety", "personal_injury", "counterfeit"}
    assert policy.advance_payment_two_phase is True
    assert policy.guarantee_fund_floor == 0
    assert policy.calendar == load_calendar("cn")


def test_policy_helpers(policy):
    assert policy.seller_response_window(shipped=False, return_goods=False) == Window.hours(24)
    assert policy.seller_response_window(shipped=True, return_goods=False) == Window.hours(36)
    assert policy.seller_response_window(shipped=True, return_goods=True) == Window.hours(48)
    assert policy.is_urgent("counterfeit") and not policy.is_urgent("not_as_described")
    assert policy.mediator_take_window(urgent=True) == Window.hours(2)
    assert policy.mediator_take_window(urgent=False) == Window.working(2)


def test_due_at_exact_duration(policy):
    start = datetime(2025, 3, 14, 23, 30, tzinfo=UTC)
    # Exact durations ignore weekends and holidays.
    assert policy.due_at(start, policy.seller_response_shipped_refund_only) == datetime(
        2025, 3, 16, 11, 30, tzinfo=UTC
    )
    assert policy.due_at(start, Window.seconds(1)) == start + timedelta(seconds=1)
    due = policy.due_at(cst(2025, 3, 14, 8, 0), Window.hours(1))
    assert due == datetime(2025, 3, 14, 1, 0, tzinfo=UTC) and due.tzinfo == UTC


def test_demo_policy_is_seconds():
    demo = demo_policy()
    assert demo.version == "demo-3"
    windows = {
        name: getattr(demo, name) for name, field in Policy.model_fields.items() if field.annotation is Window
    }
    assert len(windows) == 15
    for name, window in windows.items():
        assert window.duration is not None and window.duration <= timedelta(minutes=5), name
    assert timedelta(0) < demo.reminder_before < min(w.duration for w in windows.values())
    # Same structure as the default: only values differ.
    assert demo.model_dump().keys() == default_policy().model_dump().keys()


def test_policy_requires_version_and_calendar(cn):
    with pytest.raises(ValidationError):
        Policy(calendar=cn)
    with pytest.raises(ValidationError):
        Policy(version="x")
    with pytest.raises(ValidationError):
        Policy(version="x", calendar=cn, max_resubmissions=-1)
    with pytest.raises(ValidationError):
        Policy(version="x", calendar=cn, reminder_before=timedelta(seconds=-1))


def test_policy_json_round_trip(policy):
    # What the workflow input records and a replay reads back.
    text = policy.model_dump_json()
    back = Policy.model_validate_json(text)
    assert back == policy
    assert back.calendar.add_working_days(cst(2025, 9, 30, 10, 0), 2) == cst(2025, 10, 10, 10, 0)
    # Also via plain JSON values (what a JSON data converter produces).
    again = Policy.model_validate(json.loads(json.dumps(policy.model_dump(mode="json"))))
    assert again == policy
    demo = demo_policy()
    assert Policy.model_validate_json(demo.model_dump_json()) == demo


def test_policy_is_frozen(policy):
    with pytest.raises(ValidationError):
        policy.version = "other"
    hash(policy)  # frozen with tuple fields: hashable


# --- reminder_at ----------------------------------------------------------------


def test_reminder_at(policy):
    now = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)
    due = now + timedelta(days=3)
    assert policy.reminder_at(due, now) == due - timedelta(hours=24)
    # Window no longer than reminder_before: the reminder time has come already -> skipped.
    assert policy.reminder_at(now + timedelta(hours=24), now) is None
    assert policy.reminder_at(now + timedelta(hours=2), now) is None
    assert policy.reminder_at(now + timedelta(hours=24, seconds=1), now) == now + timedelta(seconds=1)


def test_reminder_at_demo_and_disabled(cn):
    demo = demo_policy()
    now = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)
    due = demo.due_at(now, demo.seller_response_not_shipped)
    assert demo.reminder_at(due, now) == now + timedelta(seconds=50)
    off = Policy(version="x", calendar=cn, reminder_before=timedelta(0))
    assert off.reminder_at(now + timedelta(days=3), now) is None


# --- load_policy ----------------------------------------------------------------


def test_load_presets():
    assert load_policy("default") == default_policy()
    assert load_policy("demo") == demo_policy()


def test_load_policy_from_file(tmp_path):
    custom = default_policy().model_copy(
        update={"version": "cn-test", "appeal": Window.days(15), "mediator_take": Window.working(3)}
    )
    path = tmp_path / "policy.json"
    path.write_text(custom.model_dump_json(indent=2), encoding="utf-8")
    loaded = load_policy(str(path))
    assert loaded == custom
    assert loaded.appeal == Window.days(15)
    assert load_policy(path) == custom  # a Path works too


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"version": "x"}', "calendar"),
        (None, "appeal"),
    ],
)
def test_load_policy_bad_file(tmp_path, content, message):
    path = tmp_path / "bad.json"
    if content is None:
        data = json.loads(default_policy().model_dump_json())
        data["appeal"] = {"duration": "P1D", "working_days": 2}
        content = json.dumps(data)
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PolicyLoadError, match=message) as info:
        load_policy(str(path))
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_load_policy_missing_file(tmp_path):
    with pytest.raises(PolicyLoadError, match="no such file"):
        load_policy(str(tmp_path / "nope.json"))
    with pytest.raises(PolicyLoadError, match="'default', 'demo'"):
        load_policy("defualt")


def test_model_copy_sees_updated_calendar(cn):
    extra_day_off = cn.model_copy(update={"holidays": (*cn.holidays, date(2025, 3, 14))})
    assert cn.is_working_day(date(2025, 3, 14))
    assert not extra_day_off.is_working_day(date(2025, 3, 14))


def test_temporal_pydantic_converter_round_trip(policy):
    converter_module = pytest.importorskip("temporalio.contrib.pydantic")
    converter = converter_module.pydantic_data_converter.payload_converter
    (payload,) = converter.to_payloads([policy])
    (back,) = converter.from_payloads([payload], [Policy])
    assert back == policy
    assert back.due_at(cst(2025, 9, 26, 12, 0), back.mediator_rule) == cst(2025, 10, 13, 12, 0)

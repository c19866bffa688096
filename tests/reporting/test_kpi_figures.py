"""The KPIs the database computes, on a small hand-built set of report rows whose figures are
worked out by hand: nearest-rank percentiles with ties on the rank boundaries, a single value,
no values, sub-second times truncated; service levels running past due; cases reopened by an
appeal; several spot-checks of one case; two currencies. On SQLite and PostgreSQL. And while a
report is computed, writers (a case's money, an order) go on."""

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, insert

from database import make_engine, migrate, session
from policy import default_policy
from reporting.kpis import Breakdown, KpiReader, trends
from reporting.models import QualityCheck, QualitySample, ReportCase, ReportSla, SurveyInvitation
from tests.postgres import fresh_schema_engine, new_schema_name

T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
PERIOD = (T0, T0 + timedelta(days=1))
AS_OF = T0 + timedelta(days=10)


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


# Per case: the seconds after opening of the seller's and the platform's first action, of the close
# (with the outcome and who decided), and the rest. Response times, whole seconds:
# 60 30 60 60 60 120 120 3600 3600 86400 (c11 unanswered); resolution times of the closed:
# 3600 3600 3600 3600 7200 86400 86400 172800 259199 (c10 is reopened by its appeal).
CASES = {
    "c01": dict(seller=60.999999, closed=3600, outcome="SUCCESS", decided_by="seller:s1", requested=1000, refunded=1000),
    "c02": dict(seller=90, platform=30, closed=3600, outcome="SUCCESS", decided_by="buyer:b", requested=2000,
                refunded=2000),
    "c03": dict(platform=60, closed=3600, outcome="SUCCESS", decided_by="timer:seller_response", requested=3000,
                refunded=3000),
    "c04": dict(seller=60.5, closed=3600, outcome="CLOSED", decided_by="buyer:b2", requested=4000),
    "c05": dict(seller=60, platform=60, closed=7200, outcome="CLOSED", currency="EUR", requested=500),
    "c06": dict(seller=120, platform=600, closed=86400, outcome="SUCCESS", decided_by="mediator:mia", mediator="mia",
                ruled=3000, requested=6000, refunded=6000, advanced=6000),
    "c07": dict(seller=120.000001, platform=900, closed=86400, outcome="CLOSED", decided_by="mediator:mia",
                mediator="mia", ruled=4000, currency="EUR", requested=700),
    "c08": dict(seller=3600, platform=7200, closed=172800, outcome="SUCCESS", decided_by="mediator:sue",
                mediator="sue", ruled=9000, appeal_result="changed", requested=8000, refunded=4000),
    "c09": dict(seller=3600.9, platform=7000, closed=259199.999999, outcome="CLOSED", decided_by="platform",
                mediator="sue", ruled=9000, appeal_result="upheld", requested=9000),
    "c10": dict(seller=86400, platform=90000, closed=172800, mediator="sue", ruled=100000, appealed=True,
                requested=10000, refunded=10000, advanced=2500),
    "c11": dict(urgent=True, currency="EUR", requested=1100),
}
ESCALATED = {"c06", "c07", "c08", "c09", "c10", "c11"}
# name: (case, outcome or None while running, due after opening in seconds)
SLAS = [
    ("ordinary_answered", "c01", "met", 86400), ("ordinary_answered", "c02", "met", 86400),
    ("ordinary_answered", "c03", "breached", 86400), ("ordinary_answered", "c04", "void", 86400),
    ("ordinary_answered", "c05", None, 20 * 86400),  # running, due after AS_OF
    ("ordinary_answered", "c06", None, 86400),  # running past due: breached
    ("urgent_acted_on", "c11", None, 7200),
    *(("first_investigation", case, "met", 86400) for case in ("c06", "c07", "c08", "c09")),
    ("first_investigation", "c10", "breached", 86400),
]


def _row(n: int, case: str, facts: dict) -> dict:
    opened = T0 + timedelta(minutes=n)

    def at(name: str) -> datetime | None:
        return opened + s(facts[name]) if name in facts else None

    return dict(
        dispute_id=case, seq=1, order_id=f"o-{case}", buyer_id="b", seller_id="s1" if n < 6 else "s2",
        reason="quality", urgent=facts.get("urgent", False), currency=facts.get("currency", "CNY"),
        requested=facts["requested"], refunded=facts.get("refunded", 0), advanced=facts.get("advanced", 0),
        state=facts.get("outcome", "OPEN"), outcome=facts.get("outcome"), decided_by=facts.get("decided_by"),
        opened_at=opened, seller_first_action_at=at("seller"), platform_first_action_at=at("platform"),
        escalated_at=opened + s(300) if case in ESCALATED else None, mediator_id=facts.get("mediator"),
        ruled_at=at("ruled"), closed_at=at("closed"),
        appealed_at=at("ruled") if "appeal_result" in facts or facts.get("appealed") else None,
        appeal_result=facts.get("appeal_result"))


@pytest.fixture(params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path}/kpis.db")
        migrate(engine)
        yield engine
        engine.dispose()
    else:
        with fresh_schema_engine(new_schema_name("df_kpis")) as engine:
            yield engine


def _fill(engine: Engine) -> None:
    rows = [_row(n, case, facts) for n, (case, facts) in enumerate(CASES.items())]
    opened = {row["dispute_id"]: row["opened_at"] for row in rows}
    outside = [dict(rows[0], dispute_id="before", opened_at=T0 - s(1)),  # the period is [from, to)
               dict(rows[0], dispute_id="at-end", opened_at=PERIOD[1])]
    with engine.begin() as db:
        db.execute(insert(ReportCase), rows + outside)
        db.execute(insert(ReportSla), [
            dict(id=f"{case}:{name}", dispute_id=case, name=name, started_at=opened[case],
                 due_at=opened[case] + s(due), outcome=outcome) for name, case, outcome, due in SLAS]
            + [dict(id="before:ordinary_answered", dispute_id="before", name="ordinary_answered",
                    started_at=T0, due_at=T0, outcome="met")])
        db.execute(insert(QualitySample), [
            dict(id=sample, closed_from=T0, closed_to=AS_OF, share=0.1, seed=1, drawn_by="q", drawn_at=AS_OF, strata={})
            for sample in ("qs-1", "qs-2")])
        db.execute(insert(QualityCheck), [  # c06 checked twice, c08 drawn but not yet reviewed
            dict(sample_id="qs-1", dispute_id="c01", verdict="correct"),
            dict(sample_id="qs-1", dispute_id="c06", verdict="mishandled"),
            dict(sample_id="qs-2", dispute_id="c06", verdict="correct"),
            dict(sample_id="qs-1", dispute_id="c07", verdict="mishandled"),
            dict(sample_id="qs-1", dispute_id="c08", verdict=None),
            dict(sample_id="qs-1", dispute_id="before", verdict="mishandled")])
        db.execute(insert(SurveyInvitation), [
            dict(id=f"{case}-{role}", dispute_id=case, role=role, party_id=role, due_at=AS_OF, rating=rating)
            for case, role, rating in [("c01", "buyer", 5), ("c01", "seller", 4), ("c02", "buyer", 1),
                                       ("c06", "buyer", 5), ("c08", "buyer", 3), ("c09", "buyer", None),
                                       ("before", "buyer", 1)]])


def _percentiles(count: int, p50: int | None, p90: int | None, p99: int | None) -> dict:
    return {"count": count, "p50": p50, "p90": p90, "p99": p99}


def test_the_figures_the_database_computes(engine: Engine) -> None:
    _fill(engine)
    reader = KpiReader(engine)
    report = reader.report(*PERIOD, default_policy(), as_of=AS_OF, by=Breakdown.MEDIATOR)
    assert report.overall.model_dump() == {
        "group": None, "cases": 11, "closed": 9,
        "service_levels": [
            {"name": "ordinary_answered", "target_share": 0.95, "measured": 4, "met": 2, "breached": 2, "running": 1,
             "compliance": 0.5, "meets_target": False},
            {"name": "urgent_acted_on", "target_share": 0.95, "measured": 1, "met": 0, "breached": 1, "running": 0,
             "compliance": 0.0, "meets_target": False},
            {"name": "first_investigation", "target_share": 0.95, "measured": 5, "met": 4, "breached": 1,
             "running": 0, "compliance": 0.8, "meets_target": False},
            {"name": "proposed_solution", "target_share": 0.95, "measured": 0, "met": 0, "breached": 0, "running": 0,
             "compliance": None, "meets_target": None},
        ],
        # 10 values: p50 is the 5th (60, the 6th is 120), p90 the 9th (3600, the 10th is 86400).
        "response_seconds": _percentiles(10, 60, 3600, 86400),
        # 9 values: p50 is the 5th (7200, the 4th is 3600), p90 and p99 the 9th (259199.999999 truncated).
        "resolution_seconds": _percentiles(9, 7200, 259199, 259199),
        "first_contact_resolution": 0.5556, "escalation_rate": 0.5455,
        "outcomes": {"CLOSED": 4, "SUCCESS": 5},
        "decided_by": {"buyer": 2, "mediator": 3, "platform": 1, "seller": 1, "timer": 1, "unknown": 1},
        "amounts": [{"currency": "CNY", "requested": 43000, "refunded": 16000, "advanced": 8500},
                    {"currency": "EUR", "requested": 2300, "refunded": 0, "advanced": 0}],
        "ruled": 5, "appealed": 3, "appeal_rate": 0.6, "appeals_changed": 1, "appeal_change_rate": 0.3333,
        "spot_checked": 3, "mishandled": 2,
        "satisfaction": {"answers": 5, "average": 3.6, "ratings": {1: 1, 3: 1, 4: 1, 5: 2}},
    }
    groups = {g.group: g for g in report.groups}
    assert list(groups) == ["", "mia", "sue"]
    assert [(g.response_seconds.model_dump(), g.resolution_seconds.model_dump()) for g in groups.values()] == [
        (_percentiles(5, 60, 60, 60), _percentiles(5, 3600, 7200, 7200)),  # c01-c05 and c11
        (_percentiles(2, 120, 120, 120), _percentiles(2, 86400, 86400, 86400)),  # all tied
        (_percentiles(3, 3600, 86400, 86400), _percentiles(2, 172800, 259199, 259199)),
    ]
    assert [(g.cases, g.closed, g.spot_checked, g.mishandled, g.appealed, g.satisfaction.answers)
            for g in groups.values()] == [(6, 5, 1, 0, 0, 3), (2, 2, 2, 2, 0, 1), (3, 2, 0, 0, 3, 1)]

    urgency = reader.report(*PERIOD, default_policy(), as_of=AS_OF, by=Breakdown.URGENCY).groups
    assert [(g.group, g.cases, g.response_seconds.count, g.response_seconds.p50, g.resolution_seconds.model_dump())
            for g in urgency] == [("ordinary", 10, 10, 60, _percentiles(9, 7200, 259199, 259199)),
                                  ("urgent", 1, 0, None, _percentiles(0, None, None, None))]


def test_an_empty_period_has_zero_figures(engine: Engine) -> None:
    _fill(engine)
    report = KpiReader(engine).report(PERIOD[1] + s(1), PERIOD[1] + s(2), default_policy(), as_of=AS_OF,
                                      by=Breakdown.SELLER)
    overall = report.overall
    assert (overall.cases, overall.closed, overall.outcomes, overall.amounts, overall.spot_checked) == (0, 0, {}, [], 0)
    assert overall.response_seconds.model_dump() == _percentiles(0, None, None, None)
    assert [level.measured for level in overall.service_levels] == [0, 0, 0, 0]
    assert (overall.satisfaction.answers, overall.satisfaction.average) == (0, None)
    assert (report.groups, report.sellers) == ([], [])


def _writes_while(engine: Engine, report: Callable[[], object]) -> bool:
    """Whether a write from another thread commits while `report` is between two of its queries."""
    committed: list[bool] = []
    writers: list[threading.Thread] = []

    def write() -> None:
        with session(engine) as db:
            db.execute(insert(SurveyInvitation), [dict(id=f"meanwhile-{uuid.uuid4().hex}", dispute_id="c01",
                                                       role="buyer", party_id="b", due_at=AS_OF)])

    def meanwhile(*_: object) -> None:
        if writers:  # the report's later queries, and the writer's own
            return
        writers.append(threading.Thread(target=write))
        writers[0].start()
        writers[0].join(timeout=20)  # queued behind the report, it would wait 30 s for the queue
        committed.append(not writers[0].is_alive())

    event.listen(engine, "after_cursor_execute", meanwhile)
    try:
        report()
    finally:
        event.remove(engine, "after_cursor_execute", meanwhile)
    writers[0].join()
    return committed == [True]


def test_a_report_holds_up_no_writer(engine: Engine) -> None:
    # On SQLite a report that took the write lock would stop every case's money and every order
    # for as long as it computes (seconds at 100,000 cases, README "Reporting").
    _fill(engine)
    assert _writes_while(engine, lambda: KpiReader(engine).report(*PERIOD, default_policy(), as_of=AS_OF,
                                                                  by=Breakdown.SELLER))
    assert _writes_while(engine, lambda: trends(engine, *PERIOD))

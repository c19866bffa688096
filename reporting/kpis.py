"""The managers' figures over a period: the cases opened in it, from the reporting tables.

One read of the period's rows (cases, their service levels, verdicts, ratings); every figure and
every breakdown is computed from those rows the same way, on SQLite and PostgreSQL alike.
Percentiles are nearest-rank (an observed value, so figures are exact), times in seconds."""

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import Engine, Row, and_, func, select

from orders.models import Order
from policy import Policy
from reporting.models import QualityCheck, ReportCase, ReportSla, SurveyInvitation, Verdict


class Breakdown(StrEnum):
    REASON = "reason"
    SELLER = "seller"
    MEDIATOR = "mediator"
    URGENCY = "urgency"
    OUTCOME = "outcome"


class Percentiles(BaseModel):
    count: int
    p50: int | None
    p90: int | None
    p99: int | None


class SlaCompliance(BaseModel):
    name: str
    target_share: float
    # Decided: met or breached (a running one past its due time is breached); void ones are not counted.
    measured: int
    met: int
    breached: int
    running: int
    compliance: float | None
    meets_target: bool | None


class Amounts(BaseModel):
    currency: str
    requested: int
    refunded: int
    advanced: int


class Satisfaction(BaseModel):
    answers: int
    average: float | None
    ratings: dict[int, int]


class Kpis(BaseModel):
    # The breakdown's value (None for the whole period; "" for cases without one, e.g. no mediator).
    group: str | None = None
    cases: int
    closed: int
    service_levels: list[SlaCompliance]
    response_seconds: Percentiles
    resolution_seconds: Percentiles
    # Closed in negotiation, the platform never asked to intervene.
    first_contact_resolution: float | None
    escalation_rate: float | None
    outcomes: dict[str, int]
    # Who decided the closed cases: buyer, seller, mediator, platform or timer.
    decided_by: dict[str, int]
    amounts: list[Amounts]
    ruled: int
    appealed: int
    # Appeals per ruled case, and how often an appeal changed the ruling.
    appeal_rate: float | None
    appeals_changed: int
    appeal_change_rate: float | None
    spot_checked: int
    mishandled: int
    satisfaction: Satisfaction


class SellerRates(BaseModel):
    seller_id: str
    disputes: int
    # Orders the seller registered up to the period's end.
    orders: int
    dispute_rate: float | None
    refunded: int
    refund_rate: float | None


class KpiReport(BaseModel):
    opened_from: datetime
    opened_to: datetime
    as_of: datetime
    overall: Kpis
    by: Breakdown | None = None
    groups: list[Kpis] = []
    sellers: list[SellerRates] = []


@dataclass
class _Case:
    row: Row  # of report_cases
    slas: list[Row]  # of report_slas
    mishandled: bool
    checked: bool
    ratings: list[int]


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def percentiles(values: Iterable[float]) -> Percentiles:
    ordered = sorted(values)

    def rank(p: int) -> int | None:
        return int(ordered[max(math.ceil(p / 100 * len(ordered)), 1) - 1]) if ordered else None

    return Percentiles(count=len(ordered), p50=rank(50), p90=rank(90), p99=rank(99))


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start is not None and end is not None else None


def _first_response(row: ReportCase) -> datetime | None:
    answers = [t for t in (row.seller_first_action_at, row.platform_first_action_at) if t is not None]
    return min(answers, default=None)


def _group_key(by: Breakdown) -> Callable[[ReportCase], str]:
    return {
        Breakdown.REASON: lambda r: r.reason,
        Breakdown.SELLER: lambda r: r.seller_id,
        Breakdown.MEDIATOR: lambda r: r.mediator_id or "",
        Breakdown.URGENCY: lambda r: "urgent" if r.urgent else "ordinary",
        Breakdown.OUTCOME: lambda r: r.outcome or "",
    }[by]


class KpiReader:
    def __init__(self, engine: Engine):
        self._engine = engine

    def report(self, opened_from: datetime, opened_to: datetime, policy: Policy, *, as_of: datetime,
               by: Breakdown | None = None) -> KpiReport:
        cases = self._cases(opened_from, opened_to)
        report = KpiReport(opened_from=opened_from, opened_to=opened_to, as_of=as_of,
                           overall=_kpis(cases, policy, as_of), by=by)
        if by is not None:
            key = _group_key(by)
            groups: dict[str, list[_Case]] = defaultdict(list)
            for case in cases:
                groups[key(case.row)].append(case)
            report.groups = [_kpis(members, policy, as_of, group=name) for name, members in sorted(groups.items())]
            if by == Breakdown.SELLER:
                report.sellers = self._seller_rates(groups, opened_to)
        return report

    def _cases(self, opened_from: datetime, opened_to: datetime) -> list[_Case]:
        in_period = and_(ReportCase.opened_at >= opened_from, ReportCase.opened_at < opened_to)
        with self._engine.connect() as db:
            # Rows, not model instances: a year's cases are read in one go.
            rows = list(db.execute(select(ReportCase.__table__).where(in_period)))
            slas: dict[str, list[Row]] = defaultdict(list)
            for sla in db.execute(select(ReportSla.dispute_id, ReportSla.name, ReportSla.due_at, ReportSla.outcome)
                                  .join(ReportCase, ReportCase.dispute_id == ReportSla.dispute_id).where(in_period)):
                slas[sla.dispute_id].append(sla)
            verdicts: dict[str, list[str | None]] = defaultdict(list)
            for dispute_id, verdict in db.execute(
                    select(QualityCheck.dispute_id, QualityCheck.verdict)
                    .join(ReportCase, ReportCase.dispute_id == QualityCheck.dispute_id).where(in_period)):
                verdicts[dispute_id].append(verdict)
            ratings: dict[str, list[int]] = defaultdict(list)
            for dispute_id, rating in db.execute(
                    select(SurveyInvitation.dispute_id, SurveyInvitation.rating)
                    .join(ReportCase, ReportCase.dispute_id == SurveyInvitation.dispute_id)
                    .where(in_period, SurveyInvitation.rating.is_not(None))):
                ratings[dispute_id].append(rating)
        return [_Case(row=row, slas=slas[row.dispute_id], mishandled=Verdict.MISHANDLED in verdicts[row.dispute_id],
                      checked=any(v is not None for v in verdicts[row.dispute_id]), ratings=ratings[row.dispute_id])
                for row in rows]

    def _seller_rates(self, groups: dict[str, list[_Case]], opened_to: datetime) -> list[SellerRates]:
        with self._engine.connect() as db:
            orders = dict(db.execute(select(Order.seller_id, func.count()).where(
                Order.seller_id.in_(list(groups)), Order.created_at < opened_to).group_by(Order.seller_id)).all())
        rates = []
        for seller, cases in sorted(groups.items()):
            refunded = sum(1 for c in cases if c.row.refunded > 0 or c.row.advanced > 0)
            rates.append(SellerRates(seller_id=seller, disputes=len(cases), orders=orders.get(seller, 0),
                                     dispute_rate=_rate(len(cases), orders.get(seller, 0)),
                                     refunded=refunded, refund_rate=_rate(refunded, len(cases))))
        return rates


def _kpis(cases: list[_Case], policy: Policy, as_of: datetime, group: str | None = None) -> Kpis:
    rows = [c.row for c in cases]
    closed = [r for r in rows if r.outcome is not None]
    ruled = [r for r in rows if r.ruled_at is not None]
    appealed = [r for r in ruled if r.appealed_at is not None]
    changed = sum(1 for r in appealed if r.appeal_result == "changed")
    amounts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        total = amounts[r.currency]
        total[0] += r.requested
        total[1] += r.refunded if r.outcome is not None else 0
        total[2] += r.advanced
    ratings = [rating for c in cases for rating in c.ratings]
    return Kpis(
        group=group, cases=len(rows), closed=len(closed),
        service_levels=[_compliance(level.name, level.target_share, cases, as_of) for level in policy.service_levels],
        response_seconds=percentiles(s for r in rows if (s := _seconds(r.opened_at, _first_response(r))) is not None),
        resolution_seconds=percentiles(s for r in closed if (s := _seconds(r.opened_at, r.closed_at)) is not None),
        first_contact_resolution=_rate(sum(1 for r in closed if r.escalated_at is None), len(closed)),
        escalation_rate=_rate(sum(1 for r in rows if r.escalated_at is not None), len(rows)),
        outcomes=dict(sorted(Counter(r.outcome for r in closed).items())),
        decided_by=dict(sorted(Counter((r.decided_by or "unknown").split(":")[0] for r in closed).items())),
        amounts=[Amounts(currency=c, requested=t[0], refunded=t[1], advanced=t[2]) for c, t in sorted(amounts.items())],
        ruled=len(ruled), appealed=len(appealed), appeal_rate=_rate(len(appealed), len(ruled)),
        appeals_changed=changed, appeal_change_rate=_rate(changed, len(appealed)),
        spot_checked=sum(1 for c in cases if c.checked), mishandled=sum(1 for c in cases if c.mishandled),
        satisfaction=Satisfaction(answers=len(ratings),
                                  average=round(sum(ratings) / len(ratings), 2) if ratings else None,
                                  ratings=dict(sorted(Counter(ratings).items()))),
    )


def _compliance(name: str, target_share: float, cases: list[_Case], as_of: datetime) -> SlaCompliance:
    met = breached = running = 0
    for case in cases:
        for sla in case.slas:
            if sla.name != name:
                continue
            if sla.outcome == "met":
                met += 1
            elif sla.outcome == "breached" or (sla.outcome is None and sla.due_at <= as_of):
                breached += 1
            elif sla.outcome is None:
                running += 1
    measured = met + breached
    compliance = _rate(met, measured)
    return SlaCompliance(name=name, target_share=target_share, measured=measured, met=met, breached=breached,
                         running=running, compliance=compliance,
                         meets_target=compliance >= target_share if compliance is not None else None)


class TrendRow(BaseModel):
    key: str
    cases: int


class WeekRow(BaseModel):
    week_of: datetime
    reason: str
    cases: int


class Trends(BaseModel):
    opened_from: datetime
    opened_to: datetime
    reasons: list[TrendRow]
    sellers: list[TrendRow]
    # Cases per reason per week (weeks start on Monday, UTC), for the weekly review.
    weeks: list[WeekRow]


def trends(engine: Engine, opened_from: datetime, opened_to: datetime, *, limit: int = 10) -> Trends:
    """The most frequent problem types and the sellers with the most disputes in a period."""
    in_period = and_(ReportCase.opened_at >= opened_from, ReportCase.opened_at < opened_to)
    count = func.count().label("cases")
    with engine.connect() as db:
        reasons = db.execute(select(ReportCase.reason, count).where(in_period).group_by(ReportCase.reason)
                             .order_by(count.desc(), ReportCase.reason).limit(limit)).all()
        sellers = db.execute(select(ReportCase.seller_id, count).where(in_period).group_by(ReportCase.seller_id)
                             .order_by(count.desc(), ReportCase.seller_id).limit(limit)).all()
        opened = db.execute(select(ReportCase.reason, ReportCase.opened_at).where(in_period)).all()
    weeks = Counter((_week_of(at), reason) for reason, at in opened)
    return Trends(opened_from=opened_from, opened_to=opened_to,
                  reasons=[TrendRow(key=k, cases=n) for k, n in reasons],
                  sellers=[TrendRow(key=k, cases=n) for k, n in sellers],
                  weeks=[WeekRow(week_of=week, reason=reason, cases=n) for (week, reason), n in sorted(weeks.items())])


def _week_of(at: datetime) -> datetime:
    return (at - timedelta(days=at.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)

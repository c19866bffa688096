"""The managers' figures over a period: the cases opened in it, from the reporting tables.

The database computes every figure (a few GROUP BY queries, the same for the whole period and
for a breakdown's groups), so a year's cases never travel to Python, and each figure has one
definition for SQLite and PostgreSQL alike. Percentiles are nearest-rank (the k-th smallest
value, k = ceil(p * n): an observed value, so figures are exact), times in whole seconds."""

from collections import Counter, defaultdict
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import (BigInteger, ColumnElement, Connection, Engine, Row, String, and_, case, cast, distinct, func,
                        literal_column, null, select)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import Subquery
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import SQLModel

from database import reading
from orders.models import Order
from policy import Policy, ServiceLevel
from reporting.breakdown import Breakdown
from reporting.models import QualityCheck, ReportCase, ReportSla, SurveyInvitation, Verdict


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


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """How many of the group's rows meet `condition`."""
    return func.count(case((condition, 1)))


def _total(value: ColumnElement[int]) -> ColumnElement[int]:
    return cast(func.coalesce(func.sum(value), 0), BigInteger)


class _Seconds(FunctionElement):
    """Whole seconds from the first timestamp to the second, truncated like `int(timedelta.total_seconds())`."""

    type = BigInteger()
    inherit_cache = True


@compiles(_Seconds, "postgresql")
def _seconds_on_postgres(element: _Seconds, compiler: SQLCompiler, **kw: object) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"CAST(trunc(extract(epoch FROM {end} - {start})) AS BIGINT)"


@compiles(_Seconds, "sqlite")
def _seconds_on_sqlite(element: _Seconds, compiler: SQLCompiler, **kw: object) -> str:
    # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff'. SQLite's date functions round to milliseconds, so the
    # whole seconds and the microseconds are read apart; integer division truncates.
    def micros(at: str) -> str:
        return (f"(CAST(strftime('%s', substr({at}, 1, 19)) AS INTEGER) * 1000000"
                f" + CAST(substr({at}, 21, 6) AS INTEGER))")

    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"(({micros(end)} - {micros(start)}) / 1000000)"


class _Kind(FunctionElement):
    """The text before the first ':' (all of it without one), like `str.split(":")[0]`."""

    type = String()
    inherit_cache = True


@compiles(_Kind, "postgresql")
def _kind_on_postgres(element: _Kind, compiler: SQLCompiler, **kw: object) -> str:
    return f"split_part({compiler.process(element.clauses, **kw)}, ':', 1)"


@compiles(_Kind, "sqlite")
def _kind_on_sqlite(element: _Kind, compiler: SQLCompiler, **kw: object) -> str:
    text = compiler.process(element.clauses, **kw)
    return f"substr({text}, 1, instr({text} || ':', ':') - 1)"


def _text(value: str) -> ColumnElement[str]:
    """A constant written into the SQL, so PostgreSQL sees a GROUP BY expression as the selected one."""
    return literal_column(f"'{value}'", String)


_GROUP_KEYS: dict[Breakdown, ColumnElement[str]] = {
    Breakdown.REASON: ReportCase.reason,
    Breakdown.SELLER: ReportCase.seller_id,
    Breakdown.MEDIATOR: func.coalesce(ReportCase.mediator_id, _text("")),
    Breakdown.URGENCY: case((ReportCase.urgent, _text("urgent")), else_=_text("ordinary")),
    Breakdown.OUTCOME: func.coalesce(ReportCase.outcome, _text("")),
}
_CLOSED = ReportCase.outcome.is_not(None)
_RULED = ReportCase.ruled_at.is_not(None)
_APPEALED = _RULED & ReportCase.appealed_at.is_not(None)
_ESCALATED = ReportCase.escalated_at.is_not(None)


def _first_response() -> ColumnElement[datetime]:
    """The earlier of the seller's and the platform's first action (the one there is, if only one)."""
    seller, platform = ReportCase.seller_first_action_at, ReportCase.platform_first_action_at
    return case((seller.is_(None), platform), (platform.is_(None) | (seller <= platform), seller), else_=platform)


class _Period:
    """The cases opened in a period, grouped by the database: all in one group (None), or by `key`."""

    def __init__(self, db: Connection, opened_from: datetime, opened_to: datetime, key: ColumnElement[str] | None):
        self.db, self._key, self.grouped = db, key, key is not None
        self.opened = and_(ReportCase.opened_at >= opened_from, ReportCase.opened_at < opened_to)

    def _group(self) -> ColumnElement[str | None]:
        return (self._key if self.grouped else null()).label("grp")

    def rows(self, *figures: ColumnElement, by: tuple[ColumnElement, ...] = (), of: type[SQLModel] = ReportCase,
             where: ColumnElement[bool] | None = None) -> dict[str | None, list[Row]]:
        """Per group, the row (or with `by`, the rows per value of `by`) of the aggregate `figures`
        over the period's cases, or over the rows `of` another table that belong to them."""
        query = select(self._group(), *by, *figures).where(self.opened)
        if of is not ReportCase:
            query = query.select_from(of).join(ReportCase, ReportCase.dispute_id == of.dispute_id)
        if where is not None:
            query = query.where(where)
        keys = (self._key,) if self.grouped else ()
        groups: dict[str | None, list[Row]] = defaultdict(list)
        for row in self.db.execute(query.group_by(*keys, *by)):
            groups[row.grp].append(row)
        return groups

    def percentiles(self, **measures: tuple[ColumnElement[int], ColumnElement[bool]]
                    ) -> dict[str, dict[str | None, Percentiles]]:
        """Per measure (its value, over the cases meeting its condition) and per group, the
        nearest-rank p50, p90 and p99."""
        fractions = (0.5, 0.9, 0.99)
        found: dict[str, list[tuple[str | None, int, list[int | None]]]] = {}
        if self.db.dialect.name == "postgresql":
            # One pass: percentile_disc and count leave out the NULL of a case the measure skips.
            values = select(self._group(), *(case((where, value)).label(name)
                                             for name, (value, where) in measures.items())).where(self.opened).subquery()
            group, grouped = self._grouping(values)
            query = select(group, *(column for name in measures for column in (
                func.count(values.c[name]), func.percentile_disc(postgresql.array(fractions)).within_group(values.c[name])
            ))).group_by(*grouped)
            rows = self.db.execute(query).all()
            for n, name in enumerate(measures):
                found[name] = [(row[0], row[1 + 2 * n], row[2 + 2 * n] or [None] * len(fractions)) for row in rows]
        else:
            # As percentile_disc: the value ranked r where r - 1 < p * n <= r (that is, r = ceil(p * n)).
            for name, (value, where) in measures.items():
                values = select(self._group(), value.label("v")).where(self.opened, where).subquery()
                _, grouped = self._grouping(values)
                ranked = select(values.c.grp, values.c.v,
                                func.row_number().over(partition_by=grouped or None, order_by=values.c.v).label("r"),
                                func.count().over(partition_by=grouped or None).label("n")).subquery()
                group, grouped = self._grouping(ranked)
                r, n = ranked.c.r, ranked.c.n
                picks = [func.max(case((and_(r - 1 < f * n, f * n <= r), ranked.c.v))) for f in fractions]
                query = select(group, func.count(), *picks).group_by(*grouped)
                found[name] = [(grp, count, picked) for grp, count, *picked in self.db.execute(query)]
        return {name: {grp: Percentiles(count=count, p50=picked[0], p90=picked[1], p99=picked[2])
                       for grp, count, picked in rows} for name, rows in found.items()}

    def _grouping(self, source: Subquery) -> tuple[ColumnElement, tuple[ColumnElement, ...]]:
        """The group column of `source` to select and to group by; for the whole period a constant
        and no GROUP BY (PostgreSQL refuses a column outside one)."""
        return (source.c.grp, (source.c.grp,)) if self.grouped else (null(), ())


_NO_VALUES = Percentiles(count=0, p50=None, p90=None, p99=None)


class KpiReader:
    def __init__(self, engine: Engine):
        self._engine = engine

    def report(self, opened_from: datetime, opened_to: datetime, policy: Policy, *, as_of: datetime,
               by: Breakdown | None = None) -> KpiReport:
        # A read of its own: on SQLite a report would otherwise hold every writer (cases' money,
        # orders) for as long as it computes.
        with reading(self._engine) as session:
            db = session.connection()
            overall = _kpis(_Period(db, opened_from, opened_to, None), policy, as_of)
            report = KpiReport(opened_from=opened_from, opened_to=opened_to, as_of=as_of, overall=overall[None], by=by)
            if by is not None:
                period = _Period(db, opened_from, opened_to, _GROUP_KEYS[by])
                groups = _kpis(period, policy, as_of)
                report.groups = [groups[name] for name in sorted(groups)]
                if by == Breakdown.SELLER:
                    report.sellers = _seller_rates(period, opened_to)
        return report


def _kpis(period: _Period, policy: Policy, as_of: datetime) -> dict[str | None, Kpis]:
    """Every group's figures, from one query per table and one for the percentiles."""
    # One pass over the cases: their counts and sums per group, outcome, decider and currency, added up below.
    kind = _Kind(func.coalesce(ReportCase.decided_by, _text("unknown"))).label("kind")
    cases = period.rows(func.count().label("cases"), _count(_CLOSED).label("closed"),
                        _count(_CLOSED & ~_ESCALATED).label("first_contact"), _count(_ESCALATED).label("escalated"),
                        _count(_RULED).label("ruled"), _count(_APPEALED).label("appealed"),
                        _count(_APPEALED & (ReportCase.appeal_result == "changed")).label("changed"),
                        _total(ReportCase.requested).label("requested"),
                        _total(case((_CLOSED, ReportCase.refunded), else_=0)).label("refunded"),
                        _total(ReportCase.advanced).label("advanced"),
                        by=(ReportCase.outcome, kind, ReportCase.currency))
    running = ReportSla.outcome.is_(None)
    levels = period.rows(_count(ReportSla.outcome == "met").label("met"),
                         _count((ReportSla.outcome == "breached") | (running & (ReportSla.due_at <= as_of))).label(
                             "breached"),
                         _count(running & (ReportSla.due_at > as_of)).label("running"),
                         by=(ReportSla.name,), of=ReportSla)
    checks = period.rows(
        func.count(distinct(case((QualityCheck.verdict.is_not(None), QualityCheck.dispute_id)))).label("checked"),
        func.count(distinct(case((QualityCheck.verdict == Verdict.MISHANDLED, QualityCheck.dispute_id)))).label(
            "mishandled"), of=QualityCheck)
    ratings = period.rows(func.count().label("n"), by=(SurveyInvitation.rating,), of=SurveyInvitation,
                          where=SurveyInvitation.rating.is_not(None))
    times = period.percentiles(
        response=(_Seconds(ReportCase.opened_at, _first_response()), _first_response().is_not(None)),
        resolution=(_Seconds(ReportCase.opened_at, ReportCase.closed_at), _CLOSED & ReportCase.closed_at.is_not(None)))

    def figures(group: str | None, parts: list[Row]) -> Kpis:
        c = Counter[str]()
        outcomes, deciders, amounts = Counter[str](), Counter[str](), defaultdict(Counter[str])
        for part in parts:
            c.update({name: getattr(part, name) for name in _CASE_COUNTS})
            if part.closed:
                outcomes[part.outcome] += part.closed
                deciders[part.kind] += part.closed
            amounts[part.currency].update(requested=part.requested, refunded=part.refunded, advanced=part.advanced)
        slas = {row.name: row for row in levels[group]}
        checked = checks[group][0] if checks[group] else None
        rated = {row.rating: row.n for row in ratings[group]}
        answers = sum(rated.values())
        return Kpis(
            group=group, cases=c["cases"], closed=c["closed"],
            service_levels=[_compliance(level, slas.get(level.name)) for level in policy.service_levels],
            response_seconds=times["response"].get(group, _NO_VALUES),
            resolution_seconds=times["resolution"].get(group, _NO_VALUES),
            first_contact_resolution=_rate(c["first_contact"], c["closed"]),
            escalation_rate=_rate(c["escalated"], c["cases"]),
            outcomes=dict(sorted(outcomes.items())), decided_by=dict(sorted(deciders.items())),
            amounts=[Amounts(currency=currency, **sums) for currency, sums in sorted(amounts.items())],
            ruled=c["ruled"], appealed=c["appealed"], appeal_rate=_rate(c["appealed"], c["ruled"]),
            appeals_changed=c["changed"], appeal_change_rate=_rate(c["changed"], c["appealed"]),
            spot_checked=checked.checked if checked else 0, mishandled=checked.mishandled if checked else 0,
            satisfaction=Satisfaction(
                answers=answers, average=round(sum(r * n for r, n in rated.items()) / answers, 2) if answers else None,
                ratings=dict(sorted(rated.items()))),
        )

    groups = cases if period.grouped else {None: cases[None]}  # the whole period: zeros if no case
    return {group: figures(group, parts) for group, parts in groups.items()}


_CASE_COUNTS = ("cases", "closed", "first_contact", "escalated", "ruled", "appealed", "changed")


def _compliance(level: ServiceLevel, counted: Row | None) -> SlaCompliance:
    met, breached, running = (counted.met, counted.breached, counted.running) if counted else (0, 0, 0)
    measured = met + breached
    compliance = _rate(met, measured)
    return SlaCompliance(name=level.name, target_share=level.target_share, measured=measured, met=met,
                         breached=breached, running=running, compliance=compliance,
                         meets_target=compliance >= level.target_share if compliance is not None else None)


def _seller_rates(period: _Period, opened_to: datetime) -> list[SellerRates]:
    cases = period.rows(func.count().label("disputes"),
                        _count((ReportCase.refunded > 0) | (ReportCase.advanced > 0)).label("refunded"))
    sellers = select(ReportCase.seller_id).where(period.opened)
    orders = dict(period.db.execute(select(Order.seller_id, func.count()).where(
        Order.seller_id.in_(sellers), Order.created_at < opened_to).group_by(Order.seller_id)).all())
    rates = []
    for seller, (row,) in sorted(cases.items()):
        registered = orders.get(seller, 0)
        rates.append(SellerRates(seller_id=seller, disputes=row.disputes, orders=registered,
                                 dispute_rate=_rate(row.disputes, registered),
                                 refunded=row.refunded, refund_rate=_rate(row.refunded, row.disputes)))
    return rates


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
    with reading(engine) as db:
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

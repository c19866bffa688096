"""How long the managers' report takes: `python -m reporting.bench_kpis [--cases N] [--postgres URL]`.

Fills fresh reporting tables (a temporary SQLite file, and with --postgres a throwaway schema
dropped afterwards) with N cases opened over a year, as the projection writes them (rows from
`reporting.projection.row_of`, service levels evaluated by `CaseFacts.evaluate`), with survey
answers and spot-check verdicts on some, and analyzes them. Then times the full KPI report of
the year and each breakdown, and the trends. Prints the median and the slowest of each. Not a test: figures
depend on the machine.
"""

import random
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, text

from database import migrate, session
from database.bench import on_each_database, parser, timed
from identity import Role
from policy import Milestone, default_policy
from reporting.facts import CaseFacts
from reporting.kpis import Breakdown, KpiReader, trends
from reporting.models import QualityCheck, QualitySample, ReportCase, ReportSla, SurveyInvitation
from reporting.projection import row_of

REASONS = ["not_received", "quality", "not_as_described", "wrong_item", "damaged", "other"]
MEDIATORS = [f"mediator-{n}" for n in range(40)]
BATCH = 5_000


def synthetic_case(rng: random.Random, n: int, start: datetime) -> CaseFacts:
    opened = start + timedelta(seconds=rng.randrange(365 * 24 * 3600))
    facts = CaseFacts(order_id=f"ORD-{n:07d}", buyer_id=f"buyer-{n % 40_000}", seller_id=f"seller-{n % 2_000}",
                      reason=rng.choice(REASONS), currency="CNY", requested=rng.randrange(100, 500_000),
                      opened_at=opened, seq=rng.randrange(2, 30), milestones={Milestone.OPENED: opened})
    if rng.random() < 0.9:
        facts.milestones[Milestone.SELLER_FIRST_ACTION] = opened + timedelta(minutes=rng.expovariate(1 / 600))
    escalated = rng.random() < 0.25
    if escalated:
        at = opened + timedelta(hours=rng.uniform(1, 72))
        facts.escalations, facts.urgent = 1, rng.random() < 0.03
        facts.milestones[Milestone.ESCALATED] = at
        facts.mediator_id = rng.choice(MEDIATORS)
        took = at + timedelta(minutes=rng.expovariate(1 / 400))
        facts.milestones[Milestone.MEDIATOR_TOOK] = facts.milestones[Milestone.PLATFORM_FIRST_ACTION] = took
        facts.milestones[Milestone.RULED] = took + timedelta(hours=rng.expovariate(1 / 20))
        if rng.random() < 0.1:
            facts.appealed_at, facts.appealed_by = facts.milestones[Milestone.RULED], Role.BUYER
            facts.appeal_result = rng.choice(["upheld", "changed", "withdrawn"])
    if rng.random() < 0.95:
        closed = max(facts.milestones.values()) + timedelta(hours=rng.expovariate(1 / 10))
        facts.closed_at, facts.milestones[Milestone.CLOSED] = closed, closed
        facts.outcome = facts.state = rng.choice(["SUCCESS", "CLOSED"])
        facts.refunded = facts.requested if facts.outcome == "SUCCESS" else 0
        facts.decided_by = ("mediator:" + facts.mediator_id if escalated
                            else rng.choice(["seller:s", "buyer:b", "timer:seller_response"]))
    return facts


def fill(engine: Engine, cases: int, start: datetime, seed: int = 7) -> None:
    rng = random.Random(seed)
    policy = default_policy()
    with session(engine) as db:
        db.add(QualitySample(id="qs-bench", closed_from=start, closed_to=start + timedelta(days=365), share=0.1,
                             seed=seed, drawn_by="bench", drawn_at=start))
        for first in range(0, cases, BATCH):
            rows, slas, checks, answers = [], [], [], []
            for n in range(first, min(first + BATCH, cases)):
                dispute_id = f"dsp-ORD-{n:07d}-1"
                facts = synthetic_case(rng, n, start)
                facts.evaluate(policy, facts.closed_at or start + timedelta(days=365))
                rows.append(row_of(dispute_id, facts))
                slas += [dict(id=f"{dispute_id}:{c.name}", dispute_id=dispute_id, **c.model_dump()) for c in facts.slas]
                if facts.outcome is not None and rng.random() < 0.1:
                    checks.append(dict(sample_id="qs-bench", dispute_id=dispute_id, mediator_id=facts.mediator_id,
                                       verdict=rng.choice(["correct"] * 9 + ["mishandled"])))
                if facts.closed_at is not None and rng.random() < 0.3:
                    answers.append(dict(id=f"{dispute_id}-survey-buyer", dispute_id=dispute_id, role="buyer",
                                        party_id=facts.buyer_id, due_at=facts.closed_at + timedelta(days=7),
                                        rating=rng.randrange(1, 6), answered_at=facts.closed_at))
            db.execute(insert(ReportCase), rows)
            db.execute(insert(ReportSla), slas)
            if checks:
                db.execute(insert(QualityCheck), checks)
            if answers:
                db.execute(insert(SurveyInvitation), answers)


def bench(label: str, engine: Engine, cases: int, rounds: int) -> None:
    migrate(engine)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    end = start + timedelta(days=365)
    began = time.perf_counter()
    fill(engine, cases, start)
    with engine.begin() as db:  # the planner's statistics, as autovacuum (or a DBA's ANALYZE) keeps them
        for table in (ReportCase, ReportSla, QualityCheck, SurveyInvitation):
            db.execute(text(f"ANALYZE {table.__tablename__}"))
    print(f"{label}: {cases} cases over a year written in {time.perf_counter() - began:.1f}s")
    reader, policy = KpiReader(engine), default_policy()
    calls = {"full KPI report": lambda: reader.report(start, end, policy, as_of=end)}
    calls |= {f"by {b.value}": (lambda b=b: reader.report(start, end, policy, as_of=end, by=b)) for b in Breakdown}
    calls["trends"] = lambda: trends(engine, start, end)
    calls["one month, by mediator"] = lambda: reader.report(start, start + timedelta(days=30), policy, as_of=end,
                                                            by=Breakdown.MEDIATOR)
    for name, call in calls.items():
        median, slowest = timed(call, rounds)
        print(f"  {name:<28} median {median:8.1f} ms, slowest {slowest:8.1f} ms")


def main() -> None:
    args = parser(__doc__, cases=100_000, rounds=3).parse_args()
    on_each_database("reporting", args.postgres, lambda label, engine: bench(label, engine, args.cases, args.rounds))


if __name__ == "__main__":
    main()

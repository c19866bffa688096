"""Quality spot-checks: a share of the cases closed in a period drawn for review, per mediator,
reproducibly (the seed is recorded with the sample), and reviewers' verdicts on them."""

import math
import random
import secrets
import uuid
from collections import defaultdict
from datetime import datetime

from sqlalchemy import Engine, and_, select, update

from database import reading, session
from identity import Actor
from reporting.models import QualityCheck, QualitySample, ReportCase, Verdict


class ReviewRefused(Exception):
    status = 409
    slug = "review-refused"


class UnknownCheck(ReviewRefused):
    status = 404
    slug = "not-found"


class OwnCase(ReviewRefused):
    status = 403
    slug = "review-own-case"


class AlreadyReviewed(ReviewRefused):
    slug = "already-reviewed"


def stratified_draw(population: dict[str, str | None], share: float, seed: int) -> dict[str, list[str]]:
    """From each mediator's cases ("" for those no mediator handled) draw `share` of them, at
    least one: the same population and seed always draw the same cases."""
    strata: dict[str, list[str]] = defaultdict(list)
    for dispute_id, mediator in sorted(population.items()):
        strata[mediator or ""].append(dispute_id)
    return {mediator: sorted(random.Random(f"{seed}:{mediator}").sample(cases, math.ceil(share * len(cases))))
            for mediator, cases in sorted(strata.items())}


class QualityChecks:
    def __init__(self, engine: Engine):
        self._engine = engine

    def draw(self, closed_from: datetime, closed_to: datetime, *, share: float, drawn_by: Actor,
             now: datetime, seed: int | None = None) -> tuple[QualitySample, list[QualityCheck]]:
        seed = secrets.randbelow(2**31) if seed is None else seed
        closed = and_(ReportCase.closed_at >= closed_from, ReportCase.closed_at < closed_to,
                      ReportCase.outcome.is_not(None))
        with session(self._engine) as db:
            population = dict(db.execute(select(ReportCase.dispute_id, ReportCase.mediator_id).where(closed)).all())
            drawn = stratified_draw(population, share, seed)
            sample = QualitySample(
                id=f"qs-{uuid.uuid4().hex[:12]}", closed_from=closed_from, closed_to=closed_to, share=share,
                seed=seed, drawn_by=drawn_by.party_id, drawn_at=now,
                strata={m: [sum(1 for v in population.values() if (v or "") == m), len(ids)]
                        for m, ids in drawn.items()})
            db.add(sample)
            checks = [QualityCheck(sample_id=sample.id, dispute_id=dispute_id, mediator_id=mediator or None)
                      for mediator, ids in drawn.items() for dispute_id in ids]
            db.add_all(checks)
        return sample, checks

    def sample(self, sample_id: str) -> tuple[QualitySample, list[QualityCheck]] | None:
        with reading(self._engine) as db:
            sample = db.get(QualitySample, sample_id)
            if sample is None:
                return None
            checks = list(db.execute(select(QualityCheck).where(QualityCheck.sample_id == sample_id)
                                  .order_by(QualityCheck.dispute_id)).scalars())
        return sample, checks

    def review(self, sample_id: str, dispute_id: str, reviewer: Actor, verdict: Verdict, rule: str | None,
               note: str | None, now: datetime) -> QualityCheck:
        with session(self._engine) as db:
            check = db.get(QualityCheck, (sample_id, dispute_id))
            if check is None:
                raise UnknownCheck(f"{dispute_id} is not in spot-check sample {sample_id}")
            if check.mediator_id == reviewer.party_id:
                raise OwnCase(f"{reviewer.party_id} handled {dispute_id}: another reviewer must check it")
            reviewed = db.execute(update(QualityCheck).where(
                QualityCheck.sample_id == sample_id, QualityCheck.dispute_id == dispute_id,
                QualityCheck.verdict.is_(None),
            ).values(verdict=verdict.value, rule=rule, note=note, reviewer_id=reviewer.party_id, reviewed_at=now))
            if reviewed.rowcount != 1:
                raise AlreadyReviewed(f"{dispute_id} in {sample_id} already has a verdict")
        check.verdict, check.rule, check.note = verdict.value, rule, note
        check.reviewer_id, check.reviewed_at = reviewer.party_id, now
        return check

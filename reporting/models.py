"""The reporting tables: the projection of each case (rebuildable from histories) and what
people add to it (spot-check samples and verdicts, survey answers), which is never rebuilt."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Column, Index
from sqlmodel import Field, SQLModel

from casebook.models import UtcDateTime


class ReportCase(SQLModel, table=True):
    """One row per case, as of the newest event its notifications carried (`seq`)."""

    __tablename__ = "report_cases"
    __table_args__ = (
        # Every KPI reads the cases opened in a period; trends and breakdowns group them.
        Index("ix_report_cases_opened", "opened_at"),
        Index("ix_report_cases_seller_opened", "seller_id", "opened_at"),
        Index("ix_report_cases_closed_mediator", "closed_at", "mediator_id"),
    )

    dispute_id: str = Field(primary_key=True, max_length=100)
    seq: int
    order_id: str = Field(max_length=64)
    buyer_id: str = Field(max_length=64)
    seller_id: str = Field(max_length=64)
    reason: str = Field(max_length=40)
    urgent: bool = False
    urgent_concern: str | None = Field(default=None, max_length=40)
    currency: str = Field(max_length=3)
    requested: int = Field(sa_column=Column(BigInteger, nullable=False))
    refunded: int = Field(sa_column=Column(BigInteger, nullable=False))
    advanced: int = Field(sa_column=Column(BigInteger, nullable=False))
    state: str = Field(max_length=40)
    outcome: str | None = Field(default=None, max_length=40)
    decided_by: str | None = Field(default=None, max_length=120)
    opened_at: datetime = Field(sa_type=UtcDateTime)
    seller_first_action_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    platform_first_action_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    escalated_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    escalations: int = 0
    mediator_id: str | None = Field(default=None, max_length=64)
    taken_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    ruled_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    appealed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    appealed_by: str | None = Field(default=None, max_length=20)
    appeal_result: str | None = Field(default=None, max_length=20)
    # Set when the case is final (its appeal windows closed, its money settled).
    final_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ReportSla(SQLModel, table=True):
    """One service level of one case; `outcome` None while it runs (breached once past due)."""

    __tablename__ = "report_slas"
    # By case, covering what the KPIs count, so their join reads no table row (and the projection
    # finds a case's rows to replace).
    __table_args__ = (Index("ix_report_slas_dispute_level", "dispute_id", "name", "outcome", "due_at"),)

    id: str = Field(primary_key=True, max_length=150)  # f"{dispute_id}:{name}"
    dispute_id: str = Field(max_length=100)
    name: str = Field(max_length=40)
    started_at: datetime = Field(sa_type=UtcDateTime)
    due_at: datetime = Field(sa_type=UtcDateTime)
    stopped_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    outcome: str | None = Field(default=None, max_length=10)


class QualitySample(SQLModel, table=True):
    """A spot-check draw: the cases closed in a period, a share of each mediator's, by a seed."""

    __tablename__ = "quality_samples"

    id: str = Field(primary_key=True, max_length=40)
    closed_from: datetime = Field(sa_type=UtcDateTime)
    closed_to: datetime = Field(sa_type=UtcDateTime)
    share: float
    seed: int = Field(sa_column=Column(BigInteger, nullable=False))
    drawn_by: str = Field(max_length=64)
    drawn_at: datetime = Field(sa_type=UtcDateTime)
    # Per mediator ("" for cases no mediator handled): how many closed, how many drawn.
    strata: dict[str, list[int]] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Verdict(StrEnum):
    CORRECT = "correct"
    MISHANDLED = "mishandled"


class QualityCheck(SQLModel, table=True):
    """One drawn case and, once reviewed, its verdict."""

    __tablename__ = "quality_checks"
    __table_args__ = (Index("ix_quality_checks_dispute", "dispute_id"),)

    sample_id: str = Field(primary_key=True, max_length=40)
    dispute_id: str = Field(primary_key=True, max_length=100)
    mediator_id: str | None = Field(default=None, max_length=64)
    verdict: str | None = Field(default=None, max_length=20)
    rule: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=2000)
    reviewer_id: str | None = Field(default=None, max_length=64)
    reviewed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class SurveyInvitation(SQLModel, table=True):
    """One party's satisfaction survey of one final case and, once answered, the answer."""

    __tablename__ = "survey_invitations"
    # By case, covering the rating the KPIs count.
    __table_args__ = (Index("ix_survey_invitations_dispute_rating", "dispute_id", "rating"),)

    id: str = Field(primary_key=True, max_length=150)  # the invitation's outbox message id
    dispute_id: str = Field(max_length=100)
    role: str = Field(max_length=20)
    party_id: str = Field(max_length=64)
    due_at: datetime = Field(sa_type=UtcDateTime)
    rating: int | None = None
    comment: str | None = Field(default=None, max_length=2000)
    answered_at: datetime | None = Field(default=None, sa_type=UtcDateTime)

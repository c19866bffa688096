from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, TypeDecorator
from sqlmodel import Field, SQLModel


class UtcDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend: SQLite keeps no time zone, so everything is stored
    as naive UTC, and the queue's order by due time is the same on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:  # noqa: ANN001
        return value.astimezone(UTC).replace(tzinfo=None) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:  # noqa: ANN001
        return value.replace(tzinfo=UTC) if value is not None else None


class OpenCase(SQLModel, table=True):
    """One row per case, as of the newest event its notifications carried (`seq`).

    A closed case keeps its row (`closed`), so a late notification from before the close,
    which carries an older `seq`, cannot bring it back."""

    __tablename__ = "open_cases"
    __table_args__ = (
        # The queue: cases awaiting a mediator, most pressing SLA first; and one mediator's own.
        Index("ix_open_cases_awaiting_due", "awaiting_mediator", "next_due_at", "dispute_id"),
        Index("ix_open_cases_mediator_due", "mediator_id", "next_due_at", "dispute_id"),
    )

    dispute_id: str = Field(primary_key=True, max_length=100)
    seq: int
    order_id: str = Field(index=True, max_length=64)
    buyer_id: str = Field(index=True, max_length=64)
    seller_id: str = Field(index=True, max_length=64)
    state: str = Field(max_length=40)
    reason: str = Field(max_length=40)
    amount_requested: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    opened_at: datetime = Field(sa_type=UtcDateTime)
    escalated_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    urgent: bool = False
    urgent_concern: str | None = Field(default=None, max_length=40)
    awaiting_mediator: bool = False
    needs_senior: bool = False
    mediator_id: str | None = Field(default=None, max_length=64)
    next_due_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    next_due_kind: str | None = Field(default=None, max_length=40)
    closed: bool = False
    # When the casebook last wrote the row (wall clock), for operators chasing a stale one.
    recorded_at: datetime = Field(default_factory=lambda: datetime.now(UTC), sa_type=UtcDateTime)

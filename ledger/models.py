"""Ledger tables. Internal to the ledger: callers get pydantic views from ``ledger.service``."""

from datetime import UTC, datetime

from sqlalchemy import BigInteger, CheckConstraint, Column, DateTime, Identity, Index
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class LedgerAccount(SQLModel, table=True):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint(
            "debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 AND credits_posted >= 0",
            name="ck_ledger_accounts_counters_non_negative",
        ),
        Index("ix_ledger_accounts_owner", "owner"),
    )

    id: str = Field(primary_key=True, max_length=255)
    kind: str = Field(max_length=32)
    owner: str = Field(max_length=255)
    currency: str = Field(max_length=3)
    debits_pending: int = Field(default=0, sa_type=BigInteger)
    debits_posted: int = Field(default=0, sa_type=BigInteger)
    credits_pending: int = Field(default=0, sa_type=BigInteger)
    credits_posted: int = Field(default=0, sa_type=BigInteger)
    allow_negative: bool = False
    # The lowest `credits_posted - debits_posted - debits_pending` may reach when
    # allow_negative is False.
    floor: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class LedgerTransfer(SQLModel, table=True):
    __tablename__ = "ledger_transfers"
    __table_args__ = (
        CheckConstraint("amount > 0", name="ck_ledger_transfers_amount_positive"),
        CheckConstraint("debit_account_id <> credit_account_id", name="ck_ledger_transfers_two_accounts"),
        CheckConstraint(
            "phase IN ('single', 'pending', 'post_pending', 'void_pending')",
            name="ck_ledger_transfers_phase",
        ),
        CheckConstraint(
            "(phase = 'pending') = (pending_status IS NOT NULL)",
            name="ck_ledger_transfers_pending_status",
        ),
        CheckConstraint(
            "(phase IN ('post_pending', 'void_pending')) = (pending_id IS NOT NULL)",
            name="ck_ledger_transfers_pending_id",
        ),
        Index("ix_ledger_transfers_dispute_id", "dispute_id"),
        Index("ix_ledger_transfers_order_id", "order_id"),
        Index("ix_ledger_transfers_debit_account_id", "debit_account_id"),
        Index("ix_ledger_transfers_credit_account_id", "credit_account_id"),
    )

    id: str = Field(primary_key=True, max_length=255)
    # Creation order. PostgreSQL fills it from an identity column; SQLite (which has no
    # identity columns and serialises writers) gets max(seq) + 1 from the service.
    seq: int | None = Field(
        default=None,
        sa_column=Column(BigInteger, Identity(), nullable=False, unique=True),
    )
    debit_account_id: str = Field(foreign_key="ledger_accounts.id", max_length=255)
    credit_account_id: str = Field(foreign_key="ledger_accounts.id", max_length=255)
    # For a void: the pending amount it released.
    amount: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    code: str = Field(max_length=64)
    phase: str = Field(max_length=16)
    # Post/void: the pending transfer resolved. Unique: a pending resolves only once.
    pending_id: str | None = Field(
        default=None, foreign_key="ledger_transfers.id", max_length=255, unique=True
    )
    # Pending transfers only: pending | posted | voided.
    pending_status: str | None = Field(default=None, max_length=16)
    dispute_id: str | None = Field(default=None, max_length=255)
    order_id: str | None = Field(default=None, max_length=255)
    step: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))

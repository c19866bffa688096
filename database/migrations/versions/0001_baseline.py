"""Baseline: every table as the last release without migrations left it.

Revision ID: 0001
Revises:
Create Date: 2026-12-01

The tables are written out here as they were on that day (not imported from the models,
which move on), because `database.schema` reads `TABLES` to adopt a database that release's
start-up `create_all` made: it adds what an older install lacks and checks the result equals
these tables before stamping it with this revision. Never edit this file: change the schema
in a new revision.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = sa.MetaData()

sa.Table(
    "archive_legal_holds", TABLES,
    sa.Column("dispute_id", sa.String(length=100), primary_key=True),
    sa.Column("reason", sa.String(length=500), nullable=False),
    sa.Column("held_by", sa.String(length=100), nullable=False),
    sa.Column("held_at", sa.DateTime(), nullable=False),
)
sa.Table(
    "archive_records", TABLES,
    sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("dispute_id", sa.String(length=100), nullable=False),
    sa.Column("part", sa.String(length=20), nullable=False),
    sa.Column("run_id", sa.String(length=64), nullable=False),
    sa.Column("archived_at", sa.DateTime(), nullable=False),
    sa.Column("content_hash", sa.String(length=64), nullable=False),
    sa.Column("prev_hash", sa.String(length=64), nullable=False),
    sa.Column("hash", sa.String(length=64), nullable=False),
    sa.Column("content", sa.LargeBinary(), nullable=True),
    sa.Column("purged_at", sa.DateTime(), nullable=True),
    sa.Index("ix_archive_records_dispute", "dispute_id", "seq"),
)
sa.Table(
    "evidence_bodies", TABLES,
    sa.Column("evidence_id", sa.String(length=64), primary_key=True),
    sa.Column("size", sa.Integer(), nullable=False),
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Table(
    "idempotency_keys", TABLES,
    sa.Column("caller", sa.String(length=100), primary_key=True),
    sa.Column("key", sa.String(length=100), primary_key=True),
    sa.Column("request_fingerprint", sa.String(length=64), nullable=False),
    sa.Column("resource_id", sa.String(length=200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Table(
    "ledger_accounts", TABLES,
    sa.Column("id", sa.String(length=255), primary_key=True),
    sa.Column("kind", sa.String(length=32), nullable=False),
    sa.Column("owner", sa.String(length=255), nullable=False, index=True),
    sa.Column("currency", sa.String(length=3), nullable=False),
    sa.Column("debits_pending", sa.BigInteger(), nullable=False),
    sa.Column("debits_posted", sa.BigInteger(), nullable=False),
    sa.Column("credits_pending", sa.BigInteger(), nullable=False),
    sa.Column("credits_posted", sa.BigInteger(), nullable=False),
    sa.Column("allow_negative", sa.Boolean(), nullable=False),
    sa.Column("floor", sa.BigInteger(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 AND credits_posted >= 0",
                       name="ck_ledger_accounts_counters_non_negative"),
)
sa.Table(
    "ledger_transfers", TABLES,
    sa.Column("id", sa.String(length=255), primary_key=True),
    sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False, unique=True),
    sa.Column("debit_account_id", sa.String(length=255), sa.ForeignKey("ledger_accounts.id"), nullable=False,
              index=True),
    sa.Column("credit_account_id", sa.String(length=255), sa.ForeignKey("ledger_accounts.id"), nullable=False,
              index=True),
    sa.Column("amount", sa.BigInteger(), nullable=False),
    sa.Column("currency", sa.String(length=3), nullable=False),
    sa.Column("code", sa.String(length=64), nullable=False),
    sa.Column("phase", sa.String(length=16), nullable=False),
    sa.Column("pending_id", sa.String(length=255), sa.ForeignKey("ledger_transfers.id"), nullable=True, unique=True),
    sa.Column("pending_status", sa.String(length=16), nullable=True),
    sa.Column("dispute_id", sa.String(length=255), nullable=True, index=True),
    sa.Column("order_id", sa.String(length=255), nullable=True, index=True),
    sa.Column("step", sa.String(length=128), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("amount > 0", name="ck_ledger_transfers_amount_positive"),
    sa.CheckConstraint("debit_account_id <> credit_account_id", name="ck_ledger_transfers_two_accounts"),
    sa.CheckConstraint("phase IN ('single', 'pending', 'post_pending', 'void_pending')",
                       name="ck_ledger_transfers_phase"),
    sa.CheckConstraint("(phase = 'pending') = (pending_status IS NOT NULL)", name="ck_ledger_transfers_pending_status"),
    sa.CheckConstraint("(phase IN ('post_pending', 'void_pending')) = (pending_id IS NOT NULL)",
                       name="ck_ledger_transfers_pending_id"),
)
sa.Table(
    "notification_outbox", TABLES,
    sa.Column("id", sa.String(length=200), primary_key=True),
    sa.Column("dispute_id", sa.String(length=100), nullable=False, index=True),
    sa.Column("recipient_role", sa.String(length=20), nullable=False),
    sa.Column("recipient_id", sa.String(length=64), nullable=False, index=True),
    sa.Column("kind", sa.String(length=50), nullable=False),
    sa.Column("subject", sa.String(length=300), nullable=False),
    sa.Column("data", sa.JSON(), nullable=False),
    sa.Column("delivered", sa.JSON(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # The dispatcher's delivery state (an older install's outbox lacks it: database.schema adds it).
    sa.Column("status", sa.String(length=10), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.String(length=500), nullable=True),
    sa.Column("lease_owner", sa.String(length=100), nullable=True),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_notification_outbox_due", "status", "next_attempt_at"),
)
sa.Table(
    "open_cases", TABLES,
    sa.Column("dispute_id", sa.String(length=100), primary_key=True),
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("order_id", sa.String(length=64), nullable=False, index=True),
    sa.Column("buyer_id", sa.String(length=64), nullable=False, index=True),
    sa.Column("seller_id", sa.String(length=64), nullable=False, index=True),
    sa.Column("state", sa.String(length=40), nullable=False),
    sa.Column("reason", sa.String(length=40), nullable=False),
    sa.Column("amount_requested", sa.BigInteger(), nullable=False),
    sa.Column("currency", sa.String(length=3), nullable=False),
    sa.Column("opened_at", sa.DateTime(), nullable=False),
    sa.Column("escalated_at", sa.DateTime(), nullable=True),
    sa.Column("urgent", sa.Boolean(), nullable=False),
    sa.Column("urgent_concern", sa.String(length=40), nullable=True),
    sa.Column("awaiting_mediator", sa.Boolean(), nullable=False),
    sa.Column("needs_senior", sa.Boolean(), nullable=False),
    sa.Column("mediator_id", sa.String(length=64), nullable=True),
    sa.Column("next_due_at", sa.DateTime(), nullable=True),
    sa.Column("next_due_kind", sa.String(length=40), nullable=True),
    sa.Column("closed", sa.Boolean(), nullable=False),
    sa.Column("recorded_at", sa.DateTime(), nullable=False),
    sa.Index("ix_open_cases_awaiting_due", "awaiting_mediator", "next_due_at", "dispute_id"),
    sa.Index("ix_open_cases_mediator_due", "mediator_id", "next_due_at", "dispute_id"),
)
sa.Table(
    "order_closed_disputes", TABLES,
    sa.Column("dispute_id", sa.String(length=100), primary_key=True),
    sa.Column("order_id", sa.String(length=64), nullable=False, index=True),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ruled", sa.Boolean(), nullable=False),
)
sa.Table(
    "orders", TABLES,
    sa.Column("id", sa.String(length=64), primary_key=True),
    sa.Column("buyer_id", sa.String(length=64), nullable=False, index=True),
    sa.Column("seller_id", sa.String(length=64), nullable=False, index=True),
    sa.Column("amount", sa.BigInteger(), nullable=False),
    sa.Column("currency", sa.String(length=3), nullable=False),
    sa.Column("shipped", sa.Boolean(), nullable=False),
    sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("open_dispute_id", sa.String(length=100), nullable=True),
    sa.Column("dispute_count", sa.Integer(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


def upgrade() -> None:
    TABLES.create_all(op.get_bind())


def downgrade() -> None:
    TABLES.drop_all(op.get_bind())

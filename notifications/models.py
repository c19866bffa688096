from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Enum, Index
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for the dispatcher (now or at next_attempt_at)
    DELIVERED = "delivered"  # every external channel confirmed it
    DEAD = "dead"  # attempts used up: waits for an operator to re-send it


class OutboxMessage(SQLModel, table=True):
    """One notification to one party, and the state of its delivery to the external channels.

    The row itself is the in-app channel: the notify activity writes it and nothing else, so
    money never waits on a channel. The dispatcher delivers it to the external channels. The id
    is chosen by the workflow, so a retried activity finds its row and does not notify twice."""

    __tablename__ = "notification_outbox"
    # The dispatcher's poll: due pending messages, oldest first.
    __table_args__ = (Index("ix_notification_outbox_due", "status", "next_attempt_at"),)

    id: str = Field(primary_key=True, max_length=200)
    dispute_id: str = Field(index=True, max_length=100)
    recipient_role: str = Field(max_length=20)
    recipient_id: str = Field(index=True, max_length=64)
    kind: str = Field(max_length=50)
    subject: str = Field(max_length=300)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Channels that have confirmed delivery; a retry delivers only to the others.
    delivered: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    status: DeliveryStatus = Field(default=DeliveryStatus.PENDING, sa_type=Enum(
        DeliveryStatus, native_enum=False, length=10, values_callable=lambda statuses: [s.value for s in statuses]))
    # Attempts since the message was written or last re-sent by an operator.
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    last_attempt_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # Why the last attempt failed, as the channel put it (never the message's content).
    last_error: str | None = Field(default=None, max_length=500)
    # Which dispatcher is delivering the message, and until when: another takes it only
    # once the lease has run out (its holder crashed or hung).
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_until: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))

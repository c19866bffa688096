from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Enum, Index, String
from sqlmodel import Field, SQLModel

from identity import Role


def utcnow() -> datetime:
    return datetime.now(UTC)


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for the dispatcher (now or at next_attempt_at)
    DELIVERED = "delivered"  # every external channel confirmed it
    DEAD = "dead"  # attempts used up: waits for an operator to re-send it


def _stored_as_value(enum: type[StrEnum], length: int) -> Enum:
    """An enum column holding its members' values in a VARCHAR(length)."""
    return Enum(enum, native_enum=False, length=length, values_callable=lambda members: [m.value for m in members])


class NotificationMessage(SQLModel):
    """One message to one party: the fact a case decides to tell (each of a change's messages in
    `workflows.models.Notifications`, or the older notify activity's `Notification`) and the
    outbox stores (`OutboxMessage`), defined once.

    Column types are given as `sa_type`, not as validation limits, so the workflow builds its
    messages exactly as before; the id is chosen by the workflow, so a retry notifies once."""

    id: str = Field(primary_key=True, sa_type=String(200))
    dispute_id: str = Field(index=True, sa_type=String(100))
    recipient_role: Role = Field(sa_type=_stored_as_value(Role, 20))
    recipient_id: str = Field(index=True, sa_type=String(64))
    kind: str = Field(sa_type=String(50))
    subject: str = Field(sa_type=String(300))
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON, nullable=False)


class OutboxMessage(NotificationMessage, table=True):
    """A message and the state of its delivery to the external channels.

    The row itself is the in-app channel: the notify activity writes it and nothing else, so
    money never waits on a channel. The dispatcher delivers it to the external channels."""

    __tablename__ = "notification_outbox"
    # The dispatcher's poll: due pending messages, oldest first.
    __table_args__ = (Index("ix_notification_outbox_due", "status", "next_attempt_at"),)

    # Channels that have confirmed delivery; a retry delivers only to the others.
    delivered: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    status: DeliveryStatus = Field(default=DeliveryStatus.PENDING, sa_type=_stored_as_value(DeliveryStatus, 10))
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

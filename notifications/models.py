from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel


class OutboxMessage(SQLModel, table=True):
    """One notification to one party. The id is chosen by the workflow, so a retried
    activity finds its row and does not notify twice."""

    __tablename__ = "notification_outbox"

    id: str = Field(primary_key=True, max_length=200)
    dispute_id: str = Field(index=True, max_length=100)
    recipient_role: str = Field(max_length=20)
    recipient_id: str = Field(index=True, max_length=64)
    kind: str = Field(max_length=50)
    subject: str = Field(max_length=300)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Channels that have confirmed delivery; a retry delivers only to the others.
    delivered: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

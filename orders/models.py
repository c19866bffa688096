from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, DateTime
from sqlmodel import Field, SQLModel


class Order(SQLModel, table=True):
    """A paid order the marketplace registered, and which dispute (if any) is open on it."""

    __tablename__ = "orders"

    id: str = Field(primary_key=True, max_length=64)
    buyer_id: str = Field(index=True, max_length=64)
    seller_id: str = Field(index=True, max_length=64)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    shipped: bool
    # Set when the escrow was paid out to the seller because the order completed.
    completed_at: datetime | None = None
    # Only one dispute may be open on an order; this column is the lock.
    open_dispute_id: str | None = Field(default=None, max_length=100)
    dispute_count: int = 0
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class ClosedDispute(SQLModel, table=True):
    """A dispute that let go of its order: what the rules for the order's next dispute look at."""

    __tablename__ = "order_closed_disputes"

    dispute_id: str = Field(primary_key=True, max_length=100)
    order_id: str = Field(index=True, max_length=64)
    closed_at: datetime = Field(sa_type=DateTime(timezone=True))
    # The platform ruled on it: final, never re-litigated by a new dispute.
    ruled: bool

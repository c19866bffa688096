"""The complaints' database side: which complaint is open on each order and type (the lock that
keeps it to one), and the read model of seller standings the penalty list is served from."""

from datetime import datetime

from sqlalchemy import JSON, Column, DateTime, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel, select

from complaints.models import StandingSummary
from database import reading, session


class ComplaintFiling(SQLModel, table=True):
    """One row per order and complaint type: the open complaint (the lock) and how many were filed."""

    __tablename__ = "complaint_filings"

    order_id: str = Field(primary_key=True, max_length=64)
    complaint_type: str = Field(primary_key=True, max_length=40)
    open_complaint_id: str | None = Field(default=None, max_length=120)
    filed: int = 0


class SellerStandingRow(SQLModel, table=True):
    """What each standing last published; only a newer revision overwrites it."""

    __tablename__ = "seller_standings"

    seller_id: str = Field(primary_key=True, max_length=64)
    revision: int
    points_a: int
    points_b: int
    under_penalty: bool = Field(index=True)
    measures: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    penalty_ends_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class ComplaintAlreadyOpen(Exception):
    code = "complaint-already-open"

    def __init__(self, order_id: str, complaint_type: str, complaint_id: str):
        super().__init__(f"Order {order_id} already has an open {complaint_type} complaint, {complaint_id}.")
        self.complaint_id = complaint_id


# What complaint_id() makes: the order id, the complaint type and the how-manieth of its kind.
COMPLAINT_ID_PATTERN = r"^cmp-[A-Za-z0-9_.:-]{1,64}-[a-z_]{1,40}-[0-9]{1,6}$"


def complaint_id(order_id: str, complaint_type: str, n: int) -> str:
    return f"cmp-{order_id}-{complaint_type}-{n}"


class ComplaintService:
    def __init__(self, engine: Engine):
        self._engine = engine

    def reserve(self, order_id: str, complaint_type: str) -> str:
        """The id of a new complaint on the order and type; refused while one is open."""
        try:
            return self._reserve(order_id, complaint_type)
        except IntegrityError:  # a concurrent first filing inserted the row: it is locked now
            return self._reserve(order_id, complaint_type)

    def _reserve(self, order_id: str, complaint_type: str) -> str:
        with session(self._engine) as db:
            row = db.exec(select(ComplaintFiling).where(ComplaintFiling.order_id == order_id,
                                                        ComplaintFiling.complaint_type == complaint_type)
                          .with_for_update()).first()
            if row is None:
                row = ComplaintFiling(order_id=order_id, complaint_type=complaint_type)
                db.add(row)
            if row.open_complaint_id is not None:
                raise ComplaintAlreadyOpen(order_id, complaint_type, row.open_complaint_id)
            row.filed += 1
            row.open_complaint_id = complaint_id(order_id, complaint_type, row.filed)
            return row.open_complaint_id

    def release(self, order_id: str, complaint_type: str, complaint: str) -> None:
        """The complaint closed: another of its type may be filed on the order (idempotent)."""
        with session(self._engine) as db:
            row = db.get(ComplaintFiling, (order_id, complaint_type))
            if row is not None and row.open_complaint_id == complaint:
                row.open_complaint_id = None

    def publish_standing(self, summary: StandingSummary) -> None:
        with session(self._engine) as db:
            row = db.get(SellerStandingRow, summary.seller_id)
            if row is None:
                db.add(SellerStandingRow(**summary.model_dump()))
            elif row.revision < summary.revision:
                for name, value in summary.model_dump().items():
                    setattr(row, name, value)

    def under_penalty(self, limit: int, offset: int = 0) -> list[SellerStandingRow]:
        with reading(self._engine) as db:
            return list(db.exec(select(SellerStandingRow).where(SellerStandingRow.under_penalty)
                                .order_by(SellerStandingRow.seller_id).offset(offset).limit(limit)))

"""The archive's tables in the project's database: the records (when the archive lives
there, the default) and the legal holds (always here, whatever store holds the records)."""

from datetime import datetime

from sqlalchemy import Column, Index, LargeBinary
from sqlmodel import Field, SQLModel

from casebook.models import UtcDateTime


class ArchivedRecord(SQLModel, table=True):
    __tablename__ = "archive_records"
    __table_args__ = (Index("ix_archive_records_dispute", "dispute_id", "seq"),)

    # The chain's order; the primary key makes two writers racing for one place collide.
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    dispute_id: str = Field(max_length=100)
    part: str = Field(max_length=20)
    run_id: str = Field(max_length=64)
    archived_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))
    content_hash: str = Field(max_length=64)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    content: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    purged_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime, nullable=True))


class LegalHold(SQLModel, table=True):
    """A dispute whose archived records are never purged while the hold stands."""

    __tablename__ = "archive_legal_holds"

    dispute_id: str = Field(primary_key=True, max_length=100)
    reason: str = Field(max_length=500)
    held_by: str = Field(max_length=100)
    held_at: datetime = Field(sa_column=Column(UtcDateTime, nullable=False))

"""Request and response bodies of the HTTP API (Base / Create / Public families)."""

from datetime import datetime

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from fund import FundStatement
from ledger import AccountBalance, TransferView
from money import MinorUnits, Money
from workflows.models import (
    DeadlineKind, DisputeState, EvidenceSubmission, PartyId, ReasonCategory, RefundRequest, UrgentConcern,
)


class Payment(Money):
    """What a buyer paid: more than nothing."""

    amount: Annotated[MinorUnits, Field(ge=1)]


class OrderBase(BaseModel):
    buyer_id: PartyId
    seller_id: PartyId
    paid: Money
    shipped: bool


class OrderCreate(OrderBase):
    model_config = ConfigDict(extra="forbid")

    order_id: PartyId
    paid: Payment


class OrderPublic(OrderBase):
    order_id: str
    escrow: Money
    open_dispute_id: str | None
    completed_at: datetime | None
    created_at: datetime


class DisputeCreate(RefundRequest):
    model_config = ConfigDict(extra="forbid")

    order_id: PartyId


class DisputeSummary(BaseModel):
    dispute_id: str
    order_id: str | None
    buyer_id: str | None
    seller_id: str | None
    state: DisputeState | None
    reason: ReasonCategory | None
    next_deadline: datetime | None
    mediator_id: str | None = None
    awaiting_mediator: bool = False
    urgent: bool = False
    needs_senior: bool = False
    opened_at: datetime
    closed_at: datetime | None


class DisputeList(BaseModel):
    items: list[DisputeSummary]
    count: int


class QueuedCase(DisputeSummary):
    next_deadline_kind: DeadlineKind | None = None
    escalated_at: datetime | None = None
    urgent_concern: UrgentConcern | None = None
    requested: Money


class MediationQueue(DisputeList):
    """One page of the queue; `count` is this page's, `total` the whole queue's."""

    items: list[QueuedCase]
    total: int
    # Pass as `cursor` for the next page; null on the last one.
    next_cursor: str | None


# The ledger's own read models are the public shape of accounts and transfers.
AccountPublic = AccountBalance
TransferPublic = TransferView
GuaranteeFundPublic = FundStatement


class EvidencePage(BaseModel):
    """One page of a case's evidence submissions, oldest first, with their bodies."""

    items: list[EvidenceSubmission]
    total: int
    offset: int
    limit: int

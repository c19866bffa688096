"""The ledger's types: what callers send (TransferRequest) and what they read back."""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidatorFunctionWrapHandler, model_validator

from ledger.accounts import AccountSpec
from ledger.errors import InvalidTransfer
from ledger.models import LedgerAccount, LedgerTransfer
from money import CurrencyCode, Money


class TransferPhase(StrEnum):
    single = "single"  # posted immediately
    pending = "pending"  # a two-phase hold
    post_pending = "post_pending"  # posts (all or part of) a pending transfer
    void_pending = "void_pending"  # releases a pending transfer


class PendingStatus(StrEnum):
    pending = "pending"
    posted = "posted"
    voided = "voided"


RESOLVING = (TransferPhase.post_pending, TransferPhase.void_pending)
POSTING = (TransferPhase.single, TransferPhase.post_pending)


class TransferRequest(BaseModel):
    """One transfer to create.

    ``single``/``pending``: ``debit_account_id``, ``credit_account_id``, ``amount``,
    ``currency`` and ``code`` are required.

    ``post_pending``/``void_pending``: ``pending_id`` is required; the accounts, the
    currency, the code, ``dispute_id`` and ``order_id`` default to the pending transfer's
    (if given, accounts and currency must match it). A post's ``amount`` defaults to the
    whole pending amount and may be less (the remainder is released); a void always
    releases the whole pending amount.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=255)
    debit_account_id: str | None = Field(default=None, max_length=255)
    credit_account_id: str | None = Field(default=None, max_length=255)
    amount: int | None = Field(default=None, strict=True, description="minor units")
    currency: CurrencyCode | None = None
    code: str | None = Field(default=None, min_length=1, max_length=64)
    phase: TransferPhase = TransferPhase.single
    pending_id: str | None = Field(default=None, min_length=1, max_length=255)
    dispute_id: str | None = Field(default=None, max_length=255)
    order_id: str | None = Field(default=None, max_length=255)
    step: str | None = Field(default=None, max_length=128)

    @model_validator(mode="wrap")
    @classmethod
    def _refused_as_invalid(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> "TransferRequest":
        """A malformed request is the ledger's own refusal, InvalidTransfer, wherever it is built."""
        try:
            return handler(data)
        except ValidationError as error:
            transfer_id = data.get("id") if isinstance(data, dict) else None
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'request'}: {e['msg']}" for e in error.errors())
            raise InvalidTransfer(f"Transfer {transfer_id!r} is malformed: {problems}",
                                  transfer_id=transfer_id) from None


class TransferResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    status: Literal["created", "exists"]


class TransferView(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    debit_account_id: str
    credit_account_id: str
    amount: int
    currency: str
    code: str
    phase: TransferPhase
    pending_id: str | None
    pending_status: PendingStatus | None
    dispute_id: str | None
    order_id: str | None
    step: str | None
    created_at: datetime


class AccountBalance(AccountSpec):
    """An account's definition and its counters, as read from the ledger."""

    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    balance: int  # credits_posted - debits_posted
    available: int  # balance - debits_pending


class OrderRefunds(BaseModel):
    """An order's money as its transfers show it: paid into its escrow, and refunded to its buyer."""

    model_config = ConfigDict(frozen=True)

    paid: int
    # Net of everything the order's transfers moved to and from the buyer: refunds, advances
    # (a live hold counts, it may still be kept), clawbacks and appeal adjustments.
    refunded: int


def formatted(amount: int, currency: str) -> str:
    """A human amount: "-12.34 CNY"."""
    try:
        text = str(Money(amount=abs(amount), currency=currency))
    except ValidationError:
        text = f"{abs(amount)} {currency} (minor units)"
    return f"-{text}" if amount < 0 else text


def account_view(row: LedgerAccount) -> AccountBalance:
    balance = row.credits_posted - row.debits_posted
    return AccountBalance.model_validate(row.model_dump() | {"balance": balance,
                                                             "available": balance - row.debits_pending})


def transfer_view(row: LedgerTransfer) -> TransferView:
    created_at = row.created_at
    # SQLite hands timestamps back without their zone; they were stored as UTC.
    return TransferView.model_validate(row.model_dump() | {
        "created_at": created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)})

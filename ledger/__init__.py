"""The double-entry ledger: accounts, transfers, two-phase pending/post/void."""

from ledger import accounts
from ledger.accounts import AccountKind, AccountSpec
from ledger.errors import (
    AccountExistsWithDifferentFields,
    AmountExceedsPending,
    AmountOverflow,
    CurrencyMismatch,
    InsufficientFunds,
    InvalidAccount,
    InvalidTransfer,
    LedgerError,
    PendingAlreadyResolved,
    PendingNotFound,
    RefundExceedsPaid,
    TransferExistsWithDifferentFields,
    UnknownAccount,
)
from ledger.service import Ledger
from ledger.types import (
    AccountBalance,
    OrderRefunds,
    PendingStatus,
    TransferPhase,
    TransferRequest,
    TransferResult,
    TransferView,
)

__all__ = [
    "AccountBalance",
    "AccountExistsWithDifferentFields",
    "AccountKind",
    "AccountSpec",
    "AmountExceedsPending",
    "AmountOverflow",
    "CurrencyMismatch",
    "InsufficientFunds",
    "InvalidAccount",
    "InvalidTransfer",
    "Ledger",
    "OrderRefunds",
    "LedgerError",
    "PendingAlreadyResolved",
    "PendingNotFound",
    "PendingStatus",
    "RefundExceedsPaid",
    "TransferExistsWithDifferentFields",
    "TransferPhase",
    "TransferRequest",
    "TransferResult",
    "TransferView",
    "UnknownAccount",
    "accounts",
]

"""The double-entry ledger: accounts, transfers, two-phase pending/post/void."""

from ledger import accounts
from ledger.accounts import AccountKind, AccountSpec
from ledger.errors import (
    AccountExistsWithDifferentFields,
    AmountExceedsPending,
    CurrencyMismatch,
    InsufficientFunds,
    InvalidAccount,
    InvalidTransfer,
    LedgerError,
    PendingAlreadyResolved,
    PendingNotFound,
    TransferExistsWithDifferentFields,
    UnknownAccount,
)
from ledger.service import (
    AccountBalance,
    Ledger,
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
    "CurrencyMismatch",
    "InsufficientFunds",
    "InvalidAccount",
    "InvalidTransfer",
    "Ledger",
    "LedgerError",
    "PendingAlreadyResolved",
    "PendingNotFound",
    "PendingStatus",
    "TransferExistsWithDifferentFields",
    "TransferPhase",
    "TransferRequest",
    "TransferResult",
    "TransferView",
    "UnknownAccount",
    "accounts",
]

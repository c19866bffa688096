"""Ledger errors. Every one is a refusal that a retry cannot fix: the activity layer turns
them into non-retryable Temporal ApplicationErrors, with ``code`` as the error type and
``details`` as machine-readable context. Messages are written for a human operator."""

from typing import Any, ClassVar


class LedgerError(Exception):
    code: ClassVar[str] = "ledger_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # keep the details when pickled (process pools, test workers)
        return (_rebuild, (type(self), self.message, self.details))


def _rebuild(cls: type[LedgerError], message: str, details: dict[str, Any]) -> LedgerError:
    return cls(message, **details)


class UnknownAccount(LedgerError):
    code = "unknown_account"


class InvalidAccount(LedgerError):
    """An account that cannot be opened as asked (bad currency, empty owner, ...)."""

    code = "invalid_account"


class AccountExistsWithDifferentFields(LedgerError):
    code = "account_exists_with_different_fields"


class CurrencyMismatch(LedgerError):
    code = "currency_mismatch"


class InsufficientFunds(LedgerError):
    code = "insufficient_funds"


class PendingNotFound(LedgerError):
    code = "pending_not_found"


class PendingAlreadyResolved(LedgerError):
    code = "pending_already_resolved"


class AmountExceedsPending(LedgerError):
    code = "amount_exceeds_pending"


class TransferExistsWithDifferentFields(LedgerError):
    code = "transfer_exists_with_different_fields"


class InvalidTransfer(LedgerError):
    code = "invalid_transfer"


class AmountOverflow(LedgerError):
    """A transfer would take an account's totals beyond the largest amount money can express."""

    code = "amount_overflow"


class RefundExceedsPaid(LedgerError):
    """Transfers naming an order would leave its buyer refunded more than was paid into its escrow."""

    code = "refund_exceeds_paid"

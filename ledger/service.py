"""The double-entry ledger, in the spirit of TigerBeetle's accounts and transfers: the façade.

Balances are credit-normal: ``balance = credits_posted - debits_posted`` and
``available = balance - debits_pending``. A transfer debits its debit account and credits
its credit account, so money always moves from the debit account to the credit account.

Every write goes through :meth:`Ledger.create_transfers` (the batch engine, ``ledger.batch``);
``ledger.invariants`` holds the rules it keeps; ``ledger.types`` what callers send and read.
"""

from collections.abc import Callable, Sequence

from sqlalchemy import Engine, or_
from sqlmodel import Session, select

from database import fetch, reading
from ledger import accounts as _accounts
from ledger import batch, invariants
from ledger.accounts import AccountKind, AccountSpec
from ledger.errors import UnknownAccount
from ledger.models import LedgerAccount, LedgerTransfer
from ledger.types import AccountBalance, OrderRefunds, TransferRequest, TransferResult, TransferView, account_view, transfer_view
from observability.metrics import ledger_posting


class Ledger:
    """The ledger service. Synchronous and thread safe: one short transaction per call."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ----------------------------------------------------------------- accounts

    def open_account(
        self, kind: AccountKind | str, owner: str, currency: str, *, floor: int = 0
    ) -> AccountBalance:
        """Create the account for (kind, owner, currency) if it does not exist; return it.

        Opening an existing account with the same definition is a no-op; with a different
        floor it raises :class:`AccountExistsWithDifferentFields`.
        """
        return account_view(batch.open_account(self.engine, _accounts.spec(kind, owner, currency, floor=floor)))

    def account(self, account_id: str) -> AccountBalance:
        return account_view(fetch(self.engine, LedgerAccount, account_id,
                                  lambda: UnknownAccount(f"No ledger account {account_id}", account_id=account_id)))

    def accounts(
        self,
        owner: str | None = None,
        kind: AccountKind | str | None = None,
        currency: str | None = None,
    ) -> list[AccountBalance]:
        kind = None if kind is None else AccountKind(kind).value
        query = select(LedgerAccount).filter_by(**_given(owner=owner, kind=kind, currency=currency))
        query = query.order_by(LedgerAccount.id)
        with reading(self.engine) as db:
            return [account_view(row) for row in db.exec(query)]

    # ---------------------------------------------------------------- transfers

    def create_transfers(self, requests: Sequence[TransferRequest], *, opening: Sequence[AccountSpec] = (),
                         entering: bool = False,
                         alongside: Callable[[Session], None] | None = None) -> list[TransferResult]:
        """Apply a linked batch: every transfer or none (the first refusal raises).

        ``opening``: accounts to open (as :meth:`open_account`) in the same transaction, so a
        refused batch leaves no new account behind either.

        ``alongside``: the caller's own rows, written once the batch applied, in the same
        transaction (an order and its payment commit together). It may raise to refuse the
        whole batch, and runs again if the transaction is retried after losing a race.

        ``entering``: money coming in from outside (an order's payment, a fund top-up). Only
        such a batch is refused (:class:`AmountOverflow`) for taking an account's totals past
        the money bounds; money moved inside a case never is, or an accepted case could be
        left unable to settle.

        A transfer whose id exists with the same fields is answered ``exists`` and changes
        nothing; with different fields it raises :class:`TransferExistsWithDifferentFields`.
        Transfers apply in order, each seeing the balances left by the ones before it.
        """
        requests = list(requests)
        if not requests:
            return []
        with ledger_posting(len(requests)):
            return batch.write(self.engine, requests, opening, entering, alongside)

    def transfers(
        self,
        dispute_id: str | None = None,
        account_id: str | None = None,
        order_id: str | None = None,
    ) -> list[TransferView]:
        """Transfers matching every given filter, in creation order."""
        query = select(LedgerTransfer).filter_by(**_given(dispute_id=dispute_id, order_id=order_id))
        query = query.order_by(LedgerTransfer.seq)
        if account_id is not None:
            query = query.where(
                or_(
                    LedgerTransfer.debit_account_id == account_id,
                    LedgerTransfer.credit_account_id == account_id,
                )
            )
        with reading(self.engine) as db:
            return [transfer_view(row) for row in db.exec(query)]

    def find_transfer(self, transfer_id: str) -> TransferView | None:
        """The transfer with this id, or None if there is none."""
        with reading(self.engine) as db:
            row = db.get(LedgerTransfer, transfer_id)
            return transfer_view(row) if row is not None else None

    def order_refunds(self, order_id: str) -> OrderRefunds:
        with reading(self.engine) as db:
            return invariants.order_refunds(db, order_id)

    # ---------------------------------------------------------------- auditing

    def check_invariants(self) -> list[str]:
        """Everything wrong with the ledger, as sentences; empty when it is healthy."""
        return invariants.audit(*self._rows())

    def snapshot(self, currency: str) -> tuple[list[AccountBalance], list[TransferView]]:
        """Every account and every transfer (in creation order) in `currency`, as of one instant."""
        accounts, transfers = self._rows(currency)
        return [account_view(row) for row in accounts.values()], [transfer_view(row) for row in transfers]

    def _rows(self, currency: str | None = None) -> tuple[dict[str, LedgerAccount], list[LedgerTransfer]]:
        accounts_query, transfers_query = select(LedgerAccount), select(LedgerTransfer).order_by(LedgerTransfer.seq)
        if currency is not None:
            accounts_query = accounts_query.where(LedgerAccount.currency == currency)
            transfers_query = transfers_query.where(LedgerTransfer.currency == currency)
        engine = self.engine
        if engine.dialect.name == "postgresql":
            engine = engine.execution_options(isolation_level="REPEATABLE READ")  # one snapshot
        with reading(engine) as db:
            accounts = {row.id: row for row in db.exec(accounts_query)}
            transfers = list(db.exec(transfers_query))
        return accounts, transfers


def _given(**filters: object) -> dict[str, object]:
    """The filters a caller gave, for `filter_by`: None means not filtered on."""
    return {name: value for name, value in filters.items() if value is not None}

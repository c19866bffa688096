"""The double-entry ledger, in the spirit of TigerBeetle's accounts and transfers.

Balances are credit-normal: ``balance = credits_posted - debits_posted`` and
``available = balance - debits_pending``. A transfer debits its debit account and credits
its credit account, so money always moves from the debit account to the credit account.

Every write goes through :meth:`Ledger.create_transfers`: a linked batch applied in one
database transaction (all or nothing), idempotent per transfer id. The account rows a
batch touches are locked (``SELECT ... FOR UPDATE`` in id order on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` serialises writers) before anything is checked, so balance checks
and pending-transfer resolution are race free. Two writers racing on the same new
transfer id meet at the primary key: the loser's transaction is rolled back and retried,
and the retry finds the winner's transfer and answers ``exists``.
"""

import itertools
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine, func, or_
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, select

from ledger import accounts as _accounts
from ledger.accounts import AccountKind, AccountSpec
from ledger.errors import (
    AccountExistsWithDifferentFields,
    AmountExceedsPending,
    AmountOverflow,
    CurrencyMismatch,
    InsufficientFunds,
    InvalidTransfer,
    PendingAlreadyResolved,
    PendingNotFound,
    RefundExceedsPaid,
    TransferExistsWithDifferentFields,
    UnknownAccount,
)
from ledger.models import LedgerAccount, LedgerTransfer, utcnow
from money import MAX_AMOUNT, CurrencyCode, Money
from observability.metrics import ledger_posting

# A transaction that lost a race (same new id inserted concurrently, a PostgreSQL
# deadlock between batches sharing ids but not accounts) is retried this many times.
MAX_ATTEMPTS = 5
# A BIGINT counter's range: no transfer may take an account's totals past it.
COUNTER_LIMIT = 2**63 - 1


class TransferPhase(StrEnum):
    single = "single"  # posted immediately
    pending = "pending"  # a two-phase hold
    post_pending = "post_pending"  # posts (all or part of) a pending transfer
    void_pending = "void_pending"  # releases a pending transfer


class PendingStatus(StrEnum):
    pending = "pending"
    posted = "posted"
    voided = "voided"


_RESOLVING = (TransferPhase.post_pending, TransferPhase.void_pending)
_POSTING = (TransferPhase.single, TransferPhase.post_pending)


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


class _Retry(Exception):
    """The transaction saw a state it did not lock (a concurrent writer got in between)."""


def _fmt(amount: int, currency: str) -> str:
    """A human amount: "-12.34 CNY"."""
    try:
        text = str(Money(amount=abs(amount), currency=currency))
    except ValidationError:
        text = f"{abs(amount)} {currency} (minor units)"
    return f"-{text}" if amount < 0 else text


def _account_view(row: LedgerAccount) -> AccountBalance:
    balance = row.credits_posted - row.debits_posted
    return AccountBalance(
        id=row.id,
        kind=AccountKind(row.kind),
        owner=row.owner,
        currency=row.currency,
        allow_negative=row.allow_negative,
        floor=row.floor,
        debits_pending=row.debits_pending,
        debits_posted=row.debits_posted,
        credits_pending=row.credits_pending,
        credits_posted=row.credits_posted,
        balance=balance,
        available=balance - row.debits_pending,
    )


def _transfer_view(row: LedgerTransfer) -> TransferView:
    return TransferView(
        id=row.id,
        debit_account_id=row.debit_account_id,
        credit_account_id=row.credit_account_id,
        amount=row.amount,
        currency=row.currency,
        code=row.code,
        phase=TransferPhase(row.phase),
        pending_id=row.pending_id,
        pending_status=PendingStatus(row.pending_status) if row.pending_status else None,
        dispute_id=row.dispute_id,
        order_id=row.order_id,
        step=row.step,
        # SQLite hands timestamps back without their zone; they were stored as UTC.
        created_at=row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC),
    )


_COMPARED = (
    "debit_account_id",
    "credit_account_id",
    "amount",
    "currency",
    "code",
    "phase",
    "pending_id",
    "dispute_id",
    "order_id",
    "step",
)


def _is_lost_race(error: IntegrityError | OperationalError) -> bool:
    orig = error.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:  # psycopg: unique violation, deadlock, serialization failure
        return sqlstate in ("23505", "40P01", "40001")
    return isinstance(error, IntegrityError) and "UNIQUE constraint failed" in str(orig)


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
        spec = _accounts.spec(kind, owner, currency, floor=floor)
        for attempt in itertools.count(1):
            try:
                with Session(self.engine, expire_on_commit=False) as db, db.begin():
                    return _account_view(_ensure_account(db, spec))
            except IntegrityError as error:
                if attempt >= MAX_ATTEMPTS or not _is_lost_race(error):
                    raise
        raise AssertionError("unreachable")

    def account(self, account_id: str) -> AccountBalance:
        with Session(self.engine) as db:
            row = db.get(LedgerAccount, account_id)
            if row is None:
                raise UnknownAccount(f"No ledger account {account_id}", account_id=account_id)
            return _account_view(row)

    def accounts(
        self,
        owner: str | None = None,
        kind: AccountKind | str | None = None,
        currency: str | None = None,
    ) -> list[AccountBalance]:
        query = select(LedgerAccount).order_by(LedgerAccount.id)
        if owner is not None:
            query = query.where(LedgerAccount.owner == owner)
        if kind is not None:
            query = query.where(LedgerAccount.kind == AccountKind(kind).value)
        if currency is not None:
            query = query.where(LedgerAccount.currency == currency)
        with Session(self.engine) as db:
            return [_account_view(row) for row in db.exec(query)]

    # ---------------------------------------------------------------- transfers

    def create_transfers(self, requests: Sequence[TransferRequest], *,
                         opening: Sequence[AccountSpec] = (), entering: bool = False) -> list[TransferResult]:
        """Apply a linked batch: every transfer or none (the first refusal raises).

        ``opening``: accounts to open (as :meth:`open_account`) in the same transaction, so a
        refused batch leaves no new account behind either.

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
        _check_shape(requests)
        with ledger_posting(len(requests)):
            return self._apply(requests, opening, entering)

    def _apply(self, requests: list[TransferRequest], opening: Sequence[AccountSpec],
               entering: bool) -> list[TransferResult]:
        for attempt in itertools.count(1):
            try:
                with Session(self.engine, expire_on_commit=False) as db, db.begin():
                    for spec in opening:
                        _ensure_account(db, spec)
                    return _Batch(db, requests, entering).apply()
            except _Retry:
                if attempt >= MAX_ATTEMPTS:
                    raise
            except (IntegrityError, OperationalError) as error:
                if attempt >= MAX_ATTEMPTS or not _is_lost_race(error):
                    raise
        raise AssertionError("unreachable")

    def transfer(
        self,
        id: str,
        debit_account_id: str,
        credit_account_id: str,
        amount: int,
        currency: str,
        code: str,
        *,
        dispute_id: str | None = None,
        order_id: str | None = None,
        step: str | None = None,
    ) -> TransferResult:
        """Move ``amount`` from the debit account to the credit account, posted at once."""
        return self._one(
            id=id,
            debit_account_id=debit_account_id,
            credit_account_id=credit_account_id,
            amount=amount,
            currency=currency,
            code=code,
            phase=TransferPhase.single,
            dispute_id=dispute_id,
            order_id=order_id,
            step=step,
        )

    def hold(
        self,
        id: str,
        debit_account_id: str,
        credit_account_id: str,
        amount: int,
        currency: str,
        code: str,
        *,
        dispute_id: str | None = None,
        order_id: str | None = None,
        step: str | None = None,
    ) -> TransferResult:
        """A pending (two-phase) transfer: reserved on both accounts until posted or voided."""
        return self._one(
            id=id,
            debit_account_id=debit_account_id,
            credit_account_id=credit_account_id,
            amount=amount,
            currency=currency,
            code=code,
            phase=TransferPhase.pending,
            dispute_id=dispute_id,
            order_id=order_id,
            step=step,
        )

    def post(
        self,
        id: str,
        pending_id: str,
        amount: int | None = None,
        *,
        code: str | None = None,
        dispute_id: str | None = None,
        order_id: str | None = None,
        step: str | None = None,
    ) -> TransferResult:
        """Post ``amount`` (default: all) of a pending transfer; the rest is released."""
        return self._one(
            id=id,
            pending_id=pending_id,
            amount=amount,
            code=code,
            phase=TransferPhase.post_pending,
            dispute_id=dispute_id,
            order_id=order_id,
            step=step,
        )

    def void(
        self,
        id: str,
        pending_id: str,
        *,
        code: str | None = None,
        dispute_id: str | None = None,
        order_id: str | None = None,
        step: str | None = None,
    ) -> TransferResult:
        """Release a pending transfer entirely."""
        return self._one(
            id=id,
            pending_id=pending_id,
            code=code,
            phase=TransferPhase.void_pending,
            dispute_id=dispute_id,
            order_id=order_id,
            step=step,
        )

    def _one(self, **fields: object) -> TransferResult:
        try:
            request = TransferRequest(**fields)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'request'}: {e['msg']}" for e in error.errors()
            )
            raise InvalidTransfer(f"Transfer {fields.get('id')!r} is malformed: {problems}",
                                  transfer_id=fields.get("id")) from None
        return self.create_transfers([request])[0]

    def transfers(
        self,
        dispute_id: str | None = None,
        account_id: str | None = None,
        order_id: str | None = None,
    ) -> list[TransferView]:
        """Transfers matching every given filter, in creation order."""
        query = select(LedgerTransfer).order_by(LedgerTransfer.seq)
        if dispute_id is not None:
            query = query.where(LedgerTransfer.dispute_id == dispute_id)
        if order_id is not None:
            query = query.where(LedgerTransfer.order_id == order_id)
        if account_id is not None:
            query = query.where(
                or_(
                    LedgerTransfer.debit_account_id == account_id,
                    LedgerTransfer.credit_account_id == account_id,
                )
            )
        with Session(self.engine) as db:
            return [_transfer_view(row) for row in db.exec(query)]

    def find_transfer(self, transfer_id: str) -> TransferView | None:
        """The transfer with this id, or None if there is none."""
        with Session(self.engine) as db:
            row = db.get(LedgerTransfer, transfer_id)
            return _transfer_view(row) if row is not None else None

    def order_refunds(self, order_id: str) -> OrderRefunds:
        with Session(self.engine) as db:
            return order_refunds(db, order_id)

    # ---------------------------------------------------------------- auditing

    def check_invariants(self) -> list[str]:
        """Everything wrong with the ledger, as sentences; empty when it is healthy."""
        return _audit(*self._rows())

    def snapshot(self, currency: str) -> tuple[list[AccountBalance], list[TransferView]]:
        """Every account and every transfer (in creation order) in `currency`, as of one instant."""
        accounts, transfers = self._rows(currency)
        return [_account_view(row) for row in accounts.values()], [_transfer_view(row) for row in transfers]

    def _rows(self, currency: str | None = None) -> tuple[dict[str, LedgerAccount], list[LedgerTransfer]]:
        accounts_query, transfers_query = select(LedgerAccount), select(LedgerTransfer).order_by(LedgerTransfer.seq)
        if currency is not None:
            accounts_query = accounts_query.where(LedgerAccount.currency == currency)
            transfers_query = transfers_query.where(LedgerTransfer.currency == currency)
        engine = self.engine
        if engine.dialect.name == "postgresql":
            engine = engine.execution_options(isolation_level="REPEATABLE READ")  # one snapshot
        with Session(engine) as db:
            accounts = {row.id: row for row in db.exec(accounts_query)}
            transfers = list(db.exec(transfers_query))
        return accounts, transfers


def _ensure_account(db: Session, spec: AccountSpec) -> LedgerAccount:
    """The account row for `spec`, created in `db`'s transaction if missing; refused if it
    exists with another definition."""
    row = db.get(LedgerAccount, spec.id)
    if row is None:
        row = LedgerAccount(
            id=spec.id,
            kind=spec.kind.value,
            owner=spec.owner,
            currency=spec.currency,
            allow_negative=spec.allow_negative,
            floor=spec.floor,
        )
        db.add(row)
        db.flush()
    elif (row.kind, row.owner, row.currency, row.allow_negative, row.floor) != (
        spec.kind.value,
        spec.owner,
        spec.currency,
        spec.allow_negative,
        spec.floor,
    ):
        raise AccountExistsWithDifferentFields(
            f"Account {spec.id} already exists with floor {_fmt(row.floor, row.currency)}"
            f" (allow_negative={row.allow_negative}); it cannot be reopened with floor"
            f" {_fmt(spec.floor, spec.currency)} (allow_negative={spec.allow_negative})",
            account_id=spec.id,
        )
    return row


def order_refunds(db: Session, order_id: str) -> OrderRefunds:
    """What the order's transfers paid in and refunded, read in the caller's transaction (the
    ledger's own guard, and the orders service while it holds the order's row)."""
    transfers = list(db.exec(select(LedgerTransfer).where(LedgerTransfer.order_id == order_id)))
    sides = {a for t in transfers for a in (t.debit_account_id, t.credit_account_id)}
    kinds = dict(db.exec(select(LedgerAccount.id, LedgerAccount.kind).where(LedgerAccount.id.in_(sides))).all())
    return _refunds(transfers, kinds)


def _refunds(transfers: Sequence[LedgerTransfer], kinds: dict[str, str]) -> OrderRefunds:
    """One order's OrderRefunds from its transfers and the kinds of the accounts they name."""
    paid = refunded = 0
    for t in transfers:
        posted = t.phase in _POSTING
        held = t.phase == TransferPhase.pending and t.pending_status == PendingStatus.pending
        if posted and kinds[t.credit_account_id] == AccountKind.escrow:
            paid += t.amount
        if (posted or held) and kinds[t.credit_account_id] == AccountKind.buyer:
            refunded += t.amount
        if posted and kinds[t.debit_account_id] == AccountKind.buyer:
            refunded -= t.amount
    return OrderRefunds(paid=paid, refunded=refunded)


# ---------------------------------------------------------------------- internals


def _invalid(request: TransferRequest, why: str) -> InvalidTransfer:
    return InvalidTransfer(f"Transfer {request.id} is invalid: {why}", transfer_id=request.id)


def _check_amount(request: TransferRequest) -> None:
    if request.amount is None:
        return
    if request.amount <= 0:
        raise _invalid(request, f"the amount must be a positive number of minor units, not {request.amount}")
    if request.amount > MAX_AMOUNT:
        raise _invalid(request, f"the amount {request.amount} exceeds the maximum {MAX_AMOUNT} minor units")


def _check_shape(requests: list[TransferRequest]) -> None:
    """What can be refused without looking at the database."""
    seen: set[str] = set()
    for request in requests:
        if request.id in seen:
            raise _invalid(request, "its id appears twice in the same batch")
        seen.add(request.id)
        _check_amount(request)
        if request.phase in _RESOLVING:
            if request.pending_id is None:
                raise _invalid(request, f"a {request.phase.value} transfer needs the pending_id it resolves")
            if request.pending_id == request.id:
                raise _invalid(request, "it cannot resolve itself")
        else:
            missing = [
                name
                for name in ("debit_account_id", "credit_account_id", "amount", "currency", "code")
                if getattr(request, name) is None
            ]
            if missing:
                raise _invalid(request, f"a {request.phase.value} transfer needs {', '.join(missing)}")
            if request.pending_id is not None:
                raise _invalid(request, "only post_pending and void_pending transfers take a pending_id")
        if (
            request.debit_account_id is not None
            and request.debit_account_id == request.credit_account_id
        ):
            raise _invalid(request, f"it debits and credits the same account {request.debit_account_id}")


class _Batch:
    """One attempt at applying a linked batch inside one transaction."""

    def __init__(self, db: Session, requests: list[TransferRequest], entering: bool) -> None:
        self.db = db
        self.requests = requests
        self.entering = entering
        self.is_sqlite = db.get_bind().dialect.name == "sqlite"

    def apply(self) -> list[TransferResult]:
        db = self.db
        batch_ids = {r.id for r in self.requests}
        outside_pending_ids = {
            r.pending_id for r in self.requests if r.pending_id is not None and r.pending_id not in batch_ids
        }
        # 1. Which accounts will change: the requests' own, and those of the pending
        #    transfers they resolve (read without a lock; re-checked after locking).
        to_lock = {a for r in self.requests for a in (r.debit_account_id, r.credit_account_id) if a}
        if outside_pending_ids:
            for row in db.exec(select(LedgerTransfer).where(LedgerTransfer.id.in_(outside_pending_ids))):
                to_lock.update((row.debit_account_id, row.credit_account_id))
        # 2. Lock them, always in id order so concurrent batches cannot deadlock.
        self.locked: dict[str, LedgerAccount] = {
            row.id: row
            for row in db.exec(
                select(LedgerAccount)
                .where(LedgerAccount.id.in_(sorted(to_lock)))
                .order_by(LedgerAccount.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        }
        # 3. Only now read the transfers: under the locks nobody can resolve our pending
        #    transfers or create transfers on our accounts until we commit.
        self.known: dict[str, LedgerTransfer] = {
            row.id: row
            for row in db.exec(
                select(LedgerTransfer)
                .where(LedgerTransfer.id.in_(batch_ids | outside_pending_ids))
                .execution_options(populate_existing=True)
            )
        }
        self.next_seq: int | None = None
        if self.is_sqlite:  # BEGIN IMMEDIATE holds the write lock: max + 1 is ours
            self.next_seq = (db.exec(select(func.max(LedgerTransfer.seq))).one() or 0) + 1
        # Orders whose buyer this batch credits: checked once the whole batch is applied.
        self.refunding_orders: set[str] = set()
        results = [self._apply_one(request) for request in self.requests]
        self._check_refunds_within_paid()
        return results

    def _check_refunds_within_paid(self) -> None:
        """The last guard of "refunded on an order never exceeds what was paid", whatever code
        path formed the refund. Every transfer crediting a buyer locked that buyer's account,
        so no concurrent batch on the same order can slip in between."""
        for order_id in sorted(self.refunding_orders):
            refunds = order_refunds(self.db, order_id)
            if refunds.refunded > refunds.paid:
                raise RefundExceedsPaid(
                    f"Order {order_id} was paid {refunds.paid} minor units; these transfers would refund"
                    f" its buyer {refunds.refunded} in all",
                    order_id=order_id, paid=refunds.paid, refunded=refunds.refunded,
                )

    def _apply_one(self, request: TransferRequest) -> TransferResult:
        pending = self.known.get(request.pending_id) if request.pending_id else None
        fields = self._normalised(request, pending)
        existing = self.known.get(request.id)
        if existing is not None:
            stored = {name: getattr(existing, name) for name in _COMPARED}
            if stored != fields:
                differences = ", ".join(
                    f"{name} {stored[name]!r} (now {fields[name]!r})"
                    for name in _COMPARED
                    if stored[name] != fields[name]
                )
                raise TransferExistsWithDifferentFields(
                    f"Transfer {request.id} already exists with different fields: {differences}",
                    transfer_id=request.id,
                )
            return TransferResult(id=request.id, status="exists")

        debit = self._account(fields["debit_account_id"])
        credit = self._account(fields["credit_account_id"])
        currency = fields["currency"]
        for account in (debit, credit):
            if account.currency != currency:
                raise CurrencyMismatch(
                    f"Transfer {request.id} is in {currency} but account {account.id} holds {account.currency}",
                    transfer_id=request.id,
                    account_id=account.id,
                )
        amount = fields["amount"]
        phase = request.phase
        if phase in _RESOLVING:
            assert pending is not None
            if pending.pending_status != PendingStatus.pending:
                resolver = self.db.exec(
                    select(LedgerTransfer.id).where(LedgerTransfer.pending_id == pending.id)
                ).first()
                raise PendingAlreadyResolved(
                    f"Pending transfer {pending.id} was already {pending.pending_status}"
                    f" by transfer {resolver}; transfer {request.id} cannot {phase.value.split('_')[0]} it",
                    transfer_id=request.id,
                    pending_id=pending.id,
                    pending_status=pending.pending_status,
                    resolved_by=resolver,
                )
            debit.debits_pending -= pending.amount
            credit.credits_pending -= pending.amount
            if phase == TransferPhase.post_pending:
                debit.debits_posted += amount
                credit.credits_posted += amount
                pending.pending_status = PendingStatus.posted.value
            else:
                pending.pending_status = PendingStatus.voided.value
        else:
            if not debit.allow_negative:
                available = debit.credits_posted - debit.debits_posted - debit.debits_pending
                if available - amount < debit.floor:
                    raise InsufficientFunds(
                        f"Account {debit.id} has {_fmt(available, currency)} available"
                        + (f" above its floor of {_fmt(debit.floor, currency)}" if debit.floor else "")
                        + f"; transfer {request.id} needs {_fmt(amount, currency)}",
                        transfer_id=request.id,
                        account_id=debit.id,
                        available=available,
                        floor=debit.floor,
                        amount=amount,
                    )
            for account, side in ((debit, "debits"), (credit, "credits")):
                total = getattr(account, f"{side}_posted") + getattr(account, f"{side}_pending")
                # Entering money is held to the money bounds (platform-side accounts that may go
                # negative only mirror it); any transfer to what the database column can hold.
                bound = MAX_AMOUNT if self.entering and not account.allow_negative else COUNTER_LIMIT
                if total + amount > bound:
                    raise AmountOverflow(
                        f"Transfer {request.id} would take the {side} of account {account.id} to"
                        f" {total + amount} minor units, more than the {bound} an account may hold",
                        transfer_id=request.id, account_id=account.id, maximum=bound,
                    )
            if fields["order_id"] is not None and AccountKind.buyer == credit.kind:
                self.refunding_orders.add(fields["order_id"])
            if phase == TransferPhase.pending:
                debit.debits_pending += amount
                credit.credits_pending += amount
            else:
                debit.debits_posted += amount
                credit.credits_posted += amount

        row = LedgerTransfer(
            id=request.id,
            **{name: value for name, value in fields.items() if name not in ("phase", "id")},
            phase=phase.value,
            pending_status=PendingStatus.pending.value if phase == TransferPhase.pending else None,
            created_at=utcnow(),
        )
        if self.next_seq is not None:
            row.seq = self.next_seq
            self.next_seq += 1
        self.db.add(row)
        self.db.flush()
        self.known[row.id] = row
        return TransferResult(id=request.id, status="created")

    def _normalised(self, request: TransferRequest, pending: LedgerTransfer | None) -> dict[str, object]:
        """The request's fields with a post/void's defaults filled in from its pending
        transfer: what gets stored, and what a retry is compared against."""
        fields: dict[str, object] = {name: getattr(request, name) for name in _COMPARED}
        fields["phase"] = request.phase.value
        if request.phase not in _RESOLVING:
            return fields
        existing = self.known.get(request.id)
        if pending is None or pending.phase != TransferPhase.pending:
            if existing is not None:
                return fields  # compared (and refused) as different fields
            if pending is None:
                raise PendingNotFound(
                    f"Transfer {request.id} resolves pending transfer {request.pending_id}, which does not exist",
                    transfer_id=request.id,
                    pending_id=request.pending_id,
                )
            raise PendingNotFound(
                f"Transfer {request.id} resolves {request.pending_id}, which is a {pending.phase} transfer,"
                " not a pending one",
                transfer_id=request.id,
                pending_id=request.pending_id,
            )
        for name in ("debit_account_id", "credit_account_id", "currency"):
            given = fields[name]
            if given is None:
                fields[name] = getattr(pending, name)
            elif given != getattr(pending, name) and existing is None:
                error = CurrencyMismatch if name == "currency" else InvalidTransfer
                raise error(
                    f"Transfer {request.id} names {name} {given} but pending transfer {pending.id}"
                    f" has {getattr(pending, name)}",
                    transfer_id=request.id,
                    pending_id=pending.id,
                )
        for name in ("code", "dispute_id", "order_id"):
            if fields[name] is None:
                fields[name] = getattr(pending, name)
        amount = request.amount
        if amount is None:
            fields["amount"] = pending.amount
        elif amount > pending.amount and existing is None:
            raise AmountExceedsPending(
                f"Transfer {request.id} would {request.phase.value.split('_')[0]}"
                f" {_fmt(amount, pending.currency)} but pending transfer {pending.id} holds only"
                f" {_fmt(pending.amount, pending.currency)}",
                transfer_id=request.id,
                pending_id=pending.id,
                amount=amount,
                pending_amount=pending.amount,
            )
        elif request.phase == TransferPhase.void_pending and amount != pending.amount and existing is None:
            raise _invalid(
                request,
                f"a void releases the whole pending amount {_fmt(pending.amount, pending.currency)};"
                " leave the amount out",
            )
        return fields

    def _account(self, account_id: object) -> LedgerAccount:
        assert isinstance(account_id, str)
        row = self.locked.get(account_id)
        if row is not None:
            return row
        if self.db.get(LedgerAccount, account_id) is not None:
            raise _Retry()  # appeared, or belongs to a pending we had not seen: not locked
        raise UnknownAccount(f"No ledger account {account_id}", account_id=account_id)


def _audit(accounts: dict[str, LedgerAccount], transfers: list[LedgerTransfer]) -> list[str]:
    problems: list[str] = []
    expected: dict[str, dict[str, int]] = defaultdict(
        lambda: {"debits_pending": 0, "debits_posted": 0, "credits_pending": 0, "credits_posted": 0}
    )
    resolvers: dict[str, list[LedgerTransfer]] = defaultdict(list)
    by_id = {t.id: t for t in transfers}
    debited: set[str] = set()
    for t in transfers:
        for side in (t.debit_account_id, t.credit_account_id):
            account = accounts.get(side)
            if account is None:
                problems.append(f"transfer {t.id} refers to missing account {side}")
            elif account.currency != t.currency:
                problems.append(f"transfer {t.id} is in {t.currency} but account {side} holds {account.currency}")
        if t.amount <= 0:
            problems.append(f"transfer {t.id} has non-positive amount {t.amount}")
        if t.phase in _POSTING:
            expected[t.debit_account_id]["debits_posted"] += t.amount
            expected[t.credit_account_id]["credits_posted"] += t.amount
        elif t.phase == TransferPhase.pending and t.pending_status == PendingStatus.pending:
            expected[t.debit_account_id]["debits_pending"] += t.amount
            expected[t.credit_account_id]["credits_pending"] += t.amount
        if t.pending_id is not None:
            resolvers[t.pending_id].append(t)
        else:
            debited.add(t.debit_account_id)

    for t in transfers:
        if t.phase != TransferPhase.pending:
            continue
        resolved_by = resolvers.get(t.id, [])
        wanted = {
            PendingStatus.pending: None,
            PendingStatus.posted: TransferPhase.post_pending,
            PendingStatus.voided: TransferPhase.void_pending,
        }.get(t.pending_status)  # type: ignore[call-overload]
        phases = [r.phase for r in resolved_by]
        if (wanted is None and phases) or (wanted is not None and phases != [wanted]):
            problems.append(
                f"pending transfer {t.id} is {t.pending_status} but is resolved by"
                f" {[r.id for r in resolved_by] or 'nothing'}"
            )
        for r in resolved_by:
            if (r.debit_account_id, r.credit_account_id, r.currency) != (
                t.debit_account_id,
                t.credit_account_id,
                t.currency,
            ):
                problems.append(f"transfer {r.id} resolves {t.id} but names other accounts or currency")
            if r.amount > t.amount:
                problems.append(f"transfer {r.id} moves {r.amount}, more than pending {t.id} held ({t.amount})")
    for pending_id, resolved_by in resolvers.items():
        target = by_id.get(pending_id)
        if target is None or target.phase != TransferPhase.pending:
            problems.append(f"transfers {[r.id for r in resolved_by]} resolve {pending_id}, which is not pending")

    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for account in accounts.values():
        counters = {
            "debits_pending": account.debits_pending,
            "debits_posted": account.debits_posted,
            "credits_pending": account.credits_pending,
            "credits_posted": account.credits_posted,
        }
        for name, value in counters.items():
            totals[account.currency][name] += value
            if value < 0:
                problems.append(f"account {account.id} has negative {name} {value}")
        recomputed = expected.get(account.id, dict.fromkeys(counters, 0))
        for name, value in counters.items():
            if value != recomputed[name]:
                problems.append(
                    f"account {account.id} has {name} {value} but its transfers add up to {recomputed[name]}"
                )
        available = account.credits_posted - account.debits_posted - account.debits_pending
        # An account opened with a floor starts below it until funded; what must never
        # happen is a debit taking it (or leaving it) below the floor.
        if not account.allow_negative and available < account.floor and (
            account.id in debited or available < 0
        ):
            problems.append(
                f"account {account.id} has {_fmt(available, account.currency)} available,"
                f" below its floor of {_fmt(account.floor, account.currency)}"
            )
    by_order: dict[str, list[LedgerTransfer]] = defaultdict(list)
    for t in transfers:
        if t.order_id is not None:
            by_order[t.order_id].append(t)
    kinds = {account.id: account.kind for account in accounts.values()}
    for order_id, order_transfers in sorted(by_order.items()):
        if all(t.debit_account_id in kinds and t.credit_account_id in kinds for t in order_transfers):
            refunds = _refunds(order_transfers, kinds)
            if refunds.refunded > refunds.paid:
                problems.append(f"order {order_id} refunded {refunds.refunded}, more than the {refunds.paid} paid")
    for currency, sums in sorted(totals.items()):
        if sums["debits_posted"] != sums["credits_posted"]:
            problems.append(
                f"{currency}: posted debits {sums['debits_posted']} != posted credits {sums['credits_posted']}"
            )
        if sums["debits_pending"] != sums["credits_pending"]:
            problems.append(
                f"{currency}: pending debits {sums['debits_pending']} != pending credits {sums['credits_pending']}"
            )
    return problems


"""The batch write engine: a linked batch of transfers applied in one database transaction
(all or nothing), idempotent per transfer id, in a few Core statements whatever its size.

The account rows a batch touches are locked (``SELECT ... FOR UPDATE`` in id order on
PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises writers) before anything is checked, so
balance checks and pending-transfer resolution are race free, and the checks run in Python on
the locked figures: one read of the accounts, one of the transfers the batch names, one
multi-row insert, the counter updates, one commit. Two writers racing on the same new transfer
id meet at the primary key: the loser's transaction is rolled back and retried, and the retry
finds the winner's transfer and answers ``exists``.
"""

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Executable, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

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
from ledger.invariants import order_refunds
from ledger.models import LedgerAccount, LedgerTransfer, utcnow
from ledger.types import RESOLVING, PendingStatus, TransferPhase, TransferRequest, TransferResult, formatted
from money import MAX_AMOUNT

# A transaction that lost a race (same new id inserted concurrently, a PostgreSQL
# deadlock between batches sharing ids but not accounts) is retried this many times.
MAX_ATTEMPTS = 5
# A BIGINT counter's range: no transfer may take an account's totals past it.
COUNTER_LIMIT = 2**63 - 1

T = TypeVar("T")
Row = dict[str, Any]

ACCOUNTS = LedgerAccount.__table__
TRANSFERS = LedgerTransfer.__table__
COUNTERS = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")
_DEFINITION = ("kind", "owner", "currency", "allow_negative", "floor")

# The statements of a batch, built once: building and keying them per call was about 8% of a
# batch's CPU in a py-spy profile.
_IDS = bindparam("ids", expanding=True)
_PENDING_SIDES = select(TRANSFERS.c.debit_account_id, TRANSFERS.c.credit_account_id).where(TRANSFERS.c.id.in_(_IDS))
_LOCK_ACCOUNTS = select(ACCOUNTS).where(ACCOUNTS.c.id.in_(_IDS)).order_by(ACCOUNTS.c.id).with_for_update()
_READ_TRANSFERS = select(TRANSFERS).where(TRANSFERS.c.id.in_(_IDS))
_LAST_SEQ = select(func.max(TRANSFERS.c.seq))
_INSERT_TRANSFERS = TRANSFERS.insert()
_RESOLVE_PENDING = (update(TRANSFERS).where(TRANSFERS.c.id == bindparam("resolved_id"))
                    .values(pending_status=bindparam("status")))
_SET_COUNTERS = (update(ACCOUNTS).where(ACCOUNTS.c.id == bindparam("account_id"))
                 .values({name: bindparam(f"new_{name}") for name in COUNTERS}))


def open_account(engine: Engine, spec: AccountSpec) -> LedgerAccount:
    """The account row for `spec`, created if missing (see `_open`)."""

    def work(connection: Connection) -> LedgerAccount:
        _open(connection, [spec])
        row = connection.execute(select(ACCOUNTS).where(ACCOUNTS.c.id == spec.id)).one()._asdict()
        _check_definition(spec, row)
        return LedgerAccount(**row)

    return _in_transaction(engine, work)


def write(engine: Engine, requests: list[TransferRequest], opening: Sequence[AccountSpec],
          entering: bool, alongside: Callable[[Session], None] | None = None) -> list[TransferResult]:
    """Open `opening`, apply `requests` and run `alongside` in one transaction (see
    `Ledger.create_transfers`)."""
    _check_shape(requests)

    def apply(connection: Connection) -> list[TransferResult]:
        _open(connection, opening)
        results = _Batch(connection, requests, opening, entering).apply()
        if alongside is not None:
            # The caller's ORM rows join the batch's transaction; its commit is theirs too.
            with Session(bind=connection) as db:
                alongside(db)
                db.flush()
        return results

    return _in_transaction(engine, apply)


def _in_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    """`work` in one transaction, retried when it lost a race to a concurrent writer."""
    for attempt in itertools.count(1):
        try:
            with engine.begin() as connection:
                return work(connection)
        except _Retry:
            if attempt >= MAX_ATTEMPTS:
                raise
        except (IntegrityError, OperationalError) as error:
            if attempt >= MAX_ATTEMPTS or not _is_lost_race(error):
                raise
    raise AssertionError("unreachable")


class _Retry(Exception):
    """The transaction saw a state it did not lock (a concurrent writer got in between)."""


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


def _open(connection: Connection, specs: Iterable[AccountSpec]) -> None:
    """Insert the accounts of `specs` that do not exist yet, in the caller's transaction; an
    existing one is left as it is and checked against its spec once read (`_check_definition`)."""
    rows = [{"id": spec.id, "kind": spec.kind.value, "owner": spec.owner, "currency": spec.currency,
             "allow_negative": spec.allow_negative, "floor": spec.floor, "created_at": utcnow(),
             **dict.fromkeys(COUNTERS, 0)} for spec in specs]
    if rows:
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        connection.execute(dialect.insert(ACCOUNTS).on_conflict_do_nothing(index_elements=["id"]), rows)


def _check_definition(spec: AccountSpec, row: Row) -> None:
    """Refuse opening an account that exists with another definition."""
    if tuple(row[name] for name in _DEFINITION) != (
        spec.kind.value, spec.owner, spec.currency, spec.allow_negative, spec.floor
    ):
        raise AccountExistsWithDifferentFields(
            f"Account {spec.id} already exists with floor {formatted(row['floor'], row['currency'])}"
            f" (allow_negative={row['allow_negative']}); it cannot be reopened with floor"
            f" {formatted(spec.floor, spec.currency)} (allow_negative={spec.allow_negative})",
            account_id=spec.id,
        )


def _execute(connection: Connection, statement: Executable, rows: list[Row]) -> None:
    """`statement` for each of `rows`: none, one (a plain execute, cheaper than a driver's
    executemany of one) or many."""
    if rows:
        connection.execute(statement, rows[0] if len(rows) == 1 else rows)


def _counters(account: Row) -> tuple[int, ...]:
    return tuple(account[name] for name in COUNTERS)


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
        if request.phase in RESOLVING:
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
    """One attempt at applying a linked batch inside one transaction: the checks run on the
    rows read under the locks, the writes go out together at the end."""

    def __init__(self, connection: Connection, requests: list[TransferRequest], opening: Sequence[AccountSpec],
                 entering: bool) -> None:
        self.connection = connection
        self.requests = requests
        self.opening = opening
        self.entering = entering
        self.is_sqlite = connection.dialect.name == "sqlite"

    def apply(self) -> list[TransferResult]:
        connection = self.connection
        batch_ids = {r.id for r in self.requests}
        outside_pending_ids = {
            r.pending_id for r in self.requests if r.pending_id is not None and r.pending_id not in batch_ids
        }
        # 1. Which accounts will change: the requests' own, and those of the pending
        #    transfers they resolve (read without a lock; re-checked after locking).
        to_lock = {a for r in self.requests for a in (r.debit_account_id, r.credit_account_id) if a}
        to_lock.update(spec.id for spec in self.opening)
        if outside_pending_ids:
            for debit, credit in connection.execute(_PENDING_SIDES, {"ids": list(outside_pending_ids)}):
                to_lock.update((debit, credit))
        # 2. Lock them, always in id order so concurrent batches cannot deadlock.
        self.locked: dict[str, Row] = {
            row["id"]: dict(row)
            for row in connection.execute(_LOCK_ACCOUNTS, {"ids": sorted(to_lock)}).mappings()
        }
        self.counters_read = {account_id: _counters(row) for account_id, row in self.locked.items()}
        for spec in self.opening:
            _check_definition(spec, self.locked[spec.id])
        # 3. Only now read the transfers: under the locks nobody can resolve our pending
        #    transfers or create transfers on our accounts until we commit.
        self.known: dict[str, Row] = {
            row["id"]: dict(row)
            for row in connection.execute(_READ_TRANSFERS, {"ids": list(batch_ids | outside_pending_ids)}).mappings()
        }
        self.next_seq: int | None = None
        if self.is_sqlite:  # BEGIN IMMEDIATE holds the write lock: max + 1 is ours
            self.next_seq = (connection.execute(_LAST_SEQ).scalar() or 0) + 1
        self.stored_ids = set(self.known)
        self.created: list[Row] = []
        # Pending transfers stored before this batch that it posts or voids: id -> new status.
        self.resolved: dict[str, str] = {}
        # Orders whose buyer this batch credits: checked once the whole batch is applied.
        self.refunding_orders: set[str] = set()
        results = [self._apply_one(request) for request in self.requests]
        self._store()
        self._check_refunds_within_paid()
        return results

    def _store(self) -> None:
        """The batch's writes: its new transfers in one insert, then the pending statuses and
        account counters it changed."""
        _execute(self.connection, _INSERT_TRANSFERS, self.created)
        _execute(self.connection, _RESOLVE_PENDING,
                 [{"resolved_id": pending_id, "status": status} for pending_id, status in self.resolved.items()])
        _execute(self.connection, _SET_COUNTERS, [
            {"account_id": row["id"], **{f"new_{name}": row[name] for name in COUNTERS}}
            for account_id, row in self.locked.items() if _counters(row) != self.counters_read[account_id]
        ])

    def _check_refunds_within_paid(self) -> None:
        """The last guard of "refunded on an order never exceeds what was paid", whatever code
        path formed the refund. Every transfer crediting a buyer locked that buyer's account,
        so no concurrent batch on the same order can slip in between."""
        for order_id in sorted(self.refunding_orders):
            refunds = order_refunds(self.connection, order_id)
            if refunds.refunded > refunds.paid:
                raise RefundExceedsPaid(
                    f"Order {order_id} was paid {refunds.paid} minor units; these transfers would refund"
                    f" its buyer {refunds.refunded} in all",
                    order_id=order_id, paid=refunds.paid, refunded=refunds.refunded,
                )

    def _resolver(self, pending_id: str) -> str | None:
        """The transfer that already posted or voided `pending_id`: earlier in this batch, or stored."""
        for row in self.created:
            if row["pending_id"] == pending_id:
                return row["id"]
        return self.connection.execute(select(TRANSFERS.c.id).where(TRANSFERS.c.pending_id == pending_id)).scalar()

    def _apply_one(self, request: TransferRequest) -> TransferResult:
        pending = self.known.get(request.pending_id) if request.pending_id else None
        fields = self._normalised(request, pending)
        existing = self.known.get(request.id)
        if existing is not None:
            stored = {name: existing[name] for name in _COMPARED}
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
            if account["currency"] != currency:
                raise CurrencyMismatch(
                    f"Transfer {request.id} is in {currency} but account {account['id']} holds {account['currency']}",
                    transfer_id=request.id,
                    account_id=account["id"],
                )
        amount = fields["amount"]
        phase = request.phase
        if phase in RESOLVING:
            assert pending is not None
            if pending["pending_status"] != PendingStatus.pending:
                resolver = self._resolver(pending["id"])
                raise PendingAlreadyResolved(
                    f"Pending transfer {pending['id']} was already {pending['pending_status']}"
                    f" by transfer {resolver}; transfer {request.id} cannot {phase.value.split('_')[0]} it",
                    transfer_id=request.id,
                    pending_id=pending["id"],
                    pending_status=pending["pending_status"],
                    resolved_by=resolver,
                )
            debit["debits_pending"] -= pending["amount"]
            credit["credits_pending"] -= pending["amount"]
            if phase == TransferPhase.post_pending:
                debit["debits_posted"] += amount
                credit["credits_posted"] += amount
                status = PendingStatus.posted.value
            else:
                status = PendingStatus.voided.value
            pending["pending_status"] = status  # a pending created in this batch is inserted so
            if pending["id"] in self.stored_ids:
                self.resolved[pending["id"]] = status
        else:
            if not debit["allow_negative"]:
                available = debit["credits_posted"] - debit["debits_posted"] - debit["debits_pending"]
                if available - amount < debit["floor"]:
                    raise InsufficientFunds(
                        f"Account {debit['id']} has {formatted(available, currency)} available"
                        + (f" above its floor of {formatted(debit['floor'], currency)}" if debit["floor"] else "")
                        + f"; transfer {request.id} needs {formatted(amount, currency)}",
                        transfer_id=request.id,
                        account_id=debit["id"],
                        available=available,
                        floor=debit["floor"],
                        amount=amount,
                    )
            for account, side in ((debit, "debits"), (credit, "credits")):
                total = account[f"{side}_posted"] + account[f"{side}_pending"]
                # Entering money is held to the money bounds (platform-side accounts that may go
                # negative only mirror it); any transfer to what the database column can hold.
                bound = MAX_AMOUNT if self.entering and not account["allow_negative"] else COUNTER_LIMIT
                if total + amount > bound:
                    raise AmountOverflow(
                        f"Transfer {request.id} would take the {side} of account {account['id']} to"
                        f" {total + amount} minor units, more than the {bound} an account may hold",
                        transfer_id=request.id, account_id=account["id"], maximum=bound,
                    )
            if fields["order_id"] is not None and AccountKind.buyer == credit["kind"]:
                self.refunding_orders.add(fields["order_id"])
            if phase == TransferPhase.pending:
                debit["debits_pending"] += amount
                credit["credits_pending"] += amount
            else:
                debit["debits_posted"] += amount
                credit["credits_posted"] += amount

        row: Row = {
            "id": request.id,
            **fields,
            "pending_status": PendingStatus.pending.value if phase == TransferPhase.pending else None,
            "created_at": utcnow(),
        }
        if self.next_seq is not None:
            row["seq"] = self.next_seq
            self.next_seq += 1
        self.created.append(row)
        self.known[request.id] = row
        return TransferResult(id=request.id, status="created")

    def _normalised(self, request: TransferRequest, pending: Row | None) -> dict[str, object]:
        """The request's fields with a post/void's defaults filled in from its pending
        transfer: what gets stored, and what a retry is compared against."""
        fields: dict[str, object] = {name: getattr(request, name) for name in _COMPARED}
        fields["phase"] = request.phase.value
        if request.phase not in RESOLVING:
            return fields
        existing = self.known.get(request.id)
        if pending is None or pending["phase"] != TransferPhase.pending:
            if existing is not None:
                return fields  # compared (and refused) as different fields
            if pending is None:
                raise PendingNotFound(
                    f"Transfer {request.id} resolves pending transfer {request.pending_id}, which does not exist",
                    transfer_id=request.id,
                    pending_id=request.pending_id,
                )
            raise PendingNotFound(
                f"Transfer {request.id} resolves {request.pending_id}, which is a {pending['phase']} transfer,"
                " not a pending one",
                transfer_id=request.id,
                pending_id=request.pending_id,
            )
        for name in ("debit_account_id", "credit_account_id", "currency"):
            given = fields[name]
            if given is None:
                fields[name] = pending[name]
            elif given != pending[name] and existing is None:
                error = CurrencyMismatch if name == "currency" else InvalidTransfer
                raise error(
                    f"Transfer {request.id} names {name} {given} but pending transfer {pending['id']}"
                    f" has {pending[name]}",
                    transfer_id=request.id,
                    pending_id=pending["id"],
                )
        for name in ("code", "dispute_id", "order_id"):
            if fields[name] is None:
                fields[name] = pending[name]
        amount = request.amount
        if amount is None:
            fields["amount"] = pending["amount"]
        elif amount > pending["amount"] and existing is None:
            raise AmountExceedsPending(
                f"Transfer {request.id} would {request.phase.value.split('_')[0]}"
                f" {formatted(amount, pending['currency'])} but pending transfer {pending['id']} holds only"
                f" {formatted(pending['amount'], pending['currency'])}",
                transfer_id=request.id,
                pending_id=pending["id"],
                amount=amount,
                pending_amount=pending["amount"],
            )
        elif request.phase == TransferPhase.void_pending and amount != pending["amount"] and existing is None:
            raise _invalid(
                request,
                f"a void releases the whole pending amount {formatted(pending['amount'], pending['currency'])};"
                " leave the amount out",
            )
        return fields

    def _account(self, account_id: object) -> Row:
        assert isinstance(account_id, str)
        row = self.locked.get(account_id)
        if row is not None:
            return row
        if self.connection.execute(select(ACCOUNTS.c.id).where(ACCOUNTS.c.id == account_id)).first() is not None:
            raise _Retry()  # appeared, or belongs to a pending we had not seen: not locked
        raise UnknownAccount(f"No ledger account {account_id}", account_id=account_id)

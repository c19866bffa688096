"""Races where every writer is queued behind a lock on an account before any of them runs.

On PostgreSQL (READ COMMITTED) a statement that waits on a row lock keeps the snapshot it
took when it began: the locked rows come back in their newest version, but rows a writer ahead
in the queue inserted are not in it. These tests hold an account's row lock from a connection of
their own, wait until every writer is blocked on it (`pg_blocking_pids`), then release it, so
each writer's snapshot predates the others' commits. On SQLite `BEGIN IMMEDIATE` serialises
the writers before they read anything; the same moves just run at once there.
"""

import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DataError

from ledger import InsufficientFunds, Ledger, PendingAlreadyResolved, PendingStatus, TransferPhase, TransferRequest
from money import MAX_AMOUNT
from tests.ledger import moves
from tests.ledger.test_ledger import CNY, open_book

# Every writer of a PostgreSQL race blocked behind the holder, directly or behind another writer.
_QUEUED = text("""
WITH RECURSIVE queued(pid) AS (
    SELECT pid FROM pg_stat_activity WHERE :holder = ANY(pg_blocking_pids(pid))
    UNION
    SELECT activity.pid FROM pg_stat_activity AS activity
    JOIN queued ON queued.pid = ANY(pg_blocking_pids(activity.pid))
)
SELECT count(*) FROM queued
""")


def queued_behind_lock(engine: Engine, account_id: str, *work: Callable[[], object]) -> list[object]:
    """Run `work` at once, on PostgreSQL only once all of it waits on `account_id`'s row lock;
    each one's result or the exception it raised."""
    if engine.dialect.name != "postgresql":
        return moves.at_once(*work)
    results: list[object] = [None] * len(work)

    def run(index: int) -> None:
        try:
            results[index] = work[index]()
        except Exception as error:  # noqa: BLE001 - the test inspects what each move raised
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(work))]
    with engine.connect() as holder, engine.connect() as watcher:
        with holder.begin():
            holder.execute(text("SELECT id FROM ledger_accounts WHERE id = :id FOR UPDATE"), {"id": account_id})
            holder_pid = holder.execute(text("SELECT pg_backend_pid()")).scalar()
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 60
            while watcher.execute(_QUEUED, {"holder": holder_pid}).scalar() < len(work):
                assert time.monotonic() < deadline, "the writers never queued behind the lock"
                watcher.rollback()  # a fresh snapshot of pg_stat_activity on the next poll
                time.sleep(0.01)
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return results


def statuses(results: list[object]) -> list[str]:
    return sorted(getattr(result, "status", None) or type(result).__name__ for result in results)


def test_same_transfer_queued_behind_a_lock_is_exists_not_insufficient_funds(ledger: Ledger) -> None:
    # The whole balance, submitted twice (a client's retry racing its first try): the second
    # must find the first and answer exists, not refuse it for the funds the first one moved.
    book = open_book(ledger, paid=3_000)
    results = queued_behind_lock(ledger.engine, book.escrow, *[
        lambda: moves.transfer(ledger, "all-out", book.escrow, book.buyer, 3_000, CNY, "refund", dispute_id="d1")
    ] * 8)
    assert statuses(results) == ["created"] + ["exists"] * 7, results
    assert ledger.account(book.escrow).balance == 0
    assert ledger.account(book.buyer).balance == 3_000
    assert ledger.check_invariants() == []


def test_same_linked_batch_queued_behind_a_lock_is_exists_twice(ledger: Ledger) -> None:
    book = open_book(ledger, paid=1_000)
    batch = [
        TransferRequest(id="split-seller", debit_account_id=book.escrow, credit_account_id=book.seller, amount=400,
                        currency=CNY, code="release"),
        TransferRequest(id="split-buyer", debit_account_id=book.escrow, credit_account_id=book.buyer, amount=600,
                        currency=CNY, code="refund", dispute_id="d2"),
    ]
    results = queued_behind_lock(ledger.engine, book.escrow, *[lambda: ledger.create_transfers(batch)] * 2)
    outcomes = sorted(repr(r) if isinstance(r, Exception) else ",".join(x.status for x in r) for r in results)
    assert outcomes == ["created,created", "exists,exists"], results
    assert ledger.account(book.escrow).balance == 0
    assert ledger.check_invariants() == []


def test_same_post_queued_behind_a_lock_is_exists_not_already_resolved(ledger: Ledger) -> None:
    book = open_book(ledger, paid=10_000)
    moves.hold(ledger, "h-q", book.escrow, book.seller, 6_000, CNY, "freeze")
    results = queued_behind_lock(ledger.engine, book.escrow, *[lambda: moves.post(ledger, "h-q-post", "h-q")] * 2)
    assert statuses(results) == ["created", "exists"], results
    assert ledger.account(book.seller).balance == 6_000
    assert ledger.account(book.escrow).debits_pending == 0
    assert ledger.check_invariants() == []


def test_post_and_void_queued_behind_a_lock_resolve_the_pending_once(ledger: Ledger) -> None:
    book = open_book(ledger, paid=10_000)
    moves.hold(ledger, "h-pv", book.escrow, book.seller, 6_000, CNY, "freeze")
    results = queued_behind_lock(
        ledger.engine, book.escrow,
        lambda: moves.post(ledger, "h-pv-post", "h-pv"), lambda: moves.void(ledger, "h-pv-void", "h-pv"),
    )
    created = [r for r in results if getattr(r, "status", None) == "created"]
    refused = [r for r in results if isinstance(r, PendingAlreadyResolved)]
    assert (len(created), len(refused)) == (1, 1), results
    assert refused[0].details["resolved_by"] == created[0].id
    escrow = ledger.account(book.escrow)
    assert escrow.debits_pending == 0
    assert escrow.balance == (4_000 if created[0].id == "h-pv-post" else 10_000)
    assert ledger.check_invariants() == []


def test_debits_queued_behind_a_lock_never_cross_the_floor(ledger: Ledger) -> None:
    book = open_book(ledger, paid=0, fund_floor=200)
    moves.transfer(ledger, "topup", book.funding, book.fund, 1_000, CNY, "topup")
    results = queued_behind_lock(ledger.engine, book.fund, *[
        (lambda i=i: moves.transfer(ledger, f"adv-{i}", book.fund, book.buyer, 300, CNY, "advance"))
        for i in range(4)
    ])
    assert statuses(results) == ["InsufficientFunds"] * 2 + ["created"] * 2, results
    assert ledger.account(book.fund).balance == 400
    assert ledger.check_invariants() == []


def test_linked_batch_queued_behind_a_lock_applies_nothing_when_one_fails(ledger: Ledger) -> None:
    book = open_book(ledger, paid=1_000)
    tag = uuid.uuid4().hex[:6]

    def batch(name: str) -> list:
        return ledger.create_transfers([
            TransferRequest(id=f"{tag}-{name}-ok", debit_account_id=book.escrow, credit_account_id=book.seller,
                            amount=300, currency=CNY, code="release"),
            TransferRequest(id=f"{tag}-{name}-big", debit_account_id=book.escrow, credit_account_id=book.seller,
                            amount=500, currency=CNY, code="release"),
        ])

    results = queued_behind_lock(ledger.engine, book.escrow, lambda: batch("a"), lambda: batch("b"))
    assert sum(isinstance(r, InsufficientFunds) for r in results) == 1, results
    assert ledger.account(book.escrow).balance == 200
    loser = "b" if isinstance(results[1], InsufficientFunds) else "a"
    assert ledger.find_transfer(f"{tag}-{loser}-ok") is None
    assert ledger.check_invariants() == []


def test_same_entering_payment_queued_behind_a_lock_is_exists_not_overflow(ledger: Ledger) -> None:
    # The payment takes escrow's credits to the money bound: its retry must not be refused
    # for overflowing the totals the first try raised.
    book = open_book(ledger, paid=0)
    payment = [TransferRequest(id="pay-max", debit_account_id=book.clearing, credit_account_id=book.escrow,
                               amount=MAX_AMOUNT, currency=CNY, code="payment")]
    results = queued_behind_lock(ledger.engine, book.escrow,
                                 *[lambda: ledger.create_transfers(payment, entering=True)] * 2)
    outcomes = sorted(repr(r) if isinstance(r, Exception) else r[0].status for r in results)
    assert outcomes == ["created", "exists"], results
    assert ledger.account(book.escrow).balance == MAX_AMOUNT
    assert ledger.check_invariants() == []


def test_same_id_other_fields_queued_behind_a_lock_is_exists_with_different_fields(ledger: Ledger) -> None:
    book = open_book(ledger, paid=3_000)
    results = queued_behind_lock(
        ledger.engine, book.escrow,
        lambda: moves.transfer(ledger, "contested", book.escrow, book.buyer, 3_000, CNY, "refund", dispute_id="d3"),
        lambda: moves.transfer(ledger, "contested", book.escrow, book.buyer, 2_000, CNY, "refund", dispute_id="d3"),
    )
    assert statuses(results) == ["TransferExistsWithDifferentFields", "created"], results
    assert ledger.account(book.escrow).balance == 3_000 - ledger.find_transfer("contested").amount
    assert ledger.check_invariants() == []


def test_a_large_batch_is_stored_in_its_order(ledger: Ledger) -> None:
    # However the batch is written, seq follows the batch, NULL fields (no dispute, no pending)
    # are kept, and a pending resolved in the same batch shows resolved.
    book = open_book(ledger, paid=100_000)
    moves.hold(ledger, "held", book.escrow, book.seller, 1_000, CNY, "freeze")
    requests = [TransferRequest(id=f"many-{i:03}", debit_account_id=book.escrow, credit_account_id=book.seller,
                                amount=i + 1, currency=CNY, code="release", dispute_id="d4" if i % 2 else None)
                for i in range(300)]
    requests.insert(150, TransferRequest(id="held-void", pending_id="held", phase=TransferPhase.void_pending))
    assert {r.status for r in ledger.create_transfers(requests)} == {"created"}
    stored = [t for t in ledger.transfers() if t.id.startswith("many-") or t.id == "held-void"]  # in seq order
    assert [t.id for t in stored] == [r.id for r in requests]
    assert [t.dispute_id for t in stored if t.id.startswith("many-")].count(None) == 150
    assert ledger.find_transfer("held").pending_status == PendingStatus.voided
    assert ledger.account(book.escrow).debits_pending == 0
    assert ledger.account(book.seller).balance == sum(range(1, 301))
    assert ledger.check_invariants() == []


def _resolve_in_subprocess(url: str, schema: str | None, phase: str, pending_ids: list[str],
                           together: threading.Barrier) -> list[str]:
    from database import make_engine

    engine = make_engine(url, schema=schema)
    ledger = Ledger(engine)
    outcomes = []
    try:
        for pending_id in pending_ids:
            together.wait()  # each pending raced by both processes
            resolve = moves.post if phase == "post" else moves.void
            try:
                outcomes.append(resolve(ledger, f"{pending_id}-{phase}", pending_id).status)
            except PendingAlreadyResolved as refused:
                outcomes.append(f"refused by {refused.details['resolved_by']}")
        return outcomes
    finally:
        engine.dispose()


def test_posts_and_voids_from_two_processes_resolve_each_pending_once(
        ledger: Ledger, engine_args) -> None:  # noqa: ANN001
    book = open_book(ledger, paid=100_000)
    pendings = [f"hp-{i}" for i in range(40)]
    for pending_id in pendings:
        moves.hold(ledger, pending_id, book.escrow, book.seller, 1_000, CNY, "freeze")
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(2, mp_context=context) as pool:
        together = manager.Barrier(2)
        posts = pool.submit(_resolve_in_subprocess, *engine_args, "post", pendings, together)
        voids = pool.submit(_resolve_in_subprocess, *engine_args, "void", pendings, together)
        outcomes = list(zip(posts.result(timeout=120), voids.result(timeout=120)))
    for pending_id, (posted, voided) in zip(pendings, outcomes):
        assert sorted((posted, voided)) in (
            ["created", f"refused by {pending_id}-post"], ["created", f"refused by {pending_id}-void"]
        ), (pending_id, posted, voided)
    posted_count = sum(posted == "created" for posted, _ in outcomes)
    escrow = ledger.account(book.escrow)
    assert escrow.debits_pending == 0
    assert escrow.balance == 100_000 - 1_000 * posted_count
    assert ledger.check_invariants() == []


def test_an_over_long_field_is_refused_by_the_column_not_cut(ledger: Ledger) -> None:
    # TransferRequest bounds every field; past that bound (a request built without
    # validation) PostgreSQL's column must refuse the value, never store it cut to fit (as an
    # explicit VARCHAR(n) cast would). SQLite does not enforce VARCHAR lengths.
    if ledger.engine.dialect.name != "postgresql":
        pytest.skip("SQLite stores a VARCHAR of any length")
    book = open_book(ledger, paid=1_000)
    request = TransferRequest.model_construct(
        id="long-step", debit_account_id=book.escrow, credit_account_id=book.seller, amount=100, currency=CNY,
        code="release", phase=TransferPhase.single, pending_id=None, dispute_id=None, order_id=None, step="s" * 200)
    with pytest.raises(DataError):
        ledger.create_transfers([request])
    assert ledger.find_transfer("long-step") is None

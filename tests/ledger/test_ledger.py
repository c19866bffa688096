"""The ledger on SQLite and PostgreSQL: balances, idempotency, two-phase transfers,
atomic linked batches, concurrency, and a model-based property test."""

import multiprocessing
import pickle
import threading
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from ledger import (
    AccountExistsWithDifferentFields,
    AccountKind,
    AmountExceedsPending,
    CurrencyMismatch,
    InsufficientFunds,
    InvalidAccount,
    InvalidTransfer,
    Ledger,
    LedgerError,
    PendingAlreadyResolved,
    PendingNotFound,
    PendingStatus,
    TransferExistsWithDifferentFields,
    TransferPhase,
    TransferRequest,
    UnknownAccount,
)
from ledger import accounts as acc
from tests.ledger import moves

CNY = "CNY"


@dataclass
class Book:
    """The accounts of one order: paid 1000.00 CNY into escrow."""

    ledger: Ledger
    order: str
    clearing: str
    escrow: str
    buyer: str
    seller: str
    fund: str
    funding: str


def open_book(ledger: Ledger, *, paid: int = 100_000, fund_floor: int = 0) -> Book:
    order = f"ord-{uuid.uuid4().hex[:8]}"
    book = Book(
        ledger=ledger,
        order=order,
        clearing=ledger.open_account(AccountKind.payments_clearing, acc.PLATFORM, CNY).id,
        escrow=ledger.open_account(AccountKind.escrow, order, CNY).id,
        buyer=ledger.open_account(AccountKind.buyer, f"buyer-{order}", CNY).id,
        seller=ledger.open_account(AccountKind.seller, f"seller-{order}", CNY).id,
        fund=ledger.open_account(AccountKind.guarantee_fund, acc.PLATFORM, CNY, floor=fund_floor).id,
        funding=ledger.open_account(AccountKind.platform, acc.PLATFORM, CNY).id,
    )
    if paid:
        moves.transfer(ledger, f"{order}-payment", book.clearing, book.escrow, paid, CNY, "payment", order_id=order)
    return book


def counters(ledger: Ledger, account_id: str) -> tuple[int, int, int, int]:
    a = ledger.account(account_id)
    return (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted)


# ------------------------------------------------------------------ accounts


def test_account_ids_are_deterministic_and_readable() -> None:
    assert acc.escrow("o-1", "CNY") == "escrow:o-1:CNY"
    assert acc.buyer("p-1", "USD") == "buyer:p-1:USD"
    assert acc.seller("p-2", "CNY") == "seller:p-2:CNY"
    assert acc.guarantee_fund("CNY") == "guarantee_fund:platform:CNY"
    assert acc.platform_funding("CNY") == "platform_funding:platform:CNY"
    assert acc.payments_clearing("CNY") == "payments_clearing:platform:CNY"
    with pytest.raises(InvalidAccount):
        acc.escrow("o-1", "XYZ")
    with pytest.raises(InvalidAccount):
        acc.escrow("", "CNY")


def test_open_account_is_idempotent_and_sets_flags(ledger: Ledger) -> None:
    first = ledger.open_account(AccountKind.guarantee_fund, "platform", CNY, floor=5_000)
    again = ledger.open_account("guarantee_fund", "platform", CNY, floor=5_000)
    assert first == again
    assert (first.id, first.kind, first.owner, first.allow_negative, first.floor) == (
        "guarantee_fund:platform:CNY", AccountKind.guarantee_fund, "platform", False, 5_000,
    )
    assert ledger.open_account(AccountKind.seller, "s1", CNY).allow_negative is True
    assert ledger.open_account(AccountKind.escrow, "o1", CNY).allow_negative is False
    with pytest.raises(AccountExistsWithDifferentFields):
        ledger.open_account(AccountKind.guarantee_fund, "platform", CNY, floor=0)
    with pytest.raises(InvalidAccount):
        ledger.open_account(AccountKind.guarantee_fund, "someone", CNY)
    assert [a.id for a in ledger.accounts(owner="platform")] == ["guarantee_fund:platform:CNY"]
    assert [a.id for a in ledger.accounts(kind="seller")] == ["seller:s1:CNY"]
    with pytest.raises(UnknownAccount):
        ledger.account("escrow:nope:CNY")


# ----------------------------------------------------------------- transfers


def test_simple_transfer_and_balances(ledger: Ledger) -> None:
    book = open_book(ledger, paid=0)
    result = moves.transfer(ledger, "pay-1", book.clearing, book.escrow, 12_345, CNY, "payment", order_id=book.order)
    assert (result.id, result.status) == ("pay-1", "created")

    escrow = ledger.account(book.escrow)
    assert (escrow.credits_posted, escrow.debits_posted, escrow.balance, escrow.available) == (12_345, 0, 12_345, 12_345)
    clearing = ledger.account(book.clearing)
    assert (clearing.debits_posted, clearing.balance, clearing.available) == (12_345, -12_345, -12_345)

    moves.transfer(ledger, "refund-1", book.escrow, book.buyer, 2_345, CNY, "refund", dispute_id="dsp-1", step="refund")
    assert ledger.account(book.escrow).balance == 10_000
    assert ledger.account(book.buyer).balance == 2_345
    [view] = ledger.transfers(dispute_id="dsp-1")
    assert (view.id, view.amount, view.code, view.phase, view.step) == ("refund-1", 2_345, "refund", "single", "refund")
    assert [t.id for t in ledger.transfers(account_id=book.escrow)] == ["pay-1", "refund-1"]
    assert [t.id for t in ledger.transfers(order_id=book.order)] == ["pay-1"]
    assert ledger.find_transfer("refund-1") == view
    assert ledger.find_transfer("no-such-transfer") is None
    assert ledger.check_invariants() == []


def test_retry_with_same_id_is_exists_and_moves_nothing(ledger: Ledger) -> None:
    book = open_book(ledger)
    assert moves.transfer(ledger, "d1-refund", book.escrow, book.buyer, 5_000, CNY, "refund", dispute_id="d1").status == "created"
    before = (counters(ledger, book.escrow), counters(ledger, book.buyer))
    for _ in range(3):
        assert moves.transfer(ledger, "d1-refund", book.escrow, book.buyer, 5_000, CNY, "refund", dispute_id="d1").status == "exists"
    assert (counters(ledger, book.escrow), counters(ledger, book.buyer)) == before
    assert ledger.account(book.buyer).balance == 5_000
    assert len(ledger.transfers(dispute_id="d1")) == 1


def test_same_id_with_different_fields_is_refused(ledger: Ledger) -> None:
    book = open_book(ledger)
    moves.transfer(ledger, "d2-refund", book.escrow, book.buyer, 5_000, CNY, "refund", dispute_id="d2")
    with pytest.raises(TransferExistsWithDifferentFields) as caught:
        moves.transfer(ledger, "d2-refund", book.escrow, book.buyer, 6_000, CNY, "refund", dispute_id="d2")
    assert "amount 5000" in str(caught.value)
    with pytest.raises(TransferExistsWithDifferentFields):
        moves.transfer(ledger, "d2-refund", book.escrow, book.seller, 5_000, CNY, "refund", dispute_id="d2")
    with pytest.raises(TransferExistsWithDifferentFields):
        moves.transfer(ledger, "d2-refund", book.escrow, book.buyer, 5_000, CNY, "refund", dispute_id="d2", step="x")
    assert ledger.account(book.buyer).balance == 5_000


def test_linked_batch_is_all_or_nothing(ledger: Ledger) -> None:
    book = open_book(ledger, paid=10_000)
    batch = [
        TransferRequest(id="b-refund", debit_account_id=book.escrow, credit_account_id=book.buyer,
                        amount=6_000, currency=CNY, code="refund"),
        TransferRequest(id="b-release", debit_account_id=book.escrow, credit_account_id=book.seller,
                        amount=6_000, currency=CNY, code="release"),
    ]
    with pytest.raises(InsufficientFunds) as caught:
        ledger.create_transfers(batch)
    assert caught.value.details["available"] == 4_000 and caught.value.details["transfer_id"] == "b-release"
    assert ledger.account(book.escrow).balance == 10_000
    assert ledger.account(book.buyer).balance == 0
    assert ledger.transfers(account_id=book.buyer) == []

    batch[1] = batch[1].model_copy(update={"amount": 4_000})
    assert [r.status for r in ledger.create_transfers(batch)] == ["created", "created"]
    assert [r.status for r in ledger.create_transfers(batch)] == ["exists", "exists"]
    assert (ledger.account(book.escrow).balance, ledger.account(book.buyer).balance,
            ledger.account(book.seller).balance) == (0, 6_000, 4_000)
    assert ledger.check_invariants() == []


# ----------------------------------------------------------- two-phase


def test_hold_then_post_in_full(ledger: Ledger) -> None:
    book = open_book(ledger, paid=0)
    moves.transfer(ledger, "topup", book.funding, book.fund, 50_000, CNY, "topup")
    moves.hold(ledger, "d3-advance", book.fund, book.buyer, 20_000, CNY, "advance", dispute_id="d3", step="advance")
    fund = ledger.account(book.fund)
    assert (fund.debits_pending, fund.balance, fund.available) == (20_000, 50_000, 30_000)
    buyer = ledger.account(book.buyer)
    assert (buyer.credits_pending, buyer.balance) == (20_000, 0)

    assert moves.post(ledger, "d3-advance-post", "d3-advance", step="settle").status == "created"
    fund = ledger.account(book.fund)
    assert (fund.debits_pending, fund.debits_posted, fund.balance, fund.available) == (0, 20_000, 30_000, 30_000)
    buyer = ledger.account(book.buyer)
    assert (buyer.credits_pending, buyer.credits_posted, buyer.balance) == (0, 20_000, 20_000)

    views = {t.id: t for t in ledger.transfers(dispute_id="d3")}
    assert views["d3-advance"].pending_status == PendingStatus.posted
    post = views["d3-advance-post"]
    # The post inherits accounts, code and dispute from its pending transfer.
    assert (post.phase, post.amount, post.code, post.debit_account_id, post.pending_id) == (
        TransferPhase.post_pending, 20_000, "advance", book.fund, "d3-advance",
    )
    assert ledger.check_invariants() == []


def test_partial_post_releases_the_remainder(ledger: Ledger) -> None:
    book = open_book(ledger, paid=10_000)
    moves.hold(ledger, "d4-freeze", book.escrow, book.seller, 10_000, CNY, "freeze")
    assert ledger.account(book.escrow).available == 0
    moves.post(ledger, "d4-release", "d4-freeze", 7_500, code="release")
    escrow = ledger.account(book.escrow)
    assert (escrow.debits_pending, escrow.debits_posted, escrow.balance, escrow.available) == (0, 7_500, 2_500, 2_500)
    seller = ledger.account(book.seller)
    assert (seller.credits_pending, seller.credits_posted) == (0, 7_500)
    assert ledger.check_invariants() == []


def test_void_releases_the_hold(ledger: Ledger) -> None:
    book = open_book(ledger, paid=10_000)
    moves.hold(ledger, "d5-freeze", book.escrow, book.seller, 4_000, CNY, "freeze")
    assert moves.void(ledger, "d5-unfreeze", "d5-freeze").status == "created"
    escrow = ledger.account(book.escrow)
    assert (escrow.debits_pending, escrow.debits_posted, escrow.available) == (0, 0, 10_000)
    assert ledger.account(book.seller).credits_pending == 0
    assert ledger.transfers(account_id=book.seller)[0].pending_status == PendingStatus.voided
    assert ledger.check_invariants() == []


def test_pending_resolves_once(ledger: Ledger) -> None:
    book = open_book(ledger, paid=10_000)
    moves.hold(ledger, "h1", book.escrow, book.seller, 3_000, CNY, "freeze")
    moves.post(ledger, "h1-post", "h1", 1_000)
    # Retrying the same post (with or without the amount it used) is answered "exists".
    assert moves.post(ledger, "h1-post", "h1", 1_000).status == "exists"
    with pytest.raises(PendingAlreadyResolved) as caught:
        moves.post(ledger, "h1-post-again", "h1")
    assert caught.value.details["resolved_by"] == "h1-post"
    with pytest.raises(PendingAlreadyResolved):
        moves.void(ledger, "h1-void", "h1")
    with pytest.raises(TransferExistsWithDifferentFields):
        moves.post(ledger, "h1-post", "h1", 2_000)

    moves.hold(ledger, "h2", book.escrow, book.seller, 3_000, CNY, "freeze")
    moves.void(ledger, "h2-void", "h2")
    assert moves.void(ledger, "h2-void", "h2").status == "exists"
    with pytest.raises(PendingAlreadyResolved):
        moves.post(ledger, "h2-post", "h2")
    assert ledger.account(book.escrow).balance == 9_000
    assert ledger.account(book.escrow).available == 9_000
    assert ledger.check_invariants() == []


def test_full_post_retried_without_amount_is_exists(ledger: Ledger) -> None:
    book = open_book(ledger, paid=10_000)
    moves.hold(ledger, "h3", book.escrow, book.seller, 3_000, CNY, "freeze")
    moves.post(ledger, "h3-post", "h3")
    assert moves.post(ledger, "h3-post", "h3").status == "exists"
    assert moves.post(ledger, "h3-post", "h3", 3_000).status == "exists"
    assert ledger.account(book.seller).balance == 3_000


def test_two_phase_errors(ledger: Ledger) -> None:
    book = open_book(ledger, paid=10_000)
    moves.transfer(ledger, "single-1", book.escrow, book.seller, 100, CNY, "release")
    moves.hold(ledger, "h4", book.escrow, book.seller, 3_000, CNY, "freeze")
    with pytest.raises(PendingNotFound):
        moves.post(ledger, "p-missing", "no-such-transfer")
    with pytest.raises(PendingNotFound):
        moves.post(ledger, "p-single", "single-1")
    with pytest.raises(AmountExceedsPending) as caught:
        moves.post(ledger, "p-too-much", "h4", 3_001)
    assert "30.00 CNY" in str(caught.value) and "30.01 CNY" in str(caught.value)
    with pytest.raises(InvalidTransfer):
        ledger.create_transfers([TransferRequest(id="p-elsewhere", phase="post_pending", pending_id="h4",
                                                 debit_account_id=book.escrow, credit_account_id=book.buyer)])
    with pytest.raises(CurrencyMismatch):
        ledger.create_transfers([TransferRequest(id="p-usd", phase="post_pending", pending_id="h4", currency="USD")])
    with pytest.raises(InvalidTransfer):
        ledger.create_transfers([TransferRequest(id="v-part", phase="void_pending", pending_id="h4", amount=1)])
    with pytest.raises(InvalidTransfer):
        ledger.create_transfers([TransferRequest(id="p-none", phase="post_pending")])
    # Nothing above touched the hold.
    escrow = ledger.account(book.escrow)
    assert (escrow.debits_pending, escrow.debits_posted, escrow.available) == (3_000, 100, 6_900)


def test_hold_and_post_in_one_batch(ledger: Ledger) -> None:
    book = open_book(ledger, paid=10_000)
    batch = [
        TransferRequest(id="hb", debit_account_id=book.escrow, credit_account_id=book.seller,
                        amount=5_000, currency=CNY, code="freeze", phase="pending"),
        TransferRequest(id="hb-post", phase="post_pending", pending_id="hb", amount=2_000),
    ]
    assert [r.status for r in ledger.create_transfers(batch)] == ["created", "created"]
    assert [r.status for r in ledger.create_transfers(batch)] == ["exists", "exists"]
    assert ledger.account(book.escrow).available == 8_000
    assert ledger.check_invariants() == []


# ------------------------------------------------------- balances and limits


def test_overdraft_refused_on_escrow(ledger: Ledger) -> None:
    book = open_book(ledger, paid=10_000)
    with pytest.raises(InsufficientFunds) as caught:
        moves.transfer(ledger, "over", book.escrow, book.buyer, 10_001, CNY, "refund")
    assert caught.value.code == "insufficient_funds"
    assert "100.00 CNY available" in str(caught.value) and "100.01 CNY" in str(caught.value)
    moves.hold(ledger, "held", book.escrow, book.seller, 6_000, CNY, "freeze")
    with pytest.raises(InsufficientFunds):  # a hold counts against what is available
        moves.transfer(ledger, "over-2", book.escrow, book.buyer, 4_001, CNY, "refund")
    with pytest.raises(InsufficientFunds):
        moves.hold(ledger, "over-3", book.escrow, book.buyer, 4_001, CNY, "freeze")
    moves.transfer(ledger, "exact", book.escrow, book.buyer, 4_000, CNY, "refund")
    assert ledger.account(book.escrow).available == 0
    assert ledger.check_invariants() == []


def test_seller_may_go_negative(ledger: Ledger) -> None:
    book = open_book(ledger, paid=0)
    moves.transfer(ledger, "recovery", book.seller, book.fund, 7_000, CNY, "recovery", dispute_id="d6")
    seller = ledger.account(book.seller)
    assert (seller.balance, seller.available, seller.debits_posted) == (-7_000, -7_000, 7_000)
    assert ledger.account(book.fund).balance == 7_000
    assert ledger.check_invariants() == []


def test_guarantee_fund_floor(ledger: Ledger) -> None:
    book = open_book(ledger, paid=0, fund_floor=10_000)
    moves.transfer(ledger, "topup", book.funding, book.fund, 15_000, CNY, "topup")
    moves.transfer(ledger, "advance-1", book.fund, book.buyer, 5_000, CNY, "advance")
    with pytest.raises(InsufficientFunds) as caught:
        moves.transfer(ledger, "advance-2", book.fund, book.buyer, 1, CNY, "advance")
    assert caught.value.details["floor"] == 10_000
    assert "floor of 100.00 CNY" in str(caught.value)
    assert ledger.account(book.fund).balance == 10_000
    assert ledger.account(book.funding).balance == -15_000  # the platform's own money
    assert ledger.check_invariants() == []


def test_currency_mismatch(ledger: Ledger) -> None:
    book = open_book(ledger, paid=10_000)
    usd_seller = ledger.open_account(AccountKind.seller, "s-usd", "USD").id
    with pytest.raises(CurrencyMismatch):
        moves.transfer(ledger, "fx", book.escrow, usd_seller, 100, CNY, "release")
    with pytest.raises(CurrencyMismatch):
        moves.transfer(ledger, "fx-2", book.escrow, book.seller, 100, "USD", "release")
    assert ledger.account(book.escrow).balance == 10_000


def test_invalid_transfers(ledger: Ledger) -> None:
    book = open_book(ledger, paid=10_000)
    for amount in (0, -5):
        with pytest.raises(InvalidTransfer):
            moves.transfer(ledger, f"bad-{amount}", book.escrow, book.buyer, amount, CNY, "refund")
    with pytest.raises(InvalidTransfer):
        moves.transfer(ledger, "self", book.escrow, book.escrow, 1, CNY, "refund")
    with pytest.raises(InvalidTransfer):
        moves.transfer(ledger, "money-as-float", book.escrow, book.buyer, 1.5, CNY, "refund")  # type: ignore[arg-type]
    with pytest.raises(InvalidTransfer):
        moves.transfer(ledger, "bad-currency", book.escrow, book.buyer, 1, "cny", "refund")
    with pytest.raises(UnknownAccount):
        moves.transfer(ledger, "ghost", book.escrow, "buyer:ghost:CNY", 1, CNY, "refund")
    twice = TransferRequest(id="twice", debit_account_id=book.escrow, credit_account_id=book.buyer,
                            amount=1, currency=CNY, code="refund")
    with pytest.raises(InvalidTransfer):
        ledger.create_transfers([twice, twice])
    assert ledger.create_transfers([]) == []
    assert ledger.account(book.escrow).balance == 10_000


def test_errors_are_ledger_errors_with_codes_and_survive_pickling(ledger: Ledger) -> None:
    book = open_book(ledger, paid=0)
    with pytest.raises(LedgerError) as caught:
        moves.transfer(ledger, "x", book.escrow, book.buyer, 1, CNY, "refund")
    error = pickle.loads(pickle.dumps(caught.value))
    assert type(error) is InsufficientFunds
    assert (error.code, error.details, str(error)) == (caught.value.code, caught.value.details, str(caught.value))


# ---------------------------------------------------------------- concurrency


def run_in_threads(count: int, work) -> list[object]:  # noqa: ANN001
    """Start `count` threads together; each result is a return value or an exception."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work(index)
        except Exception as error:  # noqa: BLE001  (collected and asserted on)
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_same_transfer_from_eight_threads_moves_money_once(ledger: Ledger) -> None:
    book = open_book(ledger, paid=10_000)
    results = run_in_threads(
        8, lambda _: moves.transfer(ledger, "d7-refund", book.escrow, book.buyer, 3_000, CNY, "refund", dispute_id="d7")
    )
    statuses = sorted(getattr(r, "status", repr(r)) for r in results)
    assert statuses == ["created"] + ["exists"] * 7
    assert ledger.account(book.buyer).balance == 3_000
    assert ledger.account(book.escrow).balance == 7_000
    assert ledger.check_invariants() == []


def test_same_new_account_and_transfer_on_fresh_accounts_from_eight_threads(ledger: Ledger) -> None:
    order = "ord-race"

    def work(_: int) -> str:
        escrow = ledger.open_account(AccountKind.escrow, order, CNY).id
        clearing = ledger.open_account(AccountKind.payments_clearing, acc.PLATFORM, CNY).id
        return moves.transfer(ledger, f"{order}-payment", clearing, escrow, 2_000, CNY, "payment").status

    results = run_in_threads(8, work)
    assert sorted(map(str, results)) == ["created"] + ["exists"] * 7
    assert ledger.account(acc.escrow(order, CNY)).balance == 2_000


def test_same_id_for_different_transfers_from_eight_threads(ledger: Ledger) -> None:
    # Different accounts, so the account locks do not serialise them: they meet at the
    # transfer's primary key, and the losers must see the winner's transfer, not an
    # IntegrityError.
    buyers = [ledger.open_account(AccountKind.buyer, f"b-{i}", CNY).id for i in range(8)]
    funds = [ledger.open_account(AccountKind.seller, f"s-{i}", CNY).id for i in range(8)]
    results = run_in_threads(8, lambda i: moves.transfer(ledger, "contested", buyers[i], funds[i], 100, CNY, "clawback"))
    assert sum(getattr(r, "status", None) == "created" for r in results) == 1, results
    assert sum(isinstance(r, TransferExistsWithDifferentFields) for r in results) == 7, results
    assert sorted(ledger.account(b).balance for b in buyers) == [-100] + [0] * 7
    assert ledger.check_invariants() == []


def _transfer_in_subprocess(url: str, schema: str | None, escrow: str, buyer: str) -> str:
    from database import make_engine

    engine = make_engine(url, schema=schema)
    try:
        return moves.transfer(Ledger(engine), "d8-refund", escrow, buyer, 2_500, CNY, "refund", dispute_id="d8").status
    finally:
        engine.dispose()


def test_same_transfer_from_four_processes_moves_money_once(ledger: Ledger, engine_args) -> None:  # noqa: ANN001
    book = open_book(ledger, paid=10_000)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(4, mp_context=context) as pool:
        futures = [pool.submit(_transfer_in_subprocess, *engine_args, book.escrow, book.buyer) for _ in range(4)]
        statuses = sorted(future.result(timeout=120) for future in futures)
    assert statuses == ["created", "exists", "exists", "exists"]
    assert ledger.account(book.buyer).balance == 2_500
    assert ledger.account(book.escrow).balance == 7_500
    assert ledger.check_invariants() == []


def test_eight_posts_of_one_pending_resolve_it_once(ledger: Ledger) -> None:
    book = open_book(ledger, paid=10_000)
    moves.hold(ledger, "h-race", book.escrow, book.seller, 6_000, CNY, "freeze")
    results = run_in_threads(
        8, lambda i: moves.post(ledger, f"h-race-post-{i}", "h-race", 6_000 - i) if i % 2 else moves.void(ledger, f"h-race-void-{i}", "h-race")
    )
    created = [r for r in results if getattr(r, "status", None) == "created"]
    refused = [r for r in results if isinstance(r, PendingAlreadyResolved)]
    assert (len(created), len(refused)) == (1, 7), results
    escrow = ledger.account(book.escrow)
    assert escrow.debits_pending == 0
    assert ledger.check_invariants() == []


def test_competing_transfers_never_overdraw(ledger: Ledger) -> None:
    book = open_book(ledger, paid=1_000)

    def work(i: int) -> object:
        if i % 2:
            return moves.transfer(ledger, f"spend-{i}", book.escrow, book.seller, 300, CNY, "release")
        return moves.hold(ledger, f"spend-{i}", book.escrow, book.buyer, 300, CNY, "freeze")

    results = run_in_threads(8, work)
    created = [r for r in results if getattr(r, "status", None) == "created"]
    refused = [r for r in results if isinstance(r, InsufficientFunds)]
    assert (len(created), len(refused)) == (3, 5), results
    escrow = ledger.account(book.escrow)
    assert escrow.available == 100
    assert escrow.debits_posted + escrow.debits_pending == 900
    assert ledger.check_invariants() == []


# ------------------------------------------------------------ property test


@dataclass
class Model:
    """The ledger's rules, in memory."""

    allow_negative: dict[str, bool]
    floor: dict[str, int]
    counters: dict[str, list[int]] = field(default_factory=dict)  # dp, dpo, cp, cpo
    pendings: dict[str, list] = field(default_factory=dict)  # id -> [debit, credit, amount, status]
    created: dict[str, TransferRequest] = field(default_factory=dict)

    def apply(self, r: TransferRequest) -> str | type[LedgerError]:
        if r.id in self.created:
            return "exists"
        if r.phase in (TransferPhase.single, TransferPhase.pending):
            d, c = self.counters[r.debit_account_id], self.counters[r.credit_account_id]
            if not self.allow_negative[r.debit_account_id] and d[3] - d[1] - d[0] - r.amount < self.floor[r.debit_account_id]:
                return InsufficientFunds
            if r.phase == TransferPhase.pending:
                d[0] += r.amount
                c[2] += r.amount
                self.pendings[r.id] = [r.debit_account_id, r.credit_account_id, r.amount, "pending"]
            else:
                d[1] += r.amount
                c[3] += r.amount
        else:
            pending = self.pendings.get(r.pending_id)
            if pending is None:
                return PendingNotFound
            debit, credit, held, status = pending
            if r.amount is not None and r.amount > held:
                return AmountExceedsPending
            if status != "pending":
                return PendingAlreadyResolved
            d, c = self.counters[debit], self.counters[credit]
            d[0] -= held
            c[2] -= held
            if r.phase == TransferPhase.post_pending:
                posted = held if r.amount is None else r.amount
                d[1] += posted
                c[3] += posted
                pending[3] = "posted"
            else:
                pending[3] = "voided"
        self.created[r.id] = r
        return "created"


operations = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["transfer", "hold"]), st.integers(0, 4), st.integers(1, 4),
                  st.integers(1, 3_000)),
        st.tuples(st.just("post"), st.integers(0, 50), st.one_of(st.none(), st.integers(1, 3_000))),
        st.tuples(st.just("void"), st.integers(0, 50)),
        st.tuples(st.just("retry"), st.integers(0, 50)),
    ),
    max_size=15,
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_random_operations_keep_the_books_balanced(engine: Engine, wipe, ops: list[tuple]) -> None:  # noqa: ANN001
    wipe(engine)  # each example starts from empty books
    ledger = Ledger(engine)
    names = [
        ledger.open_account(AccountKind.escrow, "o", CNY).id,
        ledger.open_account(AccountKind.guarantee_fund, acc.PLATFORM, CNY, floor=1_000).id,
        ledger.open_account(AccountKind.seller, "s", CNY).id,
        ledger.open_account(AccountKind.buyer, "b", CNY).id,
        ledger.open_account(AccountKind.payments_clearing, acc.PLATFORM, CNY).id,
    ]
    model = Model(
        allow_negative={n: ledger.account(n).allow_negative for n in names},
        floor={n: ledger.account(n).floor for n in names},
        counters={n: [0, 0, 0, 0] for n in names},
    )
    sent: list[TransferRequest] = []
    holds: list[str] = []
    for number, op in enumerate(ops):
        kind = op[0]
        if kind in ("transfer", "hold"):
            _, debit, offset, amount = op
            request = TransferRequest(
                id=f"t{number}", debit_account_id=names[debit], credit_account_id=names[(debit + offset) % 5],
                amount=amount, currency=CNY, code=kind,
                phase=TransferPhase.single if kind == "transfer" else TransferPhase.pending,
            )
            if kind == "hold":
                holds.append(request.id)
        elif kind in ("post", "void"):
            pending_id = holds[op[1] % len(holds)] if holds else "no-such-hold"
            request = TransferRequest(
                id=f"t{number}", pending_id=pending_id, amount=op[2] if kind == "post" else None,
                phase=TransferPhase.post_pending if kind == "post" else TransferPhase.void_pending,
            )
        else:
            if not sent:
                continue
            request = sent[op[1] % len(sent)]
        sent.append(request)

        expected = model.apply(request)
        try:
            actual: object = ledger.create_transfers([request])[0].status
        except LedgerError as error:
            actual = type(error)
        assert actual == expected, (request, actual, expected)

    assert ledger.check_invariants() == []
    for name in names:
        assert list(counters(ledger, name)) == model.counters[name], name

"""Completing an order races a dispute opening on it: the marketplace's "buyer confirmed
receipt" and the buyer's dispute arrive together. Whichever wins, nothing fails and no
money is lost or paid twice; a completion that lost to an open dispute is refused."""

import pytest
from sqlalchemy import Engine
from temporalio.exceptions import ApplicationError

from activities.ledger import LedgerActivities
from ledger import Ledger
from money import Money
from orders import DisputeAlreadyOpen, OrderService, PaidOrder
from tests.ledger.moves import at_once
from workflows.models import FreezeEscrow

CNY = "CNY"
PAID = 19_900
ROUNDS = 25


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_completion_and_a_dispute_opening_at_once_never_fail_or_lose_money(engine: Engine, round_: int) -> None:
    ledger = Ledger(engine)
    orders = OrderService(engine, ledger)
    freezer = LedgerActivities(ledger)
    order_id = f"ORD-race-{engine.dialect.name}-{round_}"
    orders.register(PaidOrder(order_id=order_id, buyer_id="alice", seller_id="acme",
                              paid=Money(amount=PAID, currency=CNY), shipped=True))

    def open_dispute() -> str:
        dispute_id = orders.reserve_dispute(order_id)
        freeze = FreezeEscrow(dispute_id=dispute_id, order_id=order_id, seller_id="acme", currency=CNY)
        while True:  # as Temporal retries the activity: a refusal that may pass on retry is retried
            try:
                freezer.freeze_escrow(freeze)
                return dispute_id
            except ApplicationError as refused:
                if refused.non_retryable:
                    raise

    opened, completed = at_once(open_dispute, lambda: orders.complete(order_id))

    assert isinstance(opened, str), opened
    if isinstance(completed, DisputeAlreadyOpen):
        # The dispute claimed the order first: nothing was paid out to the seller.
        assert ledger.find_transfer(f"{order_id}-completion") is None
        assert orders.get(order_id).completed_at is None
    else:
        assert not isinstance(completed, Exception), repr(completed)
        assert orders.get(order_id).completed_at is not None
    # Every minor unit of the payment is either still frozen for the dispute or paid out, once.
    freeze = ledger.find_transfer(f"{opened}-freeze")
    payout = ledger.find_transfer(f"{order_id}-completion")
    moved = (freeze.amount if freeze else 0) + (payout.amount if payout else 0)
    assert moved == PAID
    assert ledger.check_invariants() == []

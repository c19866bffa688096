"""An order's row is written inside its payment's ledger batch (`create_transfers(alongside=)`):
it commits with the payment, rolls back with it, and is written again, once, when the batch is
retried after losing a race."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, event, func, insert, select
from sqlmodel import Session

from ledger import Ledger
from ledger.models import LedgerAccount, LedgerTransfer
from money import Money
from orders import Order, OrderConflict, OrderService, PaidOrder
from tests.ledger.moves import at_once

ROUNDS = 5


def _paid(order_id: str, currency: str = "CNY", buyer_id: str = "alice") -> PaidOrder:
    return PaidOrder(order_id=order_id, buyer_id=buyer_id, seller_id="acme",
                     paid=Money(amount=1_990, currency=currency), shipped=True)


def _left_behind(engine: Engine, order_id: str) -> tuple[list[str], int]:
    """The order's escrow accounts and how many transfers name it."""
    with Session(engine) as db:
        escrows = list(db.scalars(select(LedgerAccount.id).where(LedgerAccount.owner == order_id)))
        transfers = db.scalar(select(func.count()).select_from(LedgerTransfer).where(LedgerTransfer.order_id == order_id))
    return escrows, transfers


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_registrations_in_two_currencies_at_once_one_wins_and_the_other_leaves_nothing(engine: Engine,
                                                                                      round_: int) -> None:
    # Their accounts are disjoint, so on PostgreSQL they meet only at the payment's id: the loser
    # is retried, runs its order row again and is refused as a conflict, not a 500.
    orders = OrderService(engine, Ledger(engine))
    order_id = f"ORD-two-currencies-{round_}"
    first, second = at_once(lambda: orders.register(_paid(order_id, "CNY")),
                          lambda: orders.register(_paid(order_id, "EUR")))

    assert sorted(type(outcome).__name__ for outcome in (first, second)) == ["OrderConflict", "tuple"], (first, second)
    [(order, created)] = [outcome for outcome in (first, second) if isinstance(outcome, tuple)]
    assert created is True
    assert _left_behind(engine, order_id) == ([f"escrow:{order_id}:{order.currency}"], 1)


def test_a_registration_refused_by_its_order_row_leaves_no_account_behind(engine: Engine) -> None:
    orders = OrderService(engine, Ledger(engine))
    orders.register(_paid("ORD-other-buyer"))

    with pytest.raises(OrderConflict):
        orders.register(_paid("ORD-other-buyer", buyer_id="bob"))

    with Session(engine) as db:
        assert db.get(LedgerAccount, "buyer:bob:CNY") is None
    assert _left_behind(engine, "ORD-other-buyer") == (["escrow:ORD-other-buyer:CNY"], 1)


@pytest.fixture
def order_row_written_first(engine: Engine) -> Iterator[list[str]]:
    """Another writer commits the order's row just before the first registration flushes its own
    (PostgreSQL only: on SQLite the registration holds the write lock)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers: nobody can get in between")
    sneaked: list[str] = []

    def sneak(db: Session, *_: object) -> None:
        for row in db.new:
            if isinstance(row, Order) and not sneaked:
                sneaked.append(row.id)
                with engine.begin() as other:
                    other.execute(insert(Order.__table__).values(
                        id=row.id, buyer_id=row.buyer_id, seller_id=row.seller_id, amount=row.amount,
                        currency=row.currency, shipped=row.shipped, dispute_count=0))

    event.listen(Session, "before_flush", sneak)
    yield sneaked
    event.remove(Session, "before_flush", sneak)


def test_a_batch_retried_after_losing_its_order_row_writes_it_once(engine: Engine,
                                                                    order_row_written_first: list[str]) -> None:
    orders = OrderService(engine, Ledger(engine))

    order, created = orders.register(_paid("ORD-row-raced"))

    assert order_row_written_first == ["ORD-row-raced"]
    assert (order.id, order.amount, created) == ("ORD-row-raced", 1_990, False)
    assert _left_behind(engine, "ORD-row-raced") == (["escrow:ORD-row-raced:CNY"], 1)

"""Registering paid orders and guarding which disputes an order may take: one open at a
time, and the policy's rules for a second one."""

from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import Engine, func, update
from sqlmodel import Session, select

from database import fetch
from database import session as transaction
from ledger import AccountKind, InsufficientFunds, Ledger, OrderRefunds, TransferExistsWithDifferentFields, accounts
from ledger.invariants import order_refunds
from money import Money, plans
from orders.models import ClosedDispute, Order
from policy import Policy


class OrderError(Exception):
    code = "order_error"


class OrderNotFound(OrderError):
    code = "order_not_found"


class OrderConflict(OrderError):
    code = "order_conflict"


class DisputeAlreadyOpen(OrderError):
    code = "dispute_already_open"

    def __init__(self, order_id: str, dispute_id: str):
        super().__init__(f"order {order_id} already has dispute {dispute_id} open")
        self.dispute_id = dispute_id


class OrderRuledOn(OrderError):
    code = "order_ruled_on"

    def __init__(self, order_id: str, dispute_id: str):
        super().__init__(f"the platform ruled on order {order_id} in dispute {dispute_id}; its ruling is final")
        self.dispute_id = dispute_id


class DisputeLimitReached(OrderError):
    code = "dispute_limit_reached"


class ReopenWindowClosed(OrderError):
    code = "reopen_window_closed"


class PaidOrder(BaseModel):
    order_id: str
    buyer_id: str
    seller_id: str
    paid: Money
    shipped: bool


class OrderService:
    def __init__(self, engine: Engine, ledger: Ledger):
        self._engine = engine
        self._ledger = ledger

    def register(self, order: PaidOrder) -> tuple[Order, bool]:
        """Record the order and its payment into escrow, in one transaction. Returns (order, created).

        Registering the same order again with the same facts is a no-op, so the
        marketplace can retry; different facts for a known id are a conflict.
        """
        currency = order.paid.currency
        conflict = OrderConflict(f"order {order.order_id} is already registered with different details")
        # Opened with the payment, so a refused payment leaves no account behind.
        opening = [accounts.spec(AccountKind.payments_clearing, accounts.PLATFORM, currency),
                   accounts.spec(AccountKind.escrow, order.order_id, currency),
                   accounts.spec(AccountKind.buyer, order.buyer_id, currency),
                   accounts.spec(AccountKind.seller, order.seller_id, currency)]
        stored, created = None, False

        def record(db: Session) -> None:
            nonlocal stored, created
            stored = db.get(Order, order.order_id)
            created = stored is None
            if created:
                stored = Order(id=order.order_id, buyer_id=order.buyer_id, seller_id=order.seller_id,
                               amount=order.paid.amount, currency=currency, shipped=order.shipped)
                db.add(stored)
                db.flush()
                db.refresh(stored)  # answered as a later read will answer (SQLite drops the time zone)
            # The payment alone does not name the parties: an earlier registration may differ in them.
            elif _facts(stored) != order.model_dump(mode="json"):
                raise conflict

        try:
            self._ledger.create_transfers([plans.payment(order.order_id, order.paid.amount, currency)],
                                          opening=opening, entering=True, alongside=record)
        except TransferExistsWithDifferentFields:  # registered (or being registered) with another amount
            raise conflict from None
        assert stored is not None
        return stored, created

    def get(self, order_id: str) -> Order:
        return fetch(self._engine, Order, order_id, lambda: OrderNotFound(f"no order {order_id}"))

    def reserve_dispute(self, order_id: str, *, policy: Policy | None = None,
                        admit: Callable[[OrderRefunds], None] | None = None) -> str:
        """Claim the order for a new dispute, in a transaction of its own (see `claim_dispute`)."""
        with transaction(self._engine) as db:
            return claim_dispute(db, locked(db, order_id), policy=policy, admit=admit)

    def release_dispute(self, order_id: str, dispute_id: str, *, ruled: bool = False) -> None:
        """The dispute closed (or never started): the order may take a new one. Idempotent."""
        with Session(self._engine) as session:
            session.exec(
                update(Order)
                .where(Order.id == order_id, Order.open_dispute_id == dispute_id)
                .values(open_dispute_id=None)
            )
            if session.get(ClosedDispute, dispute_id) is None:
                session.add(ClosedDispute(dispute_id=dispute_id, order_id=order_id, closed_at=datetime.now(UTC),
                                          ruled=ruled))
            session.commit()

    def complete(self, order_id: str) -> Order:
        """The buyer confirmed receipt with no dispute open: pay the escrow out to the seller.

        The completion is claimed in one conditional update, so a dispute claiming the order
        first refuses it, and one opening after it is a dispute on a completed order.
        """
        with Session(self._engine) as session:
            claimed = session.exec(
                update(Order).where(Order.id == order_id, Order.open_dispute_id.is_(None))
                .values(completed_at=func.coalesce(Order.completed_at, datetime.now(UTC)))
            ).rowcount == 1
            session.commit()
        order = self.get(order_id)
        if not claimed:
            raise DisputeAlreadyOpen(order_id, order.open_dispute_id or "?")
        self._pay_out_escrow(order)
        return order

    def _pay_out_escrow(self, order: Order) -> None:
        """Pay the seller what the escrow holds. A dispute opened after the completion may
        freeze the escrow first: the payout then re-reads it and pays only what is left."""
        escrow_id = accounts.escrow(order.id, order.currency)
        while (available := self._ledger.account(escrow_id).available) > 0:
            try:
                self._ledger.create_transfers(plans.completion(order.id, order.seller_id, available, order.currency))
                return
            except InsufficientFunds:
                continue


def locked(db: Session, order_id: str) -> Order:
    """The order, locked in `db`'s transaction until it ends (SQLite: its write lock holds everything)."""
    order = db.get(Order, order_id, with_for_update=True)
    if order is None:
        raise OrderNotFound(f"no order {order_id}")
    return order


def claim_dispute(db: Session, order: Order, *, policy: Policy | None = None,
                  admit: Callable[[OrderRefunds], None] | None = None) -> str:
    """Claim the `locked` order for a new dispute in `db`'s transaction and return its id, or
    refuse if one is open.

    With a `policy`, also refuse what its rules for a further dispute forbid. `admit`
    sees what the order has paid and refunded and may refuse the request by raising;
    it runs under the order's lock, after every earlier dispute's money moved, so what
    it sees stays true until this dispute settles.
    """
    if order.open_dispute_id is not None:
        raise DisputeAlreadyOpen(order.id, order.open_dispute_id)
    if policy is not None:
        _check_further_dispute(order, _closed_disputes(db, order.id), policy)
    if admit is not None:
        admit(order_refunds(db, order.id))
    dispute_id = f"dsp-{order.id}-{order.dispute_count + 1}"
    claimed = db.exec(
        update(Order)
        .where(Order.id == order.id, Order.open_dispute_id.is_(None))
        .values(open_dispute_id=dispute_id, dispute_count=Order.dispute_count + 1)
    )
    assert claimed.rowcount == 1, "the order is locked: nothing else can have claimed it"
    return dispute_id


def _closed_disputes(session: Session, order_id: str) -> list[ClosedDispute]:
    return list(session.exec(select(ClosedDispute).where(ClosedDispute.order_id == order_id)
                             .order_by(ClosedDispute.closed_at)))


def _check_further_dispute(order: Order, closed: list[ClosedDispute], policy: Policy) -> None:
    """The policy's rules for another dispute on an order that had one (README: "Refund caps
    and second disputes"). What may still be claimed is the caller's `admit`."""
    ruled = next((c for c in closed if c.ruled), None)
    if ruled is not None:
        raise OrderRuledOn(order.id, ruled.dispute_id)
    if order.dispute_count >= policy.max_disputes_per_order:
        raise DisputeLimitReached(f"order {order.id} has had {order.dispute_count} disputes, the most the "
                                  f"policy allows ({policy.max_disputes_per_order})")
    if closed:
        last = closed[-1]
        # SQLite hands timestamps back without their zone; they were stored as UTC.
        closed_at = last.closed_at if last.closed_at.tzinfo else last.closed_at.replace(tzinfo=UTC)
        until = policy.due_at(closed_at, policy.reopen_within)
        if datetime.now(UTC) >= until:
            raise ReopenWindowClosed(f"dispute {last.dispute_id} on order {order.id} closed at "
                                     f"{closed_at.isoformat()}; a new one could be opened until {until.isoformat()}")


def _facts(order: Order) -> dict:
    return PaidOrder(
        order_id=order.id, buyer_id=order.buyer_id, seller_id=order.seller_id,
        paid=Money(amount=order.amount, currency=order.currency), shipped=order.shipped,
    ).model_dump(mode="json")

"""The ledger's last guard of "refunded on an order never exceeds what was paid" (issue 9 item 1):
whatever code path forms a refund, a batch that would pay the order's buyer beyond it is refused whole."""

import pytest

from ledger import AccountKind, Ledger, RefundExceedsPaid, TransferRequest, accounts
from tests.ledger import moves

JPY = "JPY"


@pytest.mark.parametrize("phase", ["single", "pending"])
def test_a_refund_beyond_what_the_order_paid_is_refused(ledger: Ledger, phase: str) -> None:
    order_id = f"ORD-guard-{phase}"
    ledger.open_account(AccountKind.payments_clearing, accounts.PLATFORM, JPY).id
    escrow = ledger.open_account(AccountKind.escrow, order_id, JPY).id
    buyer = ledger.open_account(AccountKind.buyer, "alice", JPY).id
    seller = ledger.open_account(AccountKind.seller, "acme", JPY).id
    moves.transfer(ledger, f"{order_id}-payment", accounts.payments_clearing(JPY), escrow, 10_000, JPY, "payment",
                    order_id=order_id)
    moves.transfer(ledger, f"{order_id}-refund", escrow, buyer, 7_000, JPY, "refund", order_id=order_id)

    def refund(transfer_id: str, amount: int) -> None:
        ledger.create_transfers([TransferRequest(
            id=transfer_id, debit_account_id=seller, credit_account_id=buyer, amount=amount, currency=JPY,
            code="refund", order_id=order_id, phase=phase)])

    before = ledger.account(buyer), ledger.account(seller)
    with pytest.raises(RefundExceedsPaid) as refused:
        refund(f"{order_id}-refund-2", 3_001)  # one past the limit
    assert (refused.value.details["paid"], refused.value.details["refunded"]) == (10_000, 10_001)
    assert (ledger.account(buyer), ledger.account(seller)) == before
    assert ledger.find_transfer(f"{order_id}-refund-2") is None
    refund(f"{order_id}-refund-3", 3_000)  # at the limit
    assert ledger.check_invariants() == []


def test_money_back_from_the_buyer_makes_room_again(ledger: Ledger) -> None:
    """Refunded is net: a clawback or appeal adjustment from the buyer lowers it."""
    order_id = "ORD-guard-net"
    ledger.open_account(AccountKind.payments_clearing, accounts.PLATFORM, JPY).id
    escrow = ledger.open_account(AccountKind.escrow, order_id, JPY).id
    buyer = ledger.open_account(AccountKind.buyer, "bob", JPY).id
    seller = ledger.open_account(AccountKind.seller, "acme", JPY).id
    moves.transfer(ledger, f"{order_id}-payment", accounts.payments_clearing(JPY), escrow, 5_000, JPY, "payment",
                    order_id=order_id)
    moves.transfer(ledger, f"{order_id}-refund", escrow, buyer, 5_000, JPY, "refund", order_id=order_id)
    with pytest.raises(RefundExceedsPaid):
        moves.transfer(ledger, f"{order_id}-more", seller, buyer, 1, JPY, "appeal_adjustment", order_id=order_id)
    moves.transfer(ledger, f"{order_id}-back", buyer, seller, 2_000, JPY, "appeal_adjustment", order_id=order_id)
    moves.transfer(ledger, f"{order_id}-again", seller, buyer, 2_000, JPY, "appeal_adjustment", order_id=order_id)
    assert ledger.order_refunds(order_id).model_dump() == {"paid": 5_000, "refunded": 5_000}
    assert ledger.check_invariants() == []

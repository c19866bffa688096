"""Stages 1-3 of the life cycle, driven through the HTTP API against a real Temporal server."""

from datetime import datetime, timedelta

from tests.support import BUYER, SELLER, Stack


def _due(view: dict, kind: str) -> timedelta:
    deadline = next(d for d in view["deadlines"] if d["kind"] == kind)
    return datetime.fromisoformat(deadline["due_at"]) - datetime.fromisoformat(deadline["set_at"])


async def test_seller_agrees_to_refund(stack: Stack) -> None:
    order_id = await stack.register_order(amount=25_000)
    opened = await stack.open_dispute(order_id, amount=8_000)
    assert opened["state"] == "WAIT_SELLER_AGREE"
    assert opened["escrow_frozen"] == {"amount": 25_000, "currency": "CNY"}
    assert _due(opened, "seller_response") == timedelta(hours=36)  # shipped, refund only
    assert stack.money(order_id)["escrow_pending"] == 25_000

    closed = await stack.act(opened["dispute_id"], "seller-agree-refund", SELLER)
    assert closed["state"] == "SUCCESS"
    assert closed["refunded"] == {"amount": 8_000, "currency": "CNY"}
    assert closed["resolution"]["released_to_seller"] == {"amount": 17_000, "currency": "CNY"}
    assert stack.money(order_id) == {"escrow": 0, "escrow_pending": 0, "buyer_refunds": 8_000,
                                     "seller_released": 17_000}

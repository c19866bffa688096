"""Stages 1-3 of the life cycle, driven through the HTTP API against a real Temporal server."""

import asyncio
from datetime import datetime, timedelta

from notifications.channels import LogChannel
from notifications.dispatcher import Dispatcher, RetrySchedule
from notifications.models import DeliveryStatus
from tests.support import BUYER, SELLER, Stack, eventually


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


async def test_seller_response_window_depends_on_kind_and_shipping(stack: Stack) -> None:
    not_shipped = await stack.open_dispute(await stack.register_order(shipped=False))
    assert _due(not_shipped, "seller_response") == timedelta(hours=24)
    return_and_refund = await stack.open_dispute(await stack.register_order(), kind="return_and_refund")
    assert _due(return_and_refund, "seller_response") == timedelta(hours=48)
    deadline = return_and_refund["deadlines"][0]
    assert deadline["role"] == "seller" and deadline["party_id"] == "acme"
    assert datetime.fromisoformat(deadline["remind_at"]) == datetime.fromisoformat(deadline["due_at"]) - timedelta(hours=24)
    assert return_and_refund["policy_version"] == "cn-2026.2"


async def test_partial_offer_accepted(stack: Stack) -> None:
    order_id = await stack.register_order(amount=10_000)
    dispute_id = (await stack.open_dispute(order_id, amount=10_000))["dispute_id"]
    offered = await stack.act(dispute_id, "seller-offer-partial", SELLER,
                              {"amount": {"amount": 3_500, "currency": "CNY"}, "note": "Keep it, 35 off"})
    assert offered["state"] == "WAIT_BUYER_ANSWER_OFFER"
    assert offered["offer"] == {"amount": 3_500, "currency": "CNY"}
    assert offered["allowed_actions"] == {"buyer": ["buyer_accept_offer", "buyer_refuse_offer", "buyer_withdraw"]}
    closed = await stack.act(dispute_id, "buyer-accept-offer", BUYER)
    assert closed["state"] == "SUCCESS"
    assert closed["resolution"]["decided_by"]["party_id"] == "alice"
    assert stack.money(order_id) == {"escrow": 0, "escrow_pending": 0, "buyer_refunds": 3_500,
                                     "seller_released": 6_500}


async def test_refusal_revision_then_refused_offer_then_withdrawal(stack: Stack) -> None:
    order_id = await stack.register_order(amount=10_000)
    dispute_id = (await stack.open_dispute(order_id, amount=10_000))["dispute_id"]
    refused = await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "Photos show no leak"})
    assert refused["state"] == "SELLER_REFUSED"
    assert [d["kind"] for d in refused["deadlines"]] == ["buyer_response_after_refusal"]
    assert _due(refused, "buyer_response_after_refusal") == timedelta(days=5)

    revised = await stack.act(dispute_id, "buyer-revise", BUYER, {"request": {
        "kind": "refund_only", "reason": "quality", "amount": {"amount": 6_000, "currency": "CNY"},
        "description": "Video of the leak attached.", "evidence": [{"url": "https://files.example/leak.mp4"}],
    }})
    assert revised["state"] == "WAIT_SELLER_AGREE"
    assert revised["request"]["amount"]["amount"] == 6_000
    assert revised["resubmissions"] == 1

    await stack.act(dispute_id, "seller-offer-partial", SELLER, {"amount": {"amount": 2_000, "currency": "CNY"}})
    back = await stack.act(dispute_id, "buyer-refuse-offer", BUYER, {"note": "Too little"})
    assert back["state"] == "SELLER_REFUSED" and back["offer"] is None

    closed = await stack.act(dispute_id, "buyer-withdraw", BUYER, {"reason": "Fixed it myself"})
    assert closed["state"] == "CLOSED"
    assert closed["resolution"]["reason"] == "buyer withdrew the request"
    assert stack.money(order_id) == {"escrow": 0, "escrow_pending": 0, "buyer_refunds": 0,
                                     "seller_released": 10_000}
    kinds = [e["kind"] for e in closed["events"]]
    assert kinds == ["opened", "seller_refused", "buyer_revised", "seller_offered_partial",
                     "buyer_refused_offer", "buyer_withdrew"]
    # The order is free for a new dispute once this one closed.
    assert (await stack.ok("GET", f"/orders/{order_id}", BUYER))["open_dispute_id"] is None


async def test_return_shipped_and_confirmed(stack: Stack) -> None:
    order_id = await stack.register_order(amount=40_000)
    dispute_id = (await stack.open_dispute(order_id, kind="return_and_refund", amount=40_000,
                                           reason="not_as_described"))["dispute_id"]
    agreed = await stack.act(dispute_id, "seller-agree-return", SELLER,
                             {"return_address": "Returns desk, 1 Warehouse Rd, Hangzhou"})
    assert agreed["state"] == "WAIT_BUYER_RETURN_GOODS"
    assert _due(agreed, "buyer_return_shipment") == timedelta(days=7)
    shipped = await stack.act(dispute_id, "buyer-ship-return", BUYER,
                              {"carrier": "SF Express", "tracking_number": "SF1234567890"})
    assert shipped["state"] == "WAIT_SELLER_CONFIRM_GOODS"
    assert shipped["return_shipment"]["tracking_number"] == "SF1234567890"
    assert _due(shipped, "seller_confirm_return") == timedelta(days=10)
    assert stack.money(order_id)["escrow_pending"] == 40_000
    closed = await stack.act(dispute_id, "seller-confirm-return", SELLER)
    assert closed["state"] == "SUCCESS"
    assert stack.money(order_id) == {"escrow": 0, "escrow_pending": 0, "buyer_refunds": 40_000,
                                     "seller_released": 0}


async def test_every_step_notifies_the_parties(stack: Stack) -> None:
    order_id = await stack.register_order()
    dispute_id = (await stack.open_dispute(order_id))["dispute_id"]
    await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "No"})

    async def refusal_told() -> bool:
        # A change's messages are written together, after the answer.
        return f"{dispute_id}-e2-buyer" in {m.id for m in stack.services.notifications.for_dispute(dispute_id)}

    await eventually(refusal_told, what="the refusal's messages")
    by_id = {m.id: m for m in stack.services.notifications.for_dispute(dispute_id)}
    assert set(by_id) == {f"{dispute_id}-e1-buyer", f"{dispute_id}-e1-seller",
                          f"{dispute_id}-e2-buyer", f"{dispute_id}-e2-seller"}
    assert by_id[f"{dispute_id}-e1-seller"].data["action_due"] == "seller_response"
    assert by_id[f"{dispute_id}-e2-buyer"].data["action_due"] == "buyer_response_after_refusal"
    assert "action_due" not in by_id[f"{dispute_id}-e2-seller"].data
    # The workflow only wrote the outbox; the dispatcher delivers it to the log channel.
    dispatcher = Dispatcher(stack.services.engine, [LogChannel()], RetrySchedule.from_settings(stack.services.settings))

    async def delivered() -> bool:
        await asyncio.to_thread(dispatcher.dispatch_due)
        return all(m.delivered == ["log"] and m.status == DeliveryStatus.DELIVERED
                   for m in stack.services.notifications.for_dispute(dispute_id))

    await eventually(delivered, what="every message delivered to the log channel")

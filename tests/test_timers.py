"""Every window of stages 1-3 acts on its own when nobody does (windows of seconds)."""

from datetime import timedelta

from policy import Window
from tests.support import ACTING_ROOM, BUYER, SELLER, Stack, eventually


def _timer_closure(view: dict) -> tuple:
    resolution = view["resolution"]
    return view["state"], resolution["timer"], resolution["decided_by"]


async def test_seller_silence_grants_the_refund(stack: Stack) -> None:
    stack.set_windows(seller_response_shipped_refund_only=Window.seconds(2))
    order_id = await stack.register_order(amount=9_900)
    dispute_id = (await stack.open_dispute(order_id, amount=9_900))["dispute_id"]
    closed = await stack.wait_for_state(dispute_id, "SUCCESS")
    assert _timer_closure(closed) == ("SUCCESS", "seller_response", None)
    assert closed["events"][-1]["timer"] == "seller_response"
    assert stack.money(order_id) == {"escrow": 0, "escrow_pending": 0, "buyer_refunds": 9_900,
                                     "seller_released": 0}


async def test_buyer_silence_after_refusal_closes_for_the_seller(stack: Stack) -> None:
    stack.set_windows(buyer_response_after_refusal=Window.seconds(2))
    order_id = await stack.register_order(amount=5_000)
    dispute_id = (await stack.open_dispute(order_id, amount=5_000))["dispute_id"]
    await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "Item was fine on dispatch"})
    closed = await stack.wait_for_state(dispute_id, "CLOSED")
    assert _timer_closure(closed) == ("CLOSED", "buyer_response_after_refusal", None)
    assert stack.money(order_id) == {"escrow": 0, "escrow_pending": 0, "buyer_refunds": 0,
                                     "seller_released": 5_000}


async def test_buyer_silence_on_an_offer_closes_without_refund(stack: Stack) -> None:
    stack.set_windows(buyer_response_to_offer=Window.seconds(2))
    order_id = await stack.register_order(amount=5_000)
    dispute_id = (await stack.open_dispute(order_id, amount=5_000))["dispute_id"]
    await stack.act(dispute_id, "seller-offer-partial", SELLER, {"amount": {"amount": 1_000, "currency": "CNY"}})
    closed = await stack.wait_for_state(dispute_id, "CLOSED")
    assert _timer_closure(closed) == ("CLOSED", "buyer_response_to_offer", None)
    assert stack.money(order_id)["seller_released"] == 5_000


async def test_no_return_shipped_in_time_closes(stack: Stack) -> None:
    stack.set_windows(buyer_return_shipment=Window.seconds(2))
    order_id = await stack.register_order(amount=7_000)
    dispute_id = (await stack.open_dispute(order_id, kind="return_and_refund", amount=7_000))["dispute_id"]
    await stack.act(dispute_id, "seller-agree-return", SELLER, {"return_address": "Returns desk"})
    closed = await stack.wait_for_state(dispute_id, "CLOSED")
    assert _timer_closure(closed) == ("CLOSED", "buyer_return_shipment", None)
    assert stack.money(order_id) == {"escrow": 0, "escrow_pending": 0, "buyer_refunds": 0,
                                     "seller_released": 7_000}


async def test_unconfirmed_return_refunds_the_buyer(stack: Stack) -> None:
    stack.set_windows(seller_confirm_return=Window.seconds(2))
    order_id = await stack.register_order(amount=7_000)
    dispute_id = (await stack.open_dispute(order_id, kind="return_and_refund", amount=6_000))["dispute_id"]
    await stack.act(dispute_id, "seller-agree-return", SELLER, {"return_address": "Returns desk"})
    await stack.act(dispute_id, "buyer-ship-return", BUYER, {"carrier": "YTO", "tracking_number": "YT998877"})
    closed = await stack.wait_for_state(dispute_id, "SUCCESS")
    assert _timer_closure(closed) == ("SUCCESS", "seller_confirm_return", None)
    assert stack.money(order_id) == {"escrow": 0, "escrow_pending": 0, "buyer_refunds": 6_000,
                                     "seller_released": 1_000}


async def test_reminder_goes_out_before_the_deadline(stack: Stack) -> None:
    stack.set_windows(seller_response_shipped_refund_only=Window.seconds(4 + ACTING_ROOM))
    stack.services.policy = stack.services.policy.model_copy(
        update={"reminder_before": timedelta(seconds=ACTING_ROOM)})
    order_id = await stack.register_order()
    dispute_id = (await stack.open_dispute(order_id))["dispute_id"]

    async def reminder():
        return [m for m in stack.services.notifications.for_dispute(dispute_id) if m.kind == "deadline_reminder"]

    [message] = await eventually(reminder, what="a reminder")
    assert (message.recipient_role, message.recipient_id) == ("seller", "acme")
    assert message.data["deadline"] == "seller_response"
    view = await stack.dispute(dispute_id)
    assert view["state"] == "WAIT_SELLER_AGREE", "the reminder must not act on the case"
    assert view["deadlines"][0]["reminded"] is True
    closed = await stack.wait_for_state(dispute_id, "SUCCESS")
    assert [e["kind"] for e in closed["events"]] == ["opened", "reminder_sent", "deadline_lapsed"]


async def test_acting_replaces_the_running_timer(stack: Stack) -> None:
    """A refusal just before the seller window lapses cancels it; only the buyer's window remains."""
    # The replaced seller timer would fire before the buyer's: only a cancelled one lets the buyer's decide.
    stack.set_windows(seller_response_shipped_refund_only=Window.seconds(ACTING_ROOM),
                      buyer_response_after_refusal=Window.seconds(ACTING_ROOM + 3))
    order_id = await stack.register_order(amount=5_000)
    dispute_id = (await stack.open_dispute(order_id, amount=5_000))["dispute_id"]
    await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "No"})
    closed = await stack.wait_for_state(dispute_id, "CLOSED")
    assert closed["resolution"]["timer"] == "buyer_response_after_refusal"
    assert stack.money(order_id)["buyer_refunds"] == 0

"""Issue 9, "Money": what a careless or hostile client must not be able to do to the money.

1. refund an order twice over, through a second dispute;
2. undo a settled ruling by withdrawing during its appeal;
3. post a top-up (or any transfer) whose sums overflow the money bounds.
"""

import asyncio
from datetime import timedelta

from ledger import AccountKind, accounts
from money import MAX_AMOUNT
from policy import Window
from tests.support import BUYER, MEDIATOR, OTHER_BUYER, PLATFORM, SELLER, Stack, eventually

PROBLEM = "application/problem+json"


def _problem(response, status: int, type_suffix: str) -> dict:  # noqa: ANN001
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"].endswith(type_suffix), body
    return body


async def _open(stack: Stack, order_id: str, amount: int, currency: str):  # noqa: ANN202
    return await stack.call("POST", "/disputes", BUYER, {
        "order_id": order_id, "kind": "refund_only", "reason": "quality",
        "amount": {"amount": amount, "currency": currency}, "description": "Still broken."})


async def _released(stack: Stack, order_id: str) -> dict:
    """The order once its last dispute let go of it (settled, appeal window closed)."""
    async def probe() -> dict | None:
        order = await stack.ok("GET", f"/orders/{order_id}", PLATFORM)
        return order if order["open_dispute_id"] is None else None

    return await eventually(probe, timeout=60, what=f"{order_id} released")


def _buyer_refunds(stack: Stack, order_id: str, currency: str) -> int:
    """Net money the order's transfers moved to the buyer: what the order has refunded."""
    buyer = accounts.buyer("alice", currency)
    return sum((t.amount if t.credit_account_id == buyer else -t.amount)
               for t in stack.services.ledger.transfers(order_id=order_id)
               if buyer in (t.credit_account_id, t.debit_account_id) and t.phase in ("single", "post_pending"))


# ---- 1. refunded on an order never exceeds what was paid --------------------------------


async def test_a_second_dispute_on_a_fully_refunded_order_refunds_nothing(any_stack: Stack) -> None:
    stack, currency = any_stack, "JPY"
    order_id = await stack.register_order(amount=10_000, currency=currency)
    buyer_before = stack.balance(accounts.buyer("alice", currency))
    first = await stack.open_dispute(order_id, amount=10_000, currency=currency)
    await stack.act(first["dispute_id"], "seller-agree-refund", SELLER)
    await stack.wait_for_state(first["dispute_id"], "SUCCESS")
    await _released(stack, order_id)

    for amount in (10_000, 1):
        body = _problem(await _open(stack, order_id, amount, currency), 422, "RefundExceedsRemaining")
        assert body["remaining"] == {"amount": 0, "currency": currency}
        assert "0 JPY" in body["detail"]
    assert stack.balance(accounts.buyer("alice", currency)) - buyer_before == 10_000
    assert _buyer_refunds(stack, order_id, currency) == 10_000
    order = await stack.ok("GET", f"/orders/{order_id}", PLATFORM)
    assert order["open_dispute_id"] is None, "a refused opening leaves the order free"


async def test_a_second_dispute_may_claim_exactly_the_rest(any_stack: Stack) -> None:
    stack, currency = any_stack, "JPY"
    order_id = await stack.register_order(amount=10_000, currency=currency)
    first = await stack.open_dispute(order_id, amount=10_000, currency=currency)
    await stack.act(first["dispute_id"], "seller-offer-partial", SELLER, {"amount": {"amount": 4_000, "currency": currency}})
    await stack.act(first["dispute_id"], "buyer-accept-offer", BUYER)
    await stack.wait_for_state(first["dispute_id"], "SUCCESS")
    await _released(stack, order_id)

    body = _problem(await _open(stack, order_id, 6_001, currency), 422, "RefundExceedsRemaining")
    assert body["remaining"] == {"amount": 6_000, "currency": currency}
    opened = await _open(stack, order_id, 6_000, currency)
    assert opened.status_code == 201, opened.text
    second = opened.json()
    assert second["dispute_id"] == f"dsp-{order_id}-2", "a refused opening burns no dispute number"
    assert second["order"]["refunded_before"] == {"amount": 4_000, "currency": currency}

    # A revision may not claim more than the rest either, and changes nothing when refused.
    revised = {"request": {"kind": "refund_only", "reason": "quality", "amount": {"amount": 6_001, "currency": currency},
                           "description": "More broken"}}
    body = _problem(await stack.call("POST", f"/disputes/{second['dispute_id']}/buyer-revise", BUYER, revised),
                    422, "RefundExceedsRemaining")
    assert body["remaining"] == {"amount": 6_000, "currency": currency}
    assert (await stack.dispute(second["dispute_id"]))["resubmissions"] == 0

    await stack.act(second["dispute_id"], "seller-agree-refund", SELLER)
    await stack.wait_for_state(second["dispute_id"], "SUCCESS")
    await _released(stack, order_id)
    assert _buyer_refunds(stack, order_id, currency) == 10_000
    _problem(await _open(stack, order_id, 1, currency), 422, "RefundExceedsRemaining")
    assert stack.services.ledger.check_invariants() == []


async def test_a_case_the_platform_ruled_on_is_not_relitigated(stack: Stack) -> None:
    stack.set_windows(appeal=Window.seconds(2))
    currency = "JPY"
    order_id = await stack.register_order(amount=10_000, currency=currency)
    dispute_id = (await stack.open_dispute(order_id, amount=10_000, currency=currency))["dispute_id"]
    await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "Nothing wrong with it"})
    await stack.act(dispute_id, "buyer-escalate", BUYER, {"reason": "Please step in"})
    await stack.act(dispute_id, "mediator-take", MEDIATOR)
    await stack.act(dispute_id, "mediator-rule", MEDIATOR, {"decision": "reject", "rationale": "No proof"})
    await _released(stack, order_id)
    body = _problem(await _open(stack, order_id, 5_000, currency), 409, "order_ruled_on")
    assert dispute_id in body["detail"]


async def test_disputes_per_order_are_capped_and_reopen_within_the_window(stack: Stack) -> None:
    currency = "JPY"
    order_id = await stack.register_order(amount=10_000, currency=currency)
    cap = 3  # the default policy's max_disputes_per_order
    for n in range(1, cap + 1):  # a withdrawn request may be opened again, up to the cap
        opened = await _open(stack, order_id, 10_000, currency)
        assert opened.status_code == 201, (n, opened.text)
        await stack.act(opened.json()["dispute_id"], "buyer-withdraw", BUYER)
        await _released(stack, order_id)
    body = _problem(await _open(stack, order_id, 10_000, currency), 409, "dispute_limit_reached")
    assert str(cap) in body["detail"] and stack.services.policy.max_disputes_per_order == cap

    other = await stack.register_order(amount=10_000, currency=currency)
    stack.set_windows(reopen_within=Window(duration=timedelta(microseconds=1)))
    first = (await _open(stack, other, 10_000, currency)).json()
    await stack.act(first["dispute_id"], "buyer-withdraw", BUYER)
    await _released(stack, other)
    _problem(await _open(stack, other, 10_000, currency), 409, "reopen_window_closed")
    # Someone else's order is still someone else's, whatever the caps say.
    assert (await stack.call("POST", "/disputes", OTHER_BUYER, {
        "order_id": other, "kind": "refund_only", "reason": "quality",
        "amount": {"amount": 1, "currency": currency}, "description": "Mine?"})).status_code == 403


# ---- 2. withdrawing during an appeal ----------------------------------------------------


async def _ruled_and_appealed_by_seller(stack: Stack) -> tuple[str, str, tuple[int, int]]:
    """A 4000 partial-refund ruling, settled, appealed by the seller; and the parties' balances before it."""
    order_id = await stack.register_order(amount=10_000)
    before = tuple(stack.balance(a) for a in (accounts.buyer("alice", "CNY"), accounts.seller("acme", "CNY")))
    dispute_id = (await stack.open_dispute(order_id, amount=10_000))["dispute_id"]
    await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "Nothing wrong with it"})
    await stack.act(dispute_id, "buyer-escalate", BUYER, {"reason": "Please step in"})
    await stack.act(dispute_id, "mediator-take", MEDIATOR)
    await stack.act(dispute_id, "mediator-rule", MEDIATOR, {
        "decision": "partial_refund", "amount": {"amount": 4_000, "currency": "CNY"}, "rationale": "Partly"})
    await stack.wait_for_state(dispute_id, "SUCCESS")
    await stack.act(dispute_id, "party-appeal", SELLER, {"reason": "Too much", "new_information": "Usage logs"})
    return order_id, dispute_id, before


async def test_withdrawing_an_appeal_leaves_the_first_ruling_standing(any_stack: Stack) -> None:
    stack = any_stack
    buyer_id, seller_id = accounts.buyer("alice", "CNY"), accounts.seller("acme", "CNY")
    order_id, dispute_id, (buyer_before, seller_before) = await _ruled_and_appealed_by_seller(stack)
    path = f"/disputes/{dispute_id}"

    # The buyer cannot undo the ruling by withdrawing the whole request, nor withdraw the seller's appeal.
    body = _problem(await stack.call("POST", f"{path}/buyer-withdraw", BUYER, {}), 409, "ActionNotAllowed")
    assert "appeal" in body["detail"]
    body = _problem(await stack.call("POST", f"{path}/party-withdraw-appeal", BUYER, {}), 403, "Forbidden")
    assert "seller" in body["detail"]
    view = await stack.dispute(dispute_id)
    assert view["state"] == "PLATFORM_INTERVENING" and view["intervention"]["appeal"]["role"] == "seller"
    assert view["allowed_actions"]["seller"] == ["party_submit_evidence", "party_withdraw_appeal"]
    assert view["allowed_actions"]["buyer"] == ["party_submit_evidence"]

    # The same request twice at once: one withdraws, the other finds nothing left to withdraw.
    answers = await asyncio.gather(*(stack.call("POST", f"{path}/party-withdraw-appeal", SELLER,
                                                {"reason": "Fair enough"}) for _ in range(2)))
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    withdrawn = next(a for a in answers if a.status_code == 200).json()
    assert withdrawn["state"] == "SUCCESS"
    assert withdrawn["refunded"] == {"amount": 4_000, "currency": "CNY"}
    assert withdrawn["resolution"]["settled"] is True and withdrawn["resolution"]["refunded"]["amount"] == 4_000
    assert withdrawn["resolution"]["decided_by"]["party_id"] == "mia"
    assert withdrawn["deadlines"] == [] and withdrawn["allowed_actions"] == {}, "the ruling is final for both"
    assert [e["kind"] for e in withdrawn["events"][-2:]] == ["appealed", "appeal_withdrawn"]

    await asyncio.wait_for(stack.services.temporal.get_workflow_handle(dispute_id).result(), timeout=30)
    for action, token, body in (("party-withdraw-appeal", SELLER, {}),
                                ("party-appeal", BUYER, {"reason": "Me too", "new_information": "Photos"})):
        refused = await stack.call("POST", f"{path}/{action}", token, body)
        assert refused.status_code == 409 and refused.headers["content-type"] == PROBLEM, refused.text
    assert (stack.balance(buyer_id) - buyer_before, stack.balance(seller_id) - seller_before) == (4_000, 6_000)
    assert not [t for t in stack.services.ledger.transfers(dispute_id=dispute_id) if t.code == "appeal_adjustment"]
    assert (await _released(stack, order_id))["open_dispute_id"] is None
    assert stack.services.ledger.check_invariants() == []


async def test_the_appealing_buyer_may_withdraw_its_appeal(stack: Stack) -> None:
    order_id = await stack.register_order(amount=10_000)
    dispute_id = (await stack.open_dispute(order_id, amount=10_000))["dispute_id"]
    await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "Nothing wrong with it"})
    await stack.act(dispute_id, "buyer-escalate", BUYER, {"reason": "Please step in"})
    await stack.act(dispute_id, "mediator-take", MEDIATOR)
    await stack.act(dispute_id, "mediator-rule", MEDIATOR, {"decision": "reject", "rationale": "No proof"})
    await stack.wait_for_state(dispute_id, "CLOSED")
    await stack.act(dispute_id, "party-appeal", BUYER, {"reason": "Ignored", "new_information": "Report"})
    await stack.act(dispute_id, "mediator-take", "dev-senior-sam")
    _problem(await stack.call("POST", f"/disputes/{dispute_id}/party-withdraw-appeal", SELLER, {}), 403, "Forbidden")
    withdrawn = await stack.act(dispute_id, "party-withdraw-appeal", BUYER)
    assert withdrawn["state"] == "CLOSED" and withdrawn["refunded"]["amount"] == 0
    assert withdrawn["resolution"]["reason"] == "mediator ruled reject"
    assert (await _released(stack, order_id))["open_dispute_id"] is None
    assert _buyer_refunds(stack, order_id, "CNY") == 0


# ---- 3. sums beyond the money bounds ------------------------------------------------------


async def _top_up(stack: Stack, amount: int, currency: str, reference: str):  # noqa: ANN202
    return await stack.call("POST", "/guarantee-fund/top-ups", PLATFORM,
                            {"amount": {"amount": amount, "currency": currency}, "reference": reference})


async def test_a_top_up_that_would_overflow_the_fund_changes_nothing(any_stack: Stack) -> None:
    stack, currency = any_stack, "KRW"
    ref = lambda name: f"{currency}-{name}-{id(stack)}"  # noqa: E731
    assert (await _top_up(stack, 1_000, currency, ref("small"))).status_code == 201
    fund_before = stack.services.ledger.account(accounts.guarantee_fund(currency))
    body = _problem(await _top_up(stack, 999_999_999_999_999, currency, ref("huge")), 422, "amount-too-large")
    assert str(MAX_AMOUNT) in body["detail"]
    assert stack.services.ledger.find_transfer(f"topup-{ref('huge')}") is None
    assert stack.services.ledger.account(accounts.guarantee_fund(currency)) == fund_before
    fund = await stack.ok("GET", f"/guarantee-fund/{currency}", PLATFORM)
    assert fund["funded"]["amount"] == fund_before.credits_posted

    # At the limit, and one past it.
    room = MAX_AMOUNT - fund_before.credits_posted
    assert (await _top_up(stack, room, currency, ref("to-the-limit"))).status_code == 201
    assert (await stack.ok("GET", f"/guarantee-fund/{currency}", PLATFORM))["funded"]["amount"] == MAX_AMOUNT
    _problem(await _top_up(stack, 1, currency, ref("one-past")), 422, "amount-too-large")
    assert (await stack.ok("GET", f"/guarantee-fund/{currency}", AUDITOR_TOKEN))["account"]["balance"] == MAX_AMOUNT
    assert stack.services.ledger.check_invariants() == []


AUDITOR_TOKEN = "dev-auditor-ada"


async def test_lifetime_sales_past_the_money_bound_do_not_stop_orders(any_stack: Stack) -> None:
    """An order's amount is bounded (the schema refuses more than MAX_AMOUNT), but the platform's
    clearing account only mirrors what orders paid: its lifetime total may pass the bound, or a
    currency would stop taking orders after 10^15 minor units of sales."""
    stack, currency = any_stack, "THB"
    clearing = accounts.payments_clearing(currency)
    opened = stack.services.ledger.accounts(kind=AccountKind.payments_clearing, currency=currency)
    before = opened[0].debits_posted if opened else 0
    orders = [f"ORD-max-{n}-{id(stack)}" for n in range(2)]
    for order_id in orders:
        await stack.ok("POST", "/orders", PLATFORM, {
            "order_id": order_id, "buyer_id": "alice", "seller_id": "acme",
            "paid": {"amount": MAX_AMOUNT, "currency": currency}, "shipped": True}, status=201)
    assert stack.services.ledger.account(clearing).debits_posted == before + 2 * MAX_AMOUNT
    for order_id in orders:
        assert stack.services.ledger.account(accounts.escrow(order_id, currency)).balance == MAX_AMOUNT
    too_much = await stack.call("POST", "/orders", PLATFORM, {
        "order_id": f"ORD-past-{id(stack)}", "buyer_id": "alice", "seller_id": "acme",
        "paid": {"amount": MAX_AMOUNT + 1, "currency": currency}, "shipped": True})
    assert too_much.status_code == 422, too_much.text
    assert stack.services.ledger.transfers(order_id=f"ORD-past-{id(stack)}") == []

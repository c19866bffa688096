"""Identity, refusals and bad input: clear problem+json answers that change nothing."""

import json
import uuid
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

from temporalio.api.enums.v1 import EventType

from tests.support import AUDITOR, BUYER, MEDIATOR, OTHER_BUYER, OTHER_SELLER, PLATFORM, SELLER, Stack, eventually

PROBLEM = "application/problem+json"


async def _problem(stack: Stack, method: str, path: str, token: str | None, body=None, status: int = 400,
                   **kwargs) -> dict:
    response = await stack.call(method, path, token, body, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == status and problem["title"]
    return problem


async def _accepted_actions(stack: Stack, dispute_id: str) -> list[str]:
    history = await stack.services.temporal.get_workflow_handle(dispute_id).fetch_history()
    return [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]


async def _quiet_history_length(stack: Stack, dispute_id: str) -> int:
    """History length once the workflow has no activity or workflow task in flight."""
    await stack.wait_until_quiet(dispute_id)
    return len((await stack.services.temporal.get_workflow_handle(dispute_id).fetch_history()).events)


async def test_tokens_and_roles(stack: Stack) -> None:
    order_id = await stack.register_order()
    dispute_id = (await stack.open_dispute(order_id))["dispute_id"]
    assert (await _problem(stack, "GET", f"/disputes/{dispute_id}", None, status=401))["type"] == "/problems/unauthenticated"
    await _problem(stack, "GET", f"/disputes/{dispute_id}", "not-a-token", status=401)
    # Other parties may not read or act; staff may read.
    await _problem(stack, "GET", f"/disputes/{dispute_id}", OTHER_BUYER, status=403)
    await _problem(stack, "GET", f"/disputes/{dispute_id}", OTHER_SELLER, status=403)
    for token in (MEDIATOR, AUDITOR, PLATFORM, BUYER, SELLER):
        await stack.ok("GET", f"/disputes/{dispute_id}", token)
    denied = await _problem(stack, "POST", f"/disputes/{dispute_id}/seller-agree-refund", OTHER_SELLER, {}, status=403)
    assert "only the seller" in denied["detail"]
    await _problem(stack, "POST", f"/disputes/{dispute_id}/seller-agree-refund", BUYER, {}, status=403)
    await _problem(stack, "POST", f"/disputes/{dispute_id}/buyer-withdraw", OTHER_BUYER, {}, status=403)
    await _problem(stack, "POST", "/orders", BUYER, {"order_id": "X1", "buyer_id": "alice", "seller_id": "acme",
                                                     "paid": {"amount": 1, "currency": "CNY"}, "shipped": True},
                   status=403)
    # A buyer may not open a dispute on someone else's order.
    other_order = await stack.register_order(buyer="bob")
    await _problem(stack, "POST", "/disputes", BUYER, {
        "order_id": other_order, "kind": "refund_only", "reason": "quality",
        "amount": {"amount": 100, "currency": "CNY"}, "description": "x"}, status=403)
    assert await _accepted_actions(stack, dispute_id) == ["opened"], "refused actions leave no trace in history"
    assert (await stack.dispute(dispute_id))["state"] == "WAIT_SELLER_AGREE"


async def test_actions_refused_in_the_wrong_state(stack: Stack) -> None:
    order_id = await stack.register_order()
    dispute_id = (await stack.open_dispute(order_id))["dispute_id"]
    events_before = await _quiet_history_length(stack, dispute_id)
    problem = await _problem(stack, "POST", f"/disputes/{dispute_id}/seller-confirm-return", SELLER, {}, status=409)
    assert problem["type"] == "/problems/ActionNotAllowed"
    assert problem["state"] == "WAIT_SELLER_AGREE"
    assert "seller_agree_refund" in problem["detail"]
    await _problem(stack, "POST", f"/disputes/{dispute_id}/buyer-accept-offer", BUYER, {}, status=409)
    # Refund-only on a shipped order: no return to agree to.
    await _problem(stack, "POST", f"/disputes/{dispute_id}/seller-agree-return", SELLER,
                   {"return_address": "Desk"}, status=409)
    too_much = await _problem(stack, "POST", f"/disputes/{dispute_id}/seller-offer-partial", SELLER,
                              {"amount": {"amount": 10_000, "currency": "CNY"}}, status=422)
    assert "less than the requested" in too_much["detail"]
    await _problem(stack, "POST", f"/disputes/{dispute_id}/seller-offer-partial", SELLER,
                   {"amount": {"amount": 100, "currency": "USD"}}, status=422)
    events_after = await _quiet_history_length(stack, dispute_id)
    assert events_after == events_before, "refused updates must not touch history"

    await stack.act(dispute_id, "seller-agree-refund", SELLER)
    closed = await _problem(stack, "POST", f"/disputes/{dispute_id}/buyer-withdraw", BUYER, {}, status=409)
    # Refused by the closed workflow's validator, or by Temporal once the workflow completed.
    assert closed["type"] == "/problems/dispute-closed" or closed["state"] == "SUCCESS"


async def test_resubmissions_are_limited_by_policy(stack: Stack) -> None:
    stack.services.policy = stack.services.policy.model_copy(update={"max_resubmissions": 1})
    order_id = await stack.register_order()
    dispute_id = (await stack.open_dispute(order_id))["dispute_id"]
    request = {"kind": "refund_only", "reason": "quality", "amount": {"amount": 5_000, "currency": "CNY"},
               "description": "Smaller ask"}
    await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "No"})
    await stack.act(dispute_id, "buyer-revise", BUYER, {"request": request})
    await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "Still no"})
    problem = await _problem(stack, "POST", f"/disputes/{dispute_id}/buyer-revise", BUYER, {"request": request},
                             status=409)
    assert "revised 1 times" in problem["detail"]
    over = dict(request, amount={"amount": 10_001, "currency": "CNY"})
    await _problem(stack, "POST", f"/disputes/{dispute_id}/buyer-revise", BUYER, {"request": over}, status=409)


async def test_bad_input_is_a_clear_4xx_and_writes_nothing(stack: Stack) -> None:
    order_id = await stack.register_order(amount=10_000)
    base = {"order_id": order_id, "kind": "refund_only", "reason": "quality",
            "amount": {"amount": 100, "currency": "CNY"}, "description": "Leaks"}
    cases = [
        (dict(base, amount={"amount": -5, "currency": "CNY"}), 422, ["body", "amount", "amount"]),
        (dict(base, amount={"amount": 1.5, "currency": "CNY"}), 422, ["body", "amount", "amount"]),
        (dict(base, amount={"amount": "100", "currency": "CNY"}), 422, ["body", "amount", "amount"]),
        (dict(base, amount={"amount": 10**16, "currency": "CNY"}), 422, ["body", "amount", "amount"]),
        (dict(base, amount={"amount": 100, "currency": "XYZ"}), 422, ["body", "amount", "currency"]),
        (dict(base, reason="bored"), 422, ["body", "reason"]),
        (dict(base, surprise=True), 422, ["body", "surprise"]),
        ({k: v for k, v in base.items() if k != "description"}, 422, ["body", "description"]),
    ]
    for body, status, location in cases:
        problem = await _problem(stack, "POST", "/disputes", BUYER, body, status=status)
        assert location in [e["location"] for e in problem["errors"]], (body, problem)
    over_paid = await _problem(stack, "POST", "/disputes", BUYER,
                               dict(base, amount={"amount": 10_001, "currency": "CNY"}), status=422)
    assert "may not exceed" in over_paid["detail"]
    await _problem(stack, "POST", "/disputes", BUYER, dict(base, amount={"amount": 100, "currency": "USD"}),
                   status=422)
    await _problem(stack, "POST", "/disputes", BUYER, dict(base, order_id="NO-SUCH-ORDER"), status=404)
    malformed = await stack.http.post("/disputes", content=b"{not json", headers={
        "Authorization": f"Bearer {BUYER}", "Content-Type": "application/json"})
    assert malformed.status_code == 400 and malformed.headers["content-type"] == PROBLEM
    await _problem(stack, "GET", "/disputes/dsp-NOPE-1", BUYER, status=404)
    await _problem(stack, "GET", "/disputes/not-a-dispute-id", BUYER, status=422)
    await _problem(stack, "POST", "/disputes/dsp-NOPE-1/buyer-withdraw", BUYER, {}, status=404)
    await _problem(stack, "GET", "/no/such/route", BUYER, status=404)
    # Nothing was written: the order has no dispute and its escrow is untouched.
    order = await stack.ok("GET", f"/orders/{order_id}", BUYER)
    assert order["open_dispute_id"] is None and order["escrow"]["amount"] == 10_000
    assert stack.money(order_id)["escrow_pending"] == 0


async def test_orders_register_idempotently(stack: Stack) -> None:
    body = {"order_id": f"ORD-{uuid.uuid4().hex[:8]}", "buyer_id": "alice", "seller_id": "acme",
            "paid": {"amount": 12_345, "currency": "JPY"}, "shipped": False}
    first = await stack.ok("POST", "/orders", PLATFORM, body, status=201)
    again = await stack.ok("POST", "/orders", PLATFORM, body, status=200)
    assert first == again and first["escrow"] == {"amount": 12_345, "currency": "JPY"}
    await _problem(stack, "POST", "/orders", PLATFORM, dict(body, paid={"amount": 1, "currency": "JPY"}), status=409)
    assert stack.money(body["order_id"], currency="JPY")["escrow"] == 12_345


async def test_one_open_dispute_per_order_and_idempotent_opening(stack: Stack) -> None:
    order_id = await stack.register_order()
    body = {"order_id": order_id, "kind": "refund_only", "reason": "quality",
            "amount": {"amount": 500, "currency": "CNY"}, "description": "Scratched"}
    key = {"Idempotency-Key": f"open-{uuid.uuid4().hex}"}
    first = await stack.ok("POST", "/disputes", BUYER, body, headers=key, status=201)
    retried = await stack.ok("POST", "/disputes", BUYER, body, headers=key, status=201)
    assert retried["dispute_id"] == first["dispute_id"]
    reused = await _problem(stack, "POST", "/disputes", BUYER, dict(body, description="Other"), headers=key,
                            status=422)
    assert reused["type"] == "/problems/idempotency-key-reused"
    twice = await _problem(stack, "POST", "/disputes", BUYER, body, status=409)
    assert twice["dispute_id"] == first["dispute_id"]
    assert stack.money(order_id)["escrow_pending"] == 10_000, "escrow frozen once"


async def test_idempotent_actions(stack: Stack) -> None:
    order_id = await stack.register_order()
    dispute_id = (await stack.open_dispute(order_id, amount=4_000))["dispute_id"]
    key = {"Idempotency-Key": f"agree-{uuid.uuid4().hex}"}
    first = await stack.ok("POST", f"/disputes/{dispute_id}/seller-agree-refund", SELLER, {}, headers=key)
    again = await stack.ok("POST", f"/disputes/{dispute_id}/seller-agree-refund", SELLER, {}, headers=key)
    assert first["state"] == again["state"] == "SUCCESS"
    assert stack.money(order_id)["buyer_refunds"] == 4_000
    # A key names one request of one caller: reused for another action or dispute, it is refused.
    other = (await stack.open_dispute(await stack.register_order()))["dispute_id"]
    reused = await _problem(stack, "POST", f"/disputes/{other}/seller-agree-refund", SELLER, {}, headers=key,
                            status=422)
    assert reused["type"] == "/problems/idempotency-key-reused"
    assert (await stack.dispute(other))["state"] == "WAIT_SELLER_AGREE"
    # Another caller's key of the same name is theirs alone.
    withdrawn = await stack.ok("POST", f"/disputes/{other}/buyer-withdraw", BUYER, {}, headers=key)
    assert withdrawn["state"] == "CLOSED"


async def test_listing_shows_each_party_its_own(stack: Stack) -> None:
    mine = (await stack.open_dispute(await stack.register_order()))["dispute_id"]
    theirs = (await stack.open_dispute(await stack.register_order(buyer="bob", seller="zenith"),
                                       token=OTHER_BUYER))["dispute_id"]

    async def listed(token: str, query: str = "") -> set[str]:
        return {d["dispute_id"] for d in (await stack.ok("GET", f"/disputes{query}", token))["items"]}

    await eventually(lambda: _contains(listed(AUDITOR), {mine, theirs}), what="both disputes visible")
    assert mine in await listed(BUYER) and theirs not in await listed(BUYER)
    assert theirs in await listed(OTHER_BUYER) and mine not in await listed(OTHER_BUYER)
    assert mine in await listed(SELLER) and theirs not in await listed(SELLER)
    await _problem(stack, "GET", "/disputes?buyer_id=bob", BUYER, status=403)
    await stack.act(mine, "seller-refuse", SELLER, {"reason": "No"})
    await eventually(lambda: _contains(listed(MEDIATOR, "?state=SELLER_REFUSED&seller_id=acme"), {mine}),
                     what="state filter")
    summary = next(d for d in (await stack.ok("GET", "/disputes?seller_id=acme", MEDIATOR))["items"]
                   if d["dispute_id"] == mine)
    assert summary["reason"] == "quality" and summary["buyer_id"] == "alice" and summary["next_deadline"]
    await stack.act(mine, "buyer-withdraw", BUYER)
    await eventually(lambda: _contains(listed(BUYER, "?state=CLOSED"), {mine}), what="closed state listed")
    await _problem(stack, "GET", "/disputes?state=NOT_A_STATE", MEDIATOR, status=422)
    await _problem(stack, "GET", "/disputes?seller_id=x'%20OR%20'1'='1", MEDIATOR, status=422)


async def _contains(found, expected: set[str]) -> bool:
    return expected <= await found


async def test_balances_are_readable_per_party(stack: Stack) -> None:
    order_id = await stack.register_order(amount=3_000)
    dispute_id = (await stack.open_dispute(order_id, amount=3_000))["dispute_id"]
    await stack.act(dispute_id, "seller-agree-refund", SELLER)
    [buyer_account] = await stack.ok("GET", "/ledger/accounts?currency=CNY", BUYER)
    assert buyer_account["id"] == "buyer:alice:CNY" and buyer_account["balance"] >= 3_000
    await _problem(stack, "GET", "/ledger/accounts/seller:acme:CNY", BUYER, status=403)
    escrow = await stack.ok("GET", f"/ledger/accounts/escrow:{order_id}:CNY", AUDITOR)
    assert escrow["balance"] == 0 and escrow["debits_pending"] == 0
    trail = await stack.ok("GET", f"/disputes/{dispute_id}/transfers", BUYER)
    assert [(t["id"], t["code"], t["amount"]) for t in trail] == [
        (f"{dispute_id}-freeze", "freeze", 3_000),
        (f"{dispute_id}-release", "release", 3_000),
        (f"{dispute_id}-refund", "refund", 3_000),
    ]
    assert all(t["step"] for t in trail)


async def test_listing_by_opening_dates(stack: Stack) -> None:
    order_id = await stack.register_order()
    dispute_id = (await stack.open_dispute(order_id))["dispute_id"]

    async def listed(**dates: str) -> set[str]:
        query = urlencode({"order_id": order_id, **dates})
        return {d["dispute_id"] for d in (await stack.ok("GET", f"/disputes?{query}", AUDITOR))["items"]}

    await eventually(lambda: _contains(listed(), {dispute_id}), what="the dispute visible")
    [summary] = (await stack.ok("GET", f"/disputes?order_id={order_id}", AUDITOR))["items"]
    opened = datetime.fromisoformat(summary["opened_at"])
    assert await listed(opened_from=opened.isoformat()) == {dispute_id}  # from is inclusive
    assert await listed(opened_to=opened.isoformat()) == set()  # to is exclusive
    assert await listed(opened_from=(opened - timedelta(days=1)).isoformat(),
                        opened_to=(opened + timedelta(seconds=1)).isoformat()) == {dispute_id}
    assert await listed(opened_from=(opened + timedelta(seconds=1)).isoformat()) == set()
    for bad in ("opened_from=yesterday", "opened_to=2026-12-01T10:00:00",  # no date; no time zone
                f"opened_from={quote(opened.isoformat())}&opened_to={quote(opened.isoformat())}"):
        problem = await _problem(stack, "GET", f"/disputes?{bad}", AUDITOR, status=422)
        assert "opened_" in json.dumps(problem), problem

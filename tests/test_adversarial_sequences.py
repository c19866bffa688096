"""Sequences a careless or hostile client can walk that no other test walks: each ends with
the money, the case and the read models as a user would check them."""

import asyncio

from sqlmodel import Session, func, select

from evidence.store import EvidenceRow
from tests.support import BUYER, MEDIATOR, OTHER_BUYER, PLATFORM, SELLER, Stack, eventually

SAM = "dev-senior-sam"


def _bodies_stored(stack: Stack) -> int:
    with Session(stack.services.engine) as session:
        return session.exec(select(func.count()).select_from(EvidenceRow)).one()


async def _escalated(stack: Stack, amount: int = 10_000) -> tuple[str, str]:
    order_id = await stack.register_order(amount=amount)
    dispute_id = (await stack.open_dispute(order_id, amount=amount))["dispute_id"]
    await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "Nothing wrong with it"})
    await stack.act(dispute_id, "buyer-escalate", BUYER, {"reason": "Please step in"})
    return order_id, dispute_id


async def test_refused_evidence_leaves_nothing_stored(stack: Stack) -> None:
    """Evidence a case refuses (a stranger's, a closed case's, a case not under intervention)
    is bad input: it changes nothing, the evidence store included; else anyone can fill the
    database with bodies nobody can ever read, one 403 at a time."""
    _, dispute_id = await _escalated(stack)
    order_id = await stack.register_order()
    waiting = (await stack.open_dispute(order_id))["dispute_id"]
    before = _bodies_stored(stack)
    for n, (target, token, status) in enumerate(((dispute_id, OTHER_BUYER, 403), (waiting, BUYER, 409),
                                                 ("dsp-NOPE-1", BUYER, 404))):
        refused = await stack.call("POST", f"/disputes/{target}/party-submit-evidence", token,
                                   {"text": f"hostile body {n} " + "x" * 1900, "attachments": []})
        assert refused.status_code == status, refused.text
    assert _bodies_stored(stack) == before


async def test_a_ruling_stays_on_record_through_a_second_intervention(stack: Stack) -> None:
    """Ruled "refund after return", the parcel comes back disputed and the platform steps in
    again; the buyer then withdraws. The first intervention's ruling is still the case's, so
    the order counts as ruled on and is not re-litigated by a new dispute."""
    order_id = await stack.register_order()
    dispute_id = (await stack.open_dispute(order_id, kind="return_and_refund"))["dispute_id"]
    await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "Nothing wrong with it"})
    await stack.act(dispute_id, "buyer-escalate", BUYER, {"reason": "Please step in"})
    await stack.act(dispute_id, "mediator-take", MEDIATOR)
    await stack.act(dispute_id, "mediator-rule", MEDIATOR, {
        "decision": "refund_after_return", "rationale": "Return it", "return_address": "1 Depot Rd"})
    await stack.act(dispute_id, "buyer-ship-return", BUYER, {"carrier": "SF", "tracking_number": "SF12345"})
    reported = await stack.act(dispute_id, "seller-report-return-problem", SELLER, {
        "problem": "different", "description": "A brick came back"})
    assert reported["state"] == "PLATFORM_INTERVENING"
    assert [r["decision"] for r in reported["intervention"]["rulings"]] == ["refund_after_return"]
    await stack.act(dispute_id, "buyer-withdraw", BUYER, {"reason": "Never mind"})
    await stack.wait_for_state(dispute_id, "CLOSED")

    async def released() -> bool:
        return (await stack.ok("GET", f"/orders/{order_id}", PLATFORM))["open_dispute_id"] is None

    await eventually(released, what="the order released")
    again = await stack.call("POST", "/disputes", BUYER, {
        "order_id": order_id, "kind": "refund_only", "reason": "quality",
        "amount": {"amount": 10_000, "currency": "CNY"}, "description": "Again"})
    assert again.status_code == 409 and again.json()["type"].endswith("order_ruled_on"), again.text


def _set_limits(stack: Stack, **limits: int) -> None:
    policy = stack.services.policy
    stack.services.policy = policy.model_copy(update={"limits": policy.limits.model_copy(update=limits)})


async def test_two_submissions_racing_the_case_total_one_wins(stack: Stack) -> None:
    """Two bodies that each fit, but not together, sent at once: one is recorded, the other
    is refused with the limit named; the case holds exactly one and stays usable."""
    _set_limits(stack, evidence_bytes_per_case=3000)
    _, dispute_id = await _escalated(stack)
    bodies = [{"text": f"{party} " + "e" * 1500, "attachments": []} for party in ("buyer", "seller")]
    answers = await asyncio.gather(*(stack.call("POST", f"/disputes/{dispute_id}/party-submit-evidence", token, body)
                                     for token, body in zip((BUYER, SELLER), bodies)))
    assert sorted(a.status_code for a in answers) == [200, 422], [a.text for a in answers]
    refused = next(a for a in answers if a.status_code == 422).json()
    assert refused["limit"] == "evidence_bytes_per_case"
    view = await stack.dispute(dispute_id)
    assert len(view["intervention"]["evidence"]) == 1
    page = await stack.ok("GET", f"/disputes/{dispute_id}/evidence", BUYER)
    assert page["total"] == 1 and page["items"][0]["text"].startswith(("buyer", "seller"))
    await stack.act(dispute_id, "mediator-take", MEDIATOR)
    await stack.act(dispute_id, "mediator-rule", MEDIATOR, {"decision": "reject", "rationale": "No proof"})
    await stack.wait_for_state(dispute_id, "CLOSED")


async def _queue_ids(stack: Stack) -> set[str]:
    page = await stack.ok("GET", "/mediation/queue?limit=1000", MEDIATOR)
    return {item["dispute_id"] for item in page["items"]}


async def test_a_withdrawn_appeal_leaves_the_queue_and_the_books_balanced(stack: Stack) -> None:
    """An appeal puts the case back in the (senior) queue; its withdrawal takes it out again,
    the first ruling's money stands and reconciliation stays clean."""
    order_id, dispute_id = await _escalated(stack)
    await stack.act(dispute_id, "mediator-take", MEDIATOR)
    await stack.act(dispute_id, "mediator-rule", MEDIATOR, {
        "decision": "partial_refund", "amount": {"amount": 4_000, "currency": "CNY"}, "rationale": "Partly"})
    await stack.wait_for_state(dispute_id, "SUCCESS")
    await eventually(lambda: _absent(stack, dispute_id), what="the ruled case out of the queue")
    await stack.act(dispute_id, "party-appeal", BUYER, {"reason": "Too little", "new_information": "Receipts"})

    async def queued() -> bool:
        return dispute_id in await _queue_ids(stack)

    await eventually(queued, what="the appealed case in the queue")
    await stack.act(dispute_id, "mediator-take", SAM)
    await stack.act(dispute_id, "party-withdraw-appeal", BUYER, {"reason": "Fine"})
    await eventually(lambda: _absent(stack, dispute_id), what="the withdrawn appeal out of the queue")
    await asyncio.wait_for(stack.services.temporal.get_workflow_handle(dispute_id).result(), timeout=30)
    assert stack.money(order_id) == {"escrow": 0, "escrow_pending": 0, "buyer_refunds": 4000,
                                     "seller_released": 6000}
    trail = await stack.ok("GET", f"/reconciliation/disputes/{dispute_id}", PLATFORM)
    assert trail["report"]["ok"], trail


async def _absent(stack: Stack, dispute_id: str) -> bool:
    return dispute_id not in await _queue_ids(stack)



async def test_a_keyed_evidence_retry_gets_its_first_answer_at_the_limit(stack: Stack) -> None:
    """The submission that used the party's last slot, retried with its key: the first
    answer again (200, nothing new), not the limit it reached itself."""
    _set_limits(stack, evidence_submissions_per_party=1)
    _, dispute_id = await _escalated(stack)
    path, keyed = f"/disputes/{dispute_id}/party-submit-evidence", {"Idempotency-Key": "last-slot"}
    body = {"text": "The base leaks", "attachments": []}
    first = await stack.ok("POST", path, BUYER, body, headers=keyed)
    again = await stack.ok("POST", path, BUYER, body, headers=keyed)
    assert again["events_total"] == first["events_total"]
    assert len(again["intervention"]["evidence"]) == 1
    other = await stack.call("POST", path, BUYER, {"text": "More", "attachments": []})
    assert other.status_code == 422 and other.json()["limit"] == "evidence_submissions_per_party", other.text


async def test_a_large_order_refunded_after_a_clawed_back_advance_still_settles(stack: Stack) -> None:
    """An order of 6×10^14 (within the accepted maximum): the fund advances it (single-phase),
    the buyer withdraws so it is clawed back, then a second dispute is agreed in full. Every
    step was accepted, so the refund must settle; a counter bound on the buyer's account (its
    credits, 1.2×10^15 by then) may not leave the case closed, unsettled, its escrow frozen."""
    currency, amount = "BHD", 6 * 10**14
    stack.services.policy = stack.services.policy.model_copy(update={"advance_payment_two_phase": False})
    await stack.ok("POST", "/guarantee-fund/top-ups", PLATFORM,
                   {"amount": {"amount": amount, "currency": currency}, "reference": "bhd-large-1"}, status=201)
    order_id = await stack.register_order(amount=amount, currency=currency)
    first = (await stack.open_dispute(order_id, amount=amount, currency=currency))["dispute_id"]
    await stack.act(first, "seller-refuse", SELLER, {"reason": "Nothing wrong with it"})
    await stack.act(first, "buyer-escalate", BUYER, {"reason": "Please step in"})
    await stack.act(first, "mediator-take", MEDIATOR)
    await stack.act(first, "mediator-order-advance", MEDIATOR, {
        "amount": {"amount": amount, "currency": currency}, "rationale": "Defect shown",
        "buyer_in_good_faith": True, "return_goods": False})
    await stack.act(first, "buyer-withdraw", BUYER, {"reason": "Sorted it out"})
    await stack.wait_for_state(first, "CLOSED")
    await asyncio.wait_for(stack.services.temporal.get_workflow_handle(first).result(), timeout=30)

    second = await stack.call("POST", "/disputes", BUYER, {
        "order_id": order_id, "kind": "refund_only", "reason": "quality",
        "amount": {"amount": amount, "currency": currency}, "description": "Still broken"})
    if second.status_code != 201:  # refused up front is acceptable: nothing may be half-done
        assert second.status_code in (409, 422), second.text
        return
    second_id = second.json()["dispute_id"]
    await stack.act(second_id, "seller-agree-refund", SELLER)
    settled = await stack.wait_for_state(second_id, "SUCCESS", timeout=60)
    assert settled["refunded"] == {"amount": amount, "currency": currency}
    # The withdrawn first case released the escrow to the seller; the second refunds from the seller.
    assert stack.money(order_id, currency=currency) == {"escrow": 0, "escrow_pending": 0, "buyer_refunds": amount,
                                                        "seller_released": amount}
    assert (stack.balance(f"buyer:alice:{currency}"), stack.balance(f"seller:acme:{currency}")) == (amount, 0)
    fund = await stack.ok("GET", f"/guarantee-fund/{currency}", PLATFORM)
    assert fund["account"]["balance"] == amount and fund["outstanding_advances"]["amount"] == 0

"""Complaints (投诉) end to end on the real dev server: every path of the life cycle, its money to
the minor unit, its notifications, who may see and do what, and reconciliation of its transfers."""

import asyncio

from money.plans import Leg, untraced_complaint_transfer as untraced
from ledger import accounts
from tests.complaint_support import (
    SENIOR,
    act,
    complaint,
    complaint_policy,
    file,
    new_seller,
    standing,
    wait_final,
    wait_state,
)
from tests.support import AUDITOR, BUYER, MEDIATOR, OTHER_BUYER, PLATFORM, SELLER, Stack, eventually

PROBLEM = "application/problem+json"


def _balances(stack: Stack, seller: str, currency: str = "CNY") -> tuple[int, int]:
    return stack.balance(accounts.buyer("alice", currency)), stack.balance(accounts.seller(seller, currency))


async def test_seller_accepts_upheld_with_compensation_outside_the_refund_cap(stack: Stack) -> None:
    stack.services.complaint_policy = complaint_policy()
    seller = new_seller(stack)
    order_id = await stack.register_order(amount=12_345, seller=seller.party_id)
    buyer_before, seller_before = _balances(stack, seller.party_id)

    filed = await file(stack, order_id, key="late-1")
    again = await file(stack, order_id, key="late-1")
    cid = filed["complaint_id"]
    assert again["complaint_id"] == cid and cid == f"cmp-{order_id}-shipped_late-1"
    assert filed["state"] == "WAIT_SELLER_RESPONSE" and filed["deadline_kind"] == "seller_response"
    assert filed["allowed_actions"] == {"seller": ["seller_accept", "seller_contest"]}
    # One open complaint per order and type; another type may be filed beside it.
    second = await stack.call("POST", "/complaints", BUYER, {"order_id": order_id, "complaint_type": "shipped_late",
                                                            "description": "Again"})
    assert second.status_code == 409 and second.headers["content-type"] == PROBLEM
    assert second.json()["complaint_id"] == cid
    unknown = await stack.call("POST", "/complaints", BUYER, {"order_id": order_id, "complaint_type": "rude",
                                                             "description": "Rude"})
    assert unknown.status_code == 422 and unknown.json()["type"] == "/problems/unknown-complaint-type"
    # Only the order's buyer files, only its seller answers, only the parties and staff see it.
    assert (await stack.call("POST", "/complaints", OTHER_BUYER, {
        "order_id": order_id, "complaint_type": "fake_shipment", "description": "Not mine"})).status_code == 403
    assert (await stack.call("GET", f"/complaints/{cid}", OTHER_BUYER)).status_code == 403
    assert (await stack.call("GET", f"/complaints/{cid}", SELLER)).status_code == 403
    assert (await stack.call("POST", f"/complaints/{cid}/seller-accept", SELLER, {})).status_code == 403
    assert (await stack.call("POST", f"/complaints/{cid}/seller-accept", BUYER, {})).status_code == 403
    listed = await stack.ok("GET", "/complaints", BUYER, None)
    assert cid in [c["complaint_id"] for c in listed["items"]]
    assert (await stack.call("GET", "/complaints?buyer_id=bob", BUYER)).status_code == 403

    accepted = await act(stack, cid, "seller-accept", seller.token, {"note": "Our warehouse was late, sorry"})
    assert accepted["state"] == "UPHELD" and accepted["outcome"]["fault"] == "seller"
    final = await wait_final(stack, cid)
    # 5% of 123.45 CNY, rounded down to the fen: the seller pays 6.17, the buyer gets 6.17.
    assert final["compensation"]["amount"] == {"amount": 617, "currency": "CNY"}
    assert final["final"] and final["allowed_actions"] == {} and final["violation_recorded"]
    assert _balances(stack, seller.party_id) == (buyer_before + 617, seller_before - 617)
    # Compensation is not a refund: the order can still refund all it was paid.
    assert stack.services.ledger.order_refunds(order_id).refunded == 0
    [transfer] = await stack.ok("GET", f"/complaints/{cid}/transfers", BUYER)
    assert (transfer["id"], transfer["code"], transfer["step"], transfer["order_id"]) == (
        Leg.COMPENSATION.id(cid), "complaint_compensation", "compensation", None)
    # A seller who accepted has nothing to appeal; the buyer may complain of it again.
    assert (await stack.call("POST", f"/complaints/{cid}/seller-appeal", seller.token,
                             {"reason": "x", "new_information": "y"})).status_code == 409
    assert (await file(stack, order_id))["complaint_id"] == f"cmp-{order_id}-shipped_late-2"

    view = await standing(stack, seller.party_id, seller.token)
    assert view["points"] == {"A": 3, "B": 0} and [v["violation_id"] for v in view["violations"]] == [cid]
    assert (await stack.call("GET", f"/sellers/{seller.party_id}/standing", SELLER)).status_code == 403
    assert (await stack.call("GET", f"/sellers/{seller.party_id}/standing", BUYER)).status_code == 403
    kinds = {(m.recipient_id, m.kind) for m in stack.services.notifications.for_dispute(cid)}
    assert {(seller.party_id, "complaint_filed"), ("alice", "complaint_upheld"), ("alice", "complaint_closed")} <= kinds
    report = await stack.ok("GET", "/reconciliation", AUDITOR)
    assert not [f for f in report["findings"] if cid in f["dispute_ids"]], report["findings"]
    # Auditors read the complaint's history and trail, and replay it on the running code.
    exported = await stack.call("GET", f"/audit/complaints/{cid}/history", AUDITOR)
    assert exported.status_code == 200 and exported.json()["events"][0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    trail = await stack.ok("GET", f"/audit/complaints/{cid}/trail", AUDITOR)
    assert any("seller_accept" in e["text"] for e in trail["entries"])
    replayed = await stack.ok("POST", f"/audit/complaints/{cid}/replay", AUDITOR)
    assert replayed["ok"] and replayed["replayed"] == 1
    assert (await stack.call("GET", f"/audit/complaints/{cid}/history", BUYER)).status_code == 403


async def test_seller_silence_upholds_and_the_appeal_window_lapses(stack: Stack) -> None:
    stack.services.complaint_policy = complaint_policy(seller_response=1, appeal=1)
    seller = new_seller(stack)
    order_id = await stack.register_order(amount=10_000, seller=seller.party_id)
    cid = (await file(stack, order_id, "paid_not_shipped", token=PLATFORM))["complaint_id"]
    final = await wait_final(stack, cid)
    assert final["state"] == "UPHELD" and final["outcome"]["decided_by"] is None
    assert [e["kind"] for e in final["events"]] == ["seller_silent", "appeal_lapsed"]
    assert final["filed_by"]["role"] == "platform" and final["compensation"]["amount"]["amount"] == 500
    assert (await standing(stack, seller.party_id))["points"]["A"] == 3


async def _contested(stack: Stack, seller, order_id: str, complaint_type: str = "fake_shipment") -> str:
    cid = (await file(stack, order_id, complaint_type))["complaint_id"]
    contested = await act(stack, cid, "seller-contest", seller.token, {
        "text": "Shipped on time: tracking attached", "evidence": [{"url": "https://files.example/receipt.pdf"}]})
    assert contested["state"] == "PLATFORM_REVIEW" and contested["allowed_actions"] == {
        "mediator": ["mediator_request_evidence", "mediator_decide"]}
    return cid


async def test_contested_upheld_with_compensation_then_the_appeal_is_rejected(stack: Stack) -> None:
    # The evidence window is ACTING_ROOM (the default here): the buyer answers inside it; the
    # seller's lapses.
    stack.services.complaint_policy = complaint_policy()
    seller = new_seller(stack)
    order_id = await stack.register_order(amount=9_999, seller=seller.party_id)
    buyer_before, seller_before = _balances(stack, seller.party_id)
    cid = await _contested(stack, seller, order_id)

    asked = await act(stack, cid, "mediator-request-evidence", MEDIATOR, {"party": "buyer", "request": "The chat"})
    assert asked["deadline_kind"] == "evidence_buyer" and asked["allowed_actions"]["buyer"] == ["party_submit_evidence"]
    assert (await stack.call("POST", f"/complaints/{cid}/party-submit-evidence", seller.token,
                             {"text": "me too"})).status_code == 409
    await act(stack, cid, "party-submit-evidence", BUYER, {"text": "Chat log", "evidence": [
        {"url": "https://files.example/chat.txt"}]})
    await act(stack, cid, "mediator-request-evidence", MEDIATOR, {"party": "seller", "request": "The courier scan"})

    async def missed() -> bool:
        return (await complaint(stack, cid))["events"][-1]["kind"] == "evidence_missed"

    await eventually(missed, what="the seller's evidence request to lapse")
    wrong = await stack.call("POST", f"/complaints/{cid}/mediator-decide", MEDIATOR,
                             {"decision": "uphold", "rationale": "No scan", "fault": "buyer"})
    assert wrong.status_code == 422 and wrong.headers["content-type"] == PROBLEM
    upheld = await act(stack, cid, "mediator-decide", MEDIATOR,
                       {"decision": "uphold", "rationale": "No courier scan: the shipment was fake", "fault": "seller"})
    assert upheld["state"] == "UPHELD" and upheld["outcome"]["decided_by"]["party_id"] == "mia"

    await eventually(lambda: _appealable(stack, cid), what="the appeal window")
    # 10% of 99.99 CNY is 9.999: rounded down to 9.99.
    assert _balances(stack, seller.party_id) == (buyer_before + 999, seller_before - 999)
    appealed = await act(stack, cid, "seller-appeal", seller.token, {"reason": "Courier lost the scan",
                                                                    "new_information": "Courier's letter"})
    assert appealed["state"] == "APPEALED"
    assert (await stack.call("POST", f"/complaints/{cid}/senior-decide-appeal", MEDIATOR,
                             {"decision": "reject_appeal", "rationale": "x"})).status_code == 403
    await act(stack, cid, "senior-decide-appeal", SENIOR, {"decision": "reject_appeal",
                                                           "rationale": "The letter is not a scan"})
    final = await wait_final(stack, cid)
    assert final["state"] == "UPHELD" and final["appeal"]["decision"] == "reject_appeal" and final["final"]
    assert _balances(stack, seller.party_id) == (buyer_before + 999, seller_before - 999)
    assert (await standing(stack, seller.party_id))["points"] == {"A": 6, "B": 0}
    assert {m.kind for m in stack.services.notifications.for_party("mediators", cid)} >= {
        "complaint_contested", "evidence_submitted", "evidence_missed", "complaint_appealed"}


async def test_contested_and_rejected_the_buyer_at_fault(stack: Stack) -> None:
    stack.services.complaint_policy = complaint_policy()
    seller = new_seller(stack)
    order_id = await stack.register_order(seller=seller.party_id)
    cid = await _contested(stack, seller, order_id, "service_not_honoured")
    await act(stack, cid, "mediator-decide", MEDIATOR,
              {"decision": "reject", "rationale": "The listing promised no invoice", "fault": "buyer"})
    final = await wait_final(stack, cid)
    assert final["state"] == "REJECTED" and final["outcome"]["fault"] == "buyer" and final["compensation"] is None
    assert not final["violation_recorded"]
    assert await stack.ok("GET", f"/complaints/{cid}/transfers", PLATFORM) == []
    assert (await standing(stack, seller.party_id))["violations_total"] == 0
    closed = await stack.call("POST", f"/complaints/{cid}/mediator-decide", MEDIATOR,
                              {"decision": "reject", "rationale": "again", "fault": "buyer"})
    assert closed.status_code == 409 and closed.json()["type"] == "/problems/complaint-final"


async def test_an_upheld_appeal_returns_the_compensation_and_lifts_the_penalty_early(stack: Stack) -> None:
    # Fake shipment worth 12 class A points: one upheld complaint shields the shop ("12 days": 60 s).
    policy = complaint_policy(a_day=5, seller_response=1)
    fake = policy.types["fake_shipment"].model_copy(update={"points": 12})
    stack.services.complaint_policy = policy.model_copy(update={"types": {**policy.types, "fake_shipment": fake}})
    seller = new_seller(stack)
    order_id = await stack.register_order(amount=20_000, seller=seller.party_id)
    buyer_before, seller_before = _balances(stack, seller.party_id)
    cid = (await file(stack, order_id, "fake_shipment"))["complaint_id"]
    await wait_state(stack, cid, "UPHELD")

    async def shielded() -> dict | None:
        view = await standing(stack, seller.party_id)
        return view if view["active_penalties"] else None

    view = await eventually(shielded, what="the shield")
    [penalty] = view["active_penalties"]
    assert (penalty["violation_class"], penalty["threshold"], penalty["measures"]) == ("A", 12, ["shop_shielded"])
    assert view["under_penalty"] and view["points"]["A"] == 12

    async def listed() -> bool:
        # The list is what the standing's activity publishes after the change its view already shows.
        page = await stack.ok("GET", "/sellers/under-penalty", MEDIATOR)
        return seller.party_id in [s["seller_id"] for s in page["items"]]

    await eventually(listed, what="the seller on the penalty list")
    assert (await stack.call("GET", "/sellers/under-penalty", SELLER)).status_code == 403

    await eventually(lambda: _appealable(stack, cid), what="the appeal window")
    await act(stack, cid, "seller-appeal", seller.token, {"reason": "Shipped", "new_information": "Courier receipt"})
    await act(stack, cid, "senior-decide-appeal", SENIOR, {"decision": "uphold_appeal",
                                                           "rationale": "The receipt proves the shipment"})
    final = await wait_final(stack, cid)
    assert final["state"] == "OVERTURNED" and not final["violation_recorded"]
    assert final["compensation"]["reversed_by"] == Leg.COMPENSATION_REVERSAL.id(cid)
    assert _balances(stack, seller.party_id) == (buyer_before, seller_before)

    async def lifted() -> dict | None:
        current = await standing(stack, seller.party_id)
        return current if not current["active_penalties"] else None

    after = await eventually(lifted, what="the early lift")
    assert after["points"]["A"] == 0 and after["ended_penalties"][0]["end_reason"] == "appeal"
    assert after["violations"][0]["removed"]

    async def announced_end() -> list:
        # The announcements are the standing's activities after the change its view already shows:
        # the seller's first, then the marketplace's.
        return [m for m in stack.services.notifications.for_party("marketplace")
                if m.data.get("seller_id") == seller.party_id and m.kind == "penalty_ended"]

    await eventually(announced_end, what="the marketplace told the shield ended")
    events = {(m.recipient_role, m.kind) for m in stack.services.notifications.for_party(seller.party_id)}
    assert {("seller", "penalty_started"), ("seller", "penalty_ended")} <= events
    webhook = [m for m in stack.services.notifications.for_party("marketplace")
               if m.data.get("seller_id") == seller.party_id]
    assert [m.kind for m in webhook] == ["penalty_started", "penalty_ended"]
    assert webhook[1].data["end_reason"] == "appeal"

    async def unlisted() -> bool:
        listed = await stack.ok("GET", "/sellers/under-penalty", AUDITOR)
        return seller.party_id not in [s["seller_id"] for s in listed["items"]]

    await eventually(unlisted, what="the seller off the penalty list")
    report = await stack.ok("GET", "/reconciliation", AUDITOR)
    assert not [f for f in report["findings"] if cid in f["dispute_ids"]], report["findings"]


def test_a_complaint_transfer_traces_only_to_its_complaint_and_step() -> None:
    cid = "cmp-ORD-1-shipped_late-1"
    kind = Leg.COMPENSATION
    assert untraced(kind.id(cid), kind.code, cid, kind.step, {cid}) is None
    assert "unknown complaint" in untraced(kind.id(cid), kind.code, cid, kind.step, set())
    assert "not the compensation step" in untraced(f"{cid}-other", kind.code, cid, kind.step, {cid})
    assert "not the compensation step" in untraced(kind.id(cid), kind.code, cid, "refund", {cid})
    # Without the list of complaints, the id and step still have to agree.
    assert untraced(kind.id(cid), kind.code, cid, kind.step, None) is None
    assert "unknown complaint" in untraced(kind.id(cid), kind.code, None, kind.step, None)


async def test_concurrent_filings_open_one_complaint(any_stack: Stack) -> None:
    any_stack.services.complaint_policy = complaint_policy()
    seller = new_seller(any_stack)
    order_id = await any_stack.register_order(seller=seller.party_id)
    body = {"order_id": order_id, "complaint_type": "refused_to_sell", "description": "Cancelled my order"}
    answers = await asyncio.gather(*(any_stack.call("POST", "/complaints", BUYER, body) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409], [a.text for a in answers]


async def test_the_readme_walkthrough_on_the_demo_policy(stack: Stack) -> None:
    from complaints.policy import demo_complaint_policy

    stack.services.complaint_policy = demo_complaint_policy()
    seller = new_seller(stack)
    order_id = await stack.register_order(amount=19_900, seller=seller.party_id)
    cid = (await file(stack, order_id, key=f"{order_id}-late"))["complaint_id"]
    await act(stack, cid, "seller-contest", seller.token, {"text": "Shipped on day 2"})
    await act(stack, cid, "mediator-request-evidence", MEDIATOR, {"party": "buyer", "request": "The chat"})
    await act(stack, cid, "party-submit-evidence", BUYER, {"text": "Chat log"})
    assert (await act(stack, cid, "mediator-decide", MEDIATOR, {
        "decision": "uphold", "rationale": "The receipt is dated day 6", "fault": "seller"}))["state"] == "UPHELD"
    upheld = await eventually(lambda: _appealable(stack, cid), what="the appeal window")
    assert upheld["compensation"] == {"amount": {"amount": 995, "currency": "CNY"},
                                      "transfer_id": f"{cid}-compensation", "reversed_by": None}
    assert (await standing(stack, seller.party_id, seller.token))["points"] == {"A": 3, "B": 0}
    await act(stack, cid, "seller-appeal", seller.token, {"reason": "Misdated", "new_information": "A letter"})
    assert (await act(stack, cid, "senior-decide-appeal", SENIOR, {
        "decision": "uphold_appeal", "rationale": "The letter confirms day 2"}))["state"] == "OVERTURNED"
    final = await wait_final(stack, cid)
    assert final["compensation"]["reversed_by"] == f"{cid}-compensation-reversal"
    assert [t["amount"] for t in await stack.ok("GET", f"/complaints/{cid}/transfers", AUDITOR)] == [995, 995]


async def _appealable(stack: Stack, complaint_id: str) -> dict | None:
    view = await complaint(stack, complaint_id)
    return view if view["deadline_kind"] == "appeal" else None

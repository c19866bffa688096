"""Stage 4 and the appeal: escalation, the mediator queue, evidence, rulings and SLAs."""

import asyncio
from datetime import datetime, timedelta

from policy import Window
from tests.support import ACTING_ROOM, AUDITOR, BUYER, MEDIATOR, OTHER_BUYER, SELLER, Stack, eventually

MIA = MEDIATOR
NOAH = "dev-mediator-noah"
SAM = "dev-senior-sam"


def _deadline(view: dict, kind: str) -> dict:
    return next(d for d in view["deadlines"] if d["kind"] == kind)


def _due(view: dict, kind: str) -> datetime:
    return datetime.fromisoformat(_deadline(view, kind)["due_at"])


async def _escalated(stack: Stack, *, amount: int = 10_000, paid: int = 10_000, concern: str | None = None,
                     kind: str = "refund_only") -> tuple[str, str, dict]:
    order_id = await stack.register_order(amount=paid)
    dispute_id = (await stack.open_dispute(order_id, amount=amount, kind=kind))["dispute_id"]
    await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "Item left us in perfect condition"})
    body = {"reason": "Seller ignores clear photos of the defect"}
    if concern:
        body["urgent_concern"] = concern
    view = await stack.act(dispute_id, "buyer-escalate", BUYER, body)
    return order_id, dispute_id, view


async def _problem(stack: Stack, path: str, token: str, body: dict, status: int) -> dict:
    response = await stack.call("POST", path, token, body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


async def test_escalation_opens_the_mediator_slas_in_working_days(stack: Stack) -> None:
    _, dispute_id, view = await _escalated(stack)
    assert view["state"] == "PLATFORM_INTERVENING"
    intervention = view["intervention"]
    assert intervention["escalated_by"] == "buyer" and intervention["mediator_id"] is None
    assert intervention["urgent"] is False and intervention["flagged"] is False
    escalated_at = datetime.fromisoformat(intervention["escalated_at"])
    policy = stack.services.policy
    assert _due(view, "mediator_take") == policy.due_at(escalated_at, Window.working(2))
    assert _due(view, "mediator_rule") == policy.due_at(escalated_at, Window.working(7))
    # Two working days always span at least two calendar days, more across a weekend.
    assert _due(view, "mediator_take") - escalated_at >= timedelta(days=2)
    assert _deadline(view, "mediator_take")["party_id"] == "mediator-queue"
    assert view["allowed_actions"] == {"buyer": ["party_submit_evidence", "buyer_withdraw"],
                                       "seller": ["party_submit_evidence"], "mediator": ["mediator_take"]}

    async def notified() -> set:
        return {(m.recipient_role, m.recipient_id) for m in stack.services.notifications.for_dispute(dispute_id)
                if m.data.get("event") == "buyer_escalated"}

    # The change's messages are written together, after the answer.
    assert await eventually(notified, what="the escalation's messages") == {
        ("buyer", "alice"), ("seller", "acme"), ("mediator", "mediator-queue")}


async def test_urgent_concern_gets_the_two_hour_take_sla(stack: Stack) -> None:
    _, _, view = await _escalated(stack, concern="personal_injury")
    escalated_at = datetime.fromisoformat(view["intervention"]["escalated_at"])
    assert view["intervention"]["urgent"] is True
    assert _due(view, "mediator_take") - escalated_at == timedelta(hours=2)


async def test_queue_orders_by_sla_and_filters(stack: Stack) -> None:
    _, normal, _ = await _escalated(stack)
    _, urgent, _ = await _escalated(stack, concern="counterfeit")

    async def queue(query: str = "") -> list[str]:
        return [d["dispute_id"] for d in (await stack.ok("GET", f"/mediation/queue{query}", MIA))["items"]]

    await eventually(lambda: _has(queue(), {normal, urgent}), what="both cases queued")
    order = await queue()
    assert order.index(urgent) < order.index(normal), "the 2-hour SLA comes first"
    assert urgent in await queue("?urgent=true") and normal not in await queue("?urgent=true")
    assert (await stack.call("GET", "/mediation/queue", BUYER)).status_code == 403
    await stack.act(urgent, "mediator-take", MIA)
    await eventually(lambda: _lacks(queue(), urgent), what="taken case leaves the queue")
    await eventually(lambda: _listed(stack, "/disputes?mediator_id=mia&state=PLATFORM_INTERVENING", urgent),
                     what="mediator filter")


async def _has(found, expected: set[str]) -> bool:
    return expected <= set(await found)


async def _lacks(found, dispute_id: str) -> bool:
    return dispute_id not in await found


async def _listed(stack: Stack, path: str, dispute_id: str) -> bool:
    return dispute_id in {d["dispute_id"] for d in (await stack.ok("GET", path, MIA))["items"]}


async def test_two_mediators_take_at_once_and_one_wins(stack: Stack) -> None:
    _, dispute_id, _ = await _escalated(stack)
    first, second = await asyncio.gather(
        stack.call("POST", f"/disputes/{dispute_id}/mediator-take", MIA, {}),
        stack.call("POST", f"/disputes/{dispute_id}/mediator-take", NOAH, {}),
    )
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [200, 409], (first.text, second.text)
    loser = first if first.status_code == 409 else second
    assert loser.headers["content-type"] == "application/problem+json"
    assert "mediator_take is not possible" in loser.json()["detail"]
    winner = (first if first.status_code == 200 else second).json()
    view = await stack.dispute(dispute_id)
    assert view["intervention"]["mediator_id"] == winner["intervention"]["mediator_id"]
    # The loser is told who won.
    assert loser.json()["taken_by"] == winner["intervention"]["mediator_id"]
    assert f"mediator {winner['intervention']['mediator_id']} has already taken" in loser.json()["detail"]
    assert [e["kind"] for e in view["events"]].count("mediator_took") == 1
    assert "mediator_take" not in [d["kind"] for d in view["deadlines"]]
    assert _deadline(view, "mediator_rule")["party_id"] == view["intervention"]["mediator_id"]


async def test_only_the_assigned_mediator_or_a_senior_acts(stack: Stack) -> None:
    _, dispute_id, _ = await _escalated(stack)
    path = f"/disputes/{dispute_id}"
    await _problem(stack, f"{path}/mediator-take", BUYER, {}, 403)
    await stack.act(dispute_id, "mediator-take", MIA)
    ruling = {"decision": "reject", "rationale": "No defect shown"}
    denied = await _problem(stack, f"{path}/mediator-rule", NOAH, ruling, 403)
    assert "assigned to mediator mia" in denied["detail"]
    await _problem(stack, f"{path}/mediator-request-evidence", NOAH, {"party": "buyer", "request": "x"}, 403)
    # Handing over: to a known mediator only; then the new one acts and the old one may not.
    unknown = await _problem(stack, f"{path}/mediator-hand-over", MIA, {"to_mediator_id": "ghost", "reason": "x"}, 422)
    assert unknown["type"] == "/problems/unknown-mediator"
    handed = await stack.act(dispute_id, "mediator-hand-over", MIA, {"to_mediator_id": "noah", "reason": "Leave"})
    assert handed["intervention"]["mediator_id"] == "noah"
    assert _deadline(handed, "mediator_rule")["party_id"] == "noah"
    await _problem(stack, f"{path}/mediator-rule", MIA, ruling, 403)
    # A senior may step in on any case.
    await stack.act(dispute_id, "mediator-request-evidence", SAM, {"party": "seller", "request": "Dispatch photos"})
    # Parties of other cases see nothing; auditors see everything.
    assert (await stack.call("GET", path, OTHER_BUYER)).status_code == 403
    view = await stack.ok("GET", path, AUDITOR)
    assert view["intervention"]["evidence_requests"][0]["requested_by"] == "sam"


async def test_evidence_requests_answers_and_the_sellers_shorter_window(stack: Stack) -> None:
    _, dispute_id, _ = await _escalated(stack)
    await stack.act(dispute_id, "mediator-take", MIA)
    requested = await stack.act(dispute_id, "mediator-request-evidence", MIA,
                                {"party": "buyer", "request": "A video of the leak, please"})
    buyer_deadline = _deadline(requested, "buyer_evidence")
    assert (buyer_deadline["role"], buyer_deadline["party_id"]) == ("buyer", "alice")
    assert _due(requested, "buyer_evidence") - datetime.fromisoformat(buyer_deadline["set_at"]) == timedelta(days=3)
    again = await _problem(stack, f"/disputes/{dispute_id}/mediator-request-evidence", MIA,
                           {"party": "buyer", "request": "More"}, 409)
    assert "already open" in again["detail"]
    attachment = {"url": "https://files.example/leak.mp4", "sha256": "a" * 64, "media_type": "video/mp4"}
    answered = await stack.act(dispute_id, "party-submit-evidence", BUYER,
                               {"text": "Video attached", "attachments": [attachment]})
    assert "buyer_evidence" not in [d["kind"] for d in answered["deadlines"]]
    assert answered["intervention"]["evidence_requests"][0]["status"] == "answered"
    assert answered["intervention"]["evidence"][0]["attachments"] == [attachment]
    seller_asked = await stack.act(dispute_id, "mediator-request-evidence", MIA,
                                   {"party": "seller", "request": "Your dispatch photos"})
    seller_deadline = _deadline(seller_asked, "seller_evidence")
    assert (_due(seller_asked, "seller_evidence") - datetime.fromisoformat(seller_deadline["set_at"])
            == timedelta(hours=24)), "once the buyer has submitted, the seller gets 24 h"
    bad = await _problem(stack, f"/disputes/{dispute_id}/party-submit-evidence", SELLER,
                         {"text": "x", "attachments": [{"url": "https://x", "sha256": "not-a-hash"}]}, 422)
    assert bad["errors"][0]["location"][:3] == ["body", "attachments", "0"]


async def test_an_overdue_evidence_request_is_recorded_and_the_case_proceeds(stack: Stack) -> None:
    stack.set_windows(evidence_response=Window.seconds(2))
    order_id, dispute_id, _ = await _escalated(stack, amount=6_000)
    await stack.act(dispute_id, "mediator-take", MIA)
    await stack.act(dispute_id, "mediator-request-evidence", MIA, {"party": "seller", "request": "Photos"})

    async def missed():
        view = await stack.dispute(dispute_id)
        return view if view["events"][-1]["kind"] == "evidence_missed" else None

    view = await eventually(missed, what="the evidence request to lapse")
    assert view["events"][-1]["timer"] == "seller_evidence"
    assert view["intervention"]["evidence_requests"][0]["status"] == "missed"
    assert view["state"] == "PLATFORM_INTERVENING"
    ruled = await stack.act(dispute_id, "mediator-rule", MIA,
                            {"decision": "full_refund", "rationale": "The seller sent no evidence"})
    assert ruled["state"] == "SUCCESS"
    assert stack.money(order_id) == {"escrow": 0, "escrow_pending": 0, "buyer_refunds": 6_000,
                                     "seller_released": 4_000}


async def test_extending_a_deadline_replaces_its_timer(stack: Stack) -> None:
    stack.set_windows(evidence_response=Window.seconds(ACTING_ROOM))
    _, dispute_id, _ = await _escalated(stack)
    await stack.act(dispute_id, "mediator-take", MIA)
    requested = await stack.act(dispute_id, "mediator-request-evidence", MIA, {"party": "buyer", "request": "x"})
    old_due = _due(requested, "buyer_evidence")
    new_due = old_due + timedelta(hours=1)
    too_early = await _problem(stack, f"/disputes/{dispute_id}/mediator-extend-deadline", MIA,
                               {"deadline": "buyer_evidence", "until": old_due.isoformat(), "reason": "x"}, 422)
    assert "after the current due time" in too_early["detail"]
    await _problem(stack, f"/disputes/{dispute_id}/mediator-extend-deadline", MIA,
                   {"deadline": "mediator_rule", "until": new_due.isoformat(), "reason": "x"}, 422)
    extended = await stack.act(dispute_id, "mediator-extend-deadline", MIA, {
        "deadline": "buyer_evidence", "until": new_due.isoformat(), "reason": "Courier strike"})
    assert _due(extended, "buyer_evidence") == new_due
    assert extended["events"][-1]["details"]["reason"] == "Courier strike"

    async def old_deadline_passed() -> bool:
        return datetime.now(old_due.tzinfo) > old_due + timedelta(seconds=2)

    await eventually(old_deadline_passed, what="the original due time to pass")
    view = await stack.dispute(dispute_id)
    assert "evidence_missed" not in [e["kind"] for e in view["events"]], "the replaced timer must not fire"
    assert _due(view, "buyer_evidence") == new_due


async def test_rulings_move_the_money(stack: Stack) -> None:
    cases = [
        ({"decision": "full_refund", "rationale": "Defect proven"}, "SUCCESS", 8_000, 2_000),
        ({"decision": "partial_refund", "rationale": "Minor defect",
          "amount": {"amount": 3_000, "currency": "CNY"}}, "SUCCESS", 3_000, 7_000),
        ({"decision": "reject", "rationale": "No defect"}, "CLOSED", 0, 10_000),
    ]
    for ruling, state, refund, released in cases:
        order_id, dispute_id, _ = await _escalated(stack, amount=8_000)
        await stack.act(dispute_id, "mediator-take", MIA)
        ruled = await stack.act(dispute_id, "mediator-rule", MIA, ruling)
        assert ruled["state"] == state
        assert ruled["resolution"]["decided_by"]["party_id"] == "mia"
        assert ruled["intervention"]["rulings"][0]["rationale"] == ruling["rationale"]
        assert sorted(d["kind"] for d in ruled["deadlines"]) == ["buyer_appeal", "seller_appeal"]
        assert stack.money(order_id) == {"escrow": 0, "escrow_pending": 0, "buyer_refunds": refund,
                                         "seller_released": released}
    _, dispute_id, _ = await _escalated(stack, amount=8_000)
    await stack.act(dispute_id, "mediator-take", MIA)
    path = f"/disputes/{dispute_id}/mediator-rule"
    await _problem(stack, path, MIA, {"decision": "partial_refund", "rationale": "x"}, 422)
    over = await _problem(stack, path, MIA, {"decision": "partial_refund", "rationale": "x",
                                             "amount": {"amount": 8_001, "currency": "CNY"}}, 422)
    assert "at most the requested" in over["detail"]
    await _problem(stack, path, MIA, {"decision": "reject"}, 422)  # a rationale is required


async def test_refund_after_return_goes_back_to_the_return_stage(stack: Stack) -> None:
    stack.set_windows(seller_confirm_return=Window.seconds(2))
    order_id, dispute_id, _ = await _escalated(stack, amount=10_000, kind="return_and_refund")
    await stack.act(dispute_id, "mediator-take", MIA)
    missing = await _problem(stack, f"/disputes/{dispute_id}/mediator-rule", MIA,
                             {"decision": "refund_after_return", "rationale": "Return it"}, 422)
    assert "return address" in missing["detail"]
    ruled = await stack.act(dispute_id, "mediator-rule", MIA, {
        "decision": "refund_after_return", "rationale": "Return it for a full refund",
        "return_address": "Returns desk, 1 Warehouse Rd"})
    assert ruled["state"] == "WAIT_BUYER_RETURN_GOODS"
    assert _due(ruled, "buyer_return_shipment") - datetime.fromisoformat(
        _deadline(ruled, "buyer_return_shipment")["set_at"]) == timedelta(days=7)
    await stack.act(dispute_id, "buyer-ship-return", BUYER, {"carrier": "SF", "tracking_number": "SF00112233"})
    closed = await stack.wait_for_state(dispute_id, "SUCCESS")
    assert closed["resolution"]["timer"] == "seller_confirm_return"
    assert stack.money(order_id)["buyer_refunds"] == 10_000


async def test_seller_reports_a_bad_return_and_the_platform_intervenes(stack: Stack) -> None:
    order_id = await stack.register_order(amount=5_000)
    dispute_id = (await stack.open_dispute(order_id, kind="return_and_refund", amount=5_000))["dispute_id"]
    await stack.act(dispute_id, "seller-agree-return", SELLER, {"return_address": "Desk"})
    await stack.act(dispute_id, "buyer-ship-return", BUYER, {"carrier": "SF", "tracking_number": "SF55667788"})
    view = await stack.act(dispute_id, "seller-report-return-problem", SELLER,
                           {"problem": "different", "description": "A brick arrived, not the kettle"})
    assert view["state"] == "PLATFORM_INTERVENING"
    assert view["intervention"]["escalated_by"] == "seller"
    assert "different" in view["intervention"]["reason"]
    assert stack.money(order_id)["escrow_pending"] == 5_000, "the escrow stays frozen"


async def test_a_missed_take_sla_flags_the_case_for_a_senior(stack: Stack) -> None:
    # The senior queue's take SLA lapses again at every window: room to look between breaches.
    stack.set_windows(mediator_take=Window.seconds(ACTING_ROOM))
    _, dispute_id, _ = await _escalated(stack)

    async def breached():
        view = await stack.dispute(dispute_id)
        return view if view["intervention"]["flagged"] else None

    view = await eventually(breached, what="the take SLA to lapse")
    assert view["intervention"]["sla_breaches"] == ["mediator_take"]
    assert view["intervention"]["needs_senior"] is True
    assert view["events"][-1]["kind"] == "sla_breached" and view["events"][-1]["timer"] == "mediator_take"
    assert _deadline(view, "mediator_take")["party_id"] == "senior-queue"
    async def senior_notified() -> bool:
        return any(m.recipient_id == "senior-queue" for m in stack.services.notifications.for_dispute(dispute_id))

    await eventually(senior_notified, what="the senior queue to be notified")
    await eventually(lambda: _listed(stack, "/mediation/queue?needs_senior=true", dispute_id), what="senior queue")
    refused = await _problem(stack, f"/disputes/{dispute_id}/mediator-take", MIA, {}, 403)
    assert "senior" in refused["detail"]
    taken = await stack.act(dispute_id, "mediator-take", SAM)
    assert taken["intervention"]["mediator_id"] == "sam"


async def test_a_missed_ruling_sla_returns_the_case_to_the_senior_queue(stack: Stack) -> None:
    stack.set_windows(mediator_rule=Window.seconds(ACTING_ROOM))
    _, dispute_id, _ = await _escalated(stack)
    await stack.act(dispute_id, "mediator-take", MIA)

    async def breached():
        view = await stack.dispute(dispute_id)
        return view if view["intervention"]["sla_breaches"] == ["mediator_rule"] else None

    view = await eventually(breached, what="the ruling SLA to lapse")
    assert view["intervention"]["mediator_id"] is None and view["intervention"]["needs_senior"] is True
    await _problem(stack, f"/disputes/{dispute_id}/mediator-rule", MIA, {"decision": "reject", "rationale": "x"}, 409)
    await stack.act(dispute_id, "mediator-take", SAM)
    ruled = await stack.act(dispute_id, "mediator-rule", SAM, {"decision": "reject", "rationale": "No defect"})
    assert ruled["state"] == "CLOSED"


async def test_appeal_goes_to_a_different_senior_whose_ruling_is_final(stack: Stack) -> None:
    order_id, dispute_id, _ = await _escalated(stack, amount=10_000)
    await stack.act(dispute_id, "mediator-take", MIA)
    await stack.act(dispute_id, "mediator-rule", MIA, {"decision": "reject", "rationale": "Photos unclear"})
    assert stack.money(order_id)["seller_released"] == 10_000
    appealed = await stack.act(dispute_id, "party-appeal", BUYER, {
        "reason": "The ruling ignored the lab report", "new_information": "Independent lab report attached"})
    assert appealed["state"] == "PLATFORM_INTERVENING"
    assert appealed["intervention"]["appeal"]["party_id"] == "alice"
    assert appealed["intervention"]["needs_senior"] is True
    await _problem(stack, f"/disputes/{dispute_id}/party-appeal", SELLER,
                   {"reason": "x", "new_information": "y"}, 409)
    await _problem(stack, f"/disputes/{dispute_id}/mediator-take", NOAH, {}, 403)
    taken = await stack.act(dispute_id, "mediator-take", SAM)
    assert taken["intervention"]["mediator_id"] == "sam"
    await _problem(stack, f"/disputes/{dispute_id}/mediator-rule", SAM,
                   {"decision": "refund_after_return", "rationale": "x", "return_address": "y"}, 422)
    final = await stack.act(dispute_id, "mediator-rule", SAM, {"decision": "full_refund",
                                                              "rationale": "The lab report proves the defect"})
    assert final["state"] == "SUCCESS"
    assert final["deadlines"] == [] and final["allowed_actions"] == {}
    assert [r["on_appeal"] for r in final["intervention"]["rulings"]] == [False, True]
    # The escrow went to the seller at the first ruling; the final ruling takes it back from the seller.
    transfers = stack.services.ledger.transfers(dispute_id=dispute_id)
    adjustment = next(t for t in transfers if t.code == "appeal_adjustment")
    assert (adjustment.debit_account_id, adjustment.credit_account_id, adjustment.amount) == (
        "seller:acme:CNY", "buyer:alice:CNY", 10_000)
    assert final["refunded"] == {"amount": 10_000, "currency": "CNY"}
    await stack.wait_for_state(dispute_id, "SUCCESS")
    handle = stack.services.temporal.get_workflow_handle(dispute_id)
    await eventually(lambda: _completed(handle), what="the workflow to finish after the final ruling")


async def _completed(handle) -> bool:
    from temporalio.client import WorkflowExecutionStatus

    return (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_an_unused_appeal_window_makes_the_ruling_final(stack: Stack) -> None:
    stack.set_windows(appeal=Window.seconds(ACTING_ROOM))
    order_id, dispute_id, _ = await _escalated(stack)
    await stack.act(dispute_id, "mediator-take", MIA)
    ruled = await stack.act(dispute_id, "mediator-rule", MIA, {"decision": "full_refund", "rationale": "Proven"})
    assert (await stack.ok("GET", f"/orders/{order_id}", BUYER))["open_dispute_id"] == dispute_id, \
        "the order stays locked while the ruling may be appealed"
    handle = stack.services.temporal.get_workflow_handle(dispute_id)
    await eventually(lambda: _completed(handle), what="the appeal window to close")
    view = await stack.dispute(dispute_id)
    assert view["events"][-1]["kind"] == "appeal_window_closed"
    assert ruled["refunded"]["amount"] == 10_000
    assert (await stack.ok("GET", f"/orders/{order_id}", BUYER))["open_dispute_id"] is None

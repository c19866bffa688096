"""Sequences a careless or hostile client can walk that no other test walks: each ends with
the money, the case and the read models as a user would check them."""

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

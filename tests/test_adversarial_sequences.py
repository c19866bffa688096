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

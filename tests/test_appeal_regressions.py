"""Appeal cases the money property test (test_money_properties.py) ran into."""

import asyncio
import threading

from ledger import Ledger, TransferRequest, accounts
from tests.support import BUYER, MEDIATOR, PLATFORM, SELLER, Stack, eventually

SAM = "dev-senior-sam"
SUE = "dev-senior-sue"  # conftest.SECOND_SENIOR, in any_stack's tokens


async def _appealed(stack: Stack, currency: str, first_mediator: str) -> tuple[str, str]:
    """A case ruled `reject` by `first_mediator`, then appealed by the buyer."""
    order_id = await stack.register_order(amount=10_000, currency=currency)
    dispute_id = (await stack.open_dispute(order_id, amount=10_000, currency=currency))["dispute_id"]
    await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "Nothing wrong with it"})
    await stack.act(dispute_id, "buyer-escalate", BUYER, {"reason": "Please step in"})
    await stack.act(dispute_id, "mediator-take", first_mediator)
    await stack.act(dispute_id, "mediator-rule", first_mediator, {"decision": "reject", "rationale": "No proof"})
    await stack.act(dispute_id, "party-appeal", BUYER, {"reason": "The photos were ignored",
                                                        "new_information": "The courier's damage report"})
    return order_id, dispute_id


async def test_an_advance_ordered_on_appeal_never_stays_outstanding(stack: Stack) -> None:
    """The first ruling already moved the money and the final ruling moves only the difference:
    an advance paid during the appeal must not outlive the case (pending on the fund, or kept
    by the buyer on top of the refund). Either it is refused, or the case settles it."""
    currency = "MYR"
    await stack.ok("POST", "/guarantee-fund/top-ups", PLATFORM,
                   {"amount": {"amount": 50_000, "currency": currency}, "reference": "myr-appeal-1"}, status=201)
    fund_id, buyer_id = accounts.guarantee_fund(currency), accounts.buyer("alice", currency)
    fund_before = stack.services.ledger.account(fund_id)
    order_id, dispute_id = await _appealed(stack, currency, MEDIATOR)
    await stack.act(dispute_id, "mediator-take", SAM)
    buyer_before = stack.services.ledger.account(buyer_id)
    ordered = await stack.call("POST", f"/disputes/{dispute_id}/mediator-order-advance", SAM, {
        "amount": {"amount": 4_000, "currency": currency}, "rationale": "Defect shown",
        "buyer_in_good_faith": True, "return_goods": False})
    if ordered.status_code != 200:
        assert ordered.status_code in (409, 422) and ordered.headers["content-type"] == "application/problem+json"
        assert stack.services.ledger.account(fund_id) == fund_before, "a refused advance moves nothing"
    final = await stack.act(dispute_id, "mediator-rule", SAM, {"decision": "full_refund", "rationale": "On appeal"})
    assert final["state"] == "SUCCESS" and final["refunded"]["amount"] == 10_000
    await asyncio.wait_for(stack.services.temporal.get_workflow_handle(dispute_id).result(), timeout=30)
    fund = stack.services.ledger.account(fund_id)
    assert (fund.balance, fund.debits_pending) == (fund_before.balance, fund_before.debits_pending), \
        "every advance is recovered or returned by the end of the case"
    buyer = stack.services.ledger.account(buyer_id)
    assert (buyer.balance - buyer_before.balance, buyer.credits_pending - buyer_before.credits_pending) == (10_000, 0), \
        "the buyer ends with the final refund, nothing more and nothing held"
    assert final["advance"] is None or final["advance"]["status"] != "outstanding"
    assert stack.services.ledger.check_invariants() == []


async def test_the_mediator_of_the_appealed_ruling_may_not_decide_the_appeal(any_stack: Stack) -> None:
    """A senior whose ruling is appealed may not take the appeal, nor act on it once another
    senior has it: not rule, not order an advance, not ask for evidence."""
    stack = any_stack
    _, dispute_id = await _appealed(stack, "CNY", SAM)
    path = f"/disputes/{dispute_id}"
    assert (await stack.call("POST", f"{path}/mediator-take", SAM, {})).status_code == 403
    await stack.act(dispute_id, "mediator-take", SUE)
    for action, body in (
        ("mediator-rule", {"decision": "reject", "rationale": "I stand by my ruling"}),
        ("mediator-request-evidence", {"party": "buyer", "request": "More photos"}),
        ("mediator-hand-over", {"to_mediator_id": "mia", "reason": "Workload"}),
    ):
        refused = await stack.call("POST", f"{path}/{action}", SAM, body)
        assert refused.status_code == 403, (action, refused.text)
        assert "appealed ruling" in refused.json()["detail"]
    view = await stack.dispute(dispute_id)
    assert [r["mediator_id"] for r in view["intervention"]["rulings"]] == ["sam"]
    assert view["intervention"]["mediator_id"] == "sue" and view["intervention"]["evidence_requests"] == []
    final = await stack.act(dispute_id, "mediator-rule", SUE, {"decision": "full_refund", "rationale": "On appeal"})
    assert [r["mediator_id"] for r in final["intervention"]["rulings"]] == ["sam", "sue"]


class LedgerThatHoldsABatch(Ledger):
    """Holds the batch containing transfer `hold` until `release` is set, as a slow or
    unreachable database would: the settlement activity stays in flight meanwhile."""

    def __init__(self, engine):  # noqa: ANN001
        super().__init__(engine)
        self.hold: str | None = None
        self.held = threading.Event()
        self.release = threading.Event()

    def create_transfers(self, requests: list[TransferRequest]):  # noqa: ANN201
        if any(r.id == self.hold for r in requests):
            self.held.set()
            assert self.release.wait(timeout=60)
        return super().create_transfers(requests)


async def test_an_appeal_while_the_ruling_is_still_settling_moves_the_difference_once(stack: Stack) -> None:
    """The buyer appeals while the first ruling's settlement is still in flight. The case must
    neither break nor pay twice: the buyer ends with the final ruling's refund, exactly."""
    ledger = LedgerThatHoldsABatch(stack.services.engine)
    await stack.stop_worker()
    await stack.start_worker(ledger=ledger)
    order_id = await stack.register_order(amount=10_000)
    dispute_id = (await stack.open_dispute(order_id, amount=10_000))["dispute_id"]
    ledger.hold = f"{dispute_id}-release"
    buyer_id, seller_id = accounts.buyer("alice", "CNY"), accounts.seller("acme", "CNY")
    buyer_before, seller_before = (stack.services.ledger.account(a).balance for a in (buyer_id, seller_id))
    await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "Nothing wrong with it"})
    await stack.act(dispute_id, "buyer-escalate", BUYER, {"reason": "Please step in"})
    await stack.act(dispute_id, "mediator-take", MEDIATOR)
    path = f"/disputes/{dispute_id}"
    ruling = asyncio.create_task(stack.call("POST", f"{path}/mediator-rule", MEDIATOR, {
        "decision": "partial_refund", "amount": {"amount": 4_000, "currency": "CNY"}, "rationale": "Partly"}))

    async def settling() -> bool:
        return ledger.held.is_set()

    await eventually(settling, what="the first ruling's settlement to start")
    appeal_body = {"reason": "Not enough", "new_information": "The repair quote"}
    appeal = asyncio.create_task(stack.call("POST", f"{path}/party-appeal", BUYER, appeal_body))

    async def appeal_answered_or_accepted() -> bool:
        return appeal.done() or (await stack.dispute(dispute_id))["state"] == "PLATFORM_INTERVENING"

    await eventually(appeal_answered_or_accepted, what="the appeal to be refused or accepted")
    ledger.release.set()
    assert (await ruling).status_code == 200, "the ruling settles"
    appealed = await appeal
    if appealed.status_code != 200:  # refused while the money moved: the buyer appeals again
        assert appealed.status_code == 409, appealed.text
        await stack.act(dispute_id, "party-appeal", BUYER, appeal_body)
    await stack.act(dispute_id, "mediator-take", SAM)
    final = await stack.act(dispute_id, "mediator-rule", SAM, {"decision": "full_refund", "rationale": "On appeal"})
    assert final["refunded"]["amount"] == 10_000
    await asyncio.wait_for(stack.services.temporal.get_workflow_handle(dispute_id).result(), timeout=30)
    buyer_after, seller_after = (stack.services.ledger.account(a).balance for a in (buyer_id, seller_id))
    assert (buyer_after - buyer_before, seller_after - seller_before) == (10_000, 0), \
        "the appeal moves the difference (6,000 CNY) once"
    assert stack.services.ledger.check_invariants() == []

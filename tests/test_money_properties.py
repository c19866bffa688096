"""Whatever the parties, the mediators and the clocks do to a case, the money adds up.

Hypothesis drives random cases through the real workflow on the Temporal dev server, over
the HTTP API, on SQLite and on PostgreSQL. Each example registers a fresh order, opens a
dispute and applies up to MAX_INTENTS intents in order: first those of a route into the
deeper stages (intervention, advance payment, appeal, a disputed return), then mostly one
of the actions the case offers right now (with random amounts and choices), sometimes any
action at all (which the case may refuse: a 4xx problem, skipped; a 5xx fails the test),
sometimes "let the current deadline lapse" (every window is a second or two), now and
then two intents sent at once. Then the case is brought to its end
(deadlines lapse; an intervention is taken and ruled; the appeal window closes), and once
its workflow has completed the ledger must balance to the minor unit:

- the ledger's invariants hold (double entry, counters equal their transfers, floors);
- paid == what the buyer received net + what the seller received net;
- the guarantee fund is back where it was with nothing pending: every advance was
  recovered, returned or clawed back; no transfer of the dispute is still pending;
- the order's escrow is empty with nothing held, and the order takes disputes again;
- the dispute's `refunded` is exactly what the ledger gave the buyer for it.

Each example has a buyer and a seller of its own (tokens added to the stack's settings), so
their balances are checked absolutely; the guarantee fund is shared by the examples of a
test (one currency, used by no other test) and is compared before and after. An example
that stops half-way (a failure, or Hypothesis abandoning it while shrinking) terminates its
workflow, so no timer of it moves money during the next example.
"""

import asyncio
import contextlib
import os
import uuid
from dataclasses import dataclass

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from temporalio.service import RPCError

from ledger import accounts
from tests.dispute_moves import (
    DECISIONS,
    KINDS,
    REASONS,
    TERMINAL,
    WINDOWS,
    Intent,
    Parties,
    apply,
    intents,
    lapse,
    money,
    routes,
)
from tests.support import PLATFORM, Stack

CURRENCY = "HKD"
MAX_INTENTS = 8
# Examples per backend; raise it for a longer hunt (each example takes a few seconds).
EXAMPLES = int(os.environ.get("DISPUTEFLOW_PROPERTY_EXAMPLES", "12"))


@dataclass(frozen=True)
class Case:
    paid: int
    shipped: bool
    kind: str
    reason: str
    requested: int
    # The escrow was paid out to the seller before the dispute: refunds and advance
    # recoveries then come from the seller's balance.
    completed_first: bool
    # The policy pays advances as a pending hold (True) or at once (False).
    two_phase: bool


@st.composite
def cases(draw: st.DrawFn) -> Case:
    paid = draw(st.integers(100, 100_000), label="paid")
    shipped = draw(st.booleans(), label="shipped")
    return Case(
        paid=paid,
        shipped=shipped,
        kind=draw(st.sampled_from(KINDS if shipped else KINDS[:1]), label="kind"),
        reason=draw(st.sampled_from(REASONS), label="reason"),
        requested=draw(st.integers(1, paid), label="requested"),
        completed_first=draw(st.integers(0, 3), label="completed_first") == 3,
        two_phase=draw(st.booleans(), label="two_phase"),
    )


async def _bring_to_an_end(stack: Stack, dispute_id: str, ruling: Intent, parties: Parties) -> dict:
    """Lapse what lapses; during intervention a mediator takes the case and rules. Then wait
    for the workflow to complete and return its final view."""
    for _ in range(25):
        view = await stack.dispute(dispute_id)
        if view["state"] in TERMINAL and not view["deadlines"]:
            break
        if view["state"] == "PLATFORM_INTERVENING":
            # Races with the SLA timers are refused and the loop looks again.
            take = Intent("mediator_take") if view["intervention"]["mediator_id"] is None else ruling
            await apply(stack, dispute_id, take, view, parties)
        else:
            await lapse(stack, dispute_id, view)
    else:
        raise AssertionError(f"{dispute_id} did not come to an end: {view['state']}, {view['deadlines']}")
    handle = stack.services.temporal.get_workflow_handle(dispute_id)
    await asyncio.wait_for(handle.result(), timeout=30)
    return await stack.dispute(dispute_id)


def _fund(stack: Stack) -> tuple[int, int]:
    fund = stack.services.ledger.account(accounts.guarantee_fund(CURRENCY))
    return fund.balance, fund.debits_pending


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(case=cases(), data=st.data())
async def test_the_money_adds_up_whatever_happens(any_stack: Stack, case: Case, data: st.DataObject) -> None:
    stack = any_stack
    stack.services.policy = stack.services.policy.model_copy(
        update=WINDOWS | {"advance_payment_two_phase": case.two_phase})
    parties = Parties.fresh(stack)
    await stack.ok("POST", "/guarantee-fund/top-ups", PLATFORM,
                   {"amount": money(10 * case.paid, CURRENCY), "reference": f"prop-{uuid.uuid4().hex[:12]}"}, status=201)
    fund_before = _fund(stack)
    order_id = await stack.register_order(amount=case.paid, currency=CURRENCY, shipped=case.shipped,
                                          buyer=parties.buyer, seller=parties.seller)
    if case.completed_first:
        await stack.ok("POST", f"/orders/{order_id}/complete", PLATFORM)
    dispute_id = (await stack.open_dispute(order_id, kind=case.kind, amount=case.requested, reason=case.reason,
                                           currency=CURRENCY, token=parties.buyer_token))["dispute_id"]
    try:
        final = await _play(stack, dispute_id, parties, data)
    except BaseException:
        # Whatever stopped the example, its clocks must not move money during the next one.
        with contextlib.suppress(RPCError):  # it may have completed already
            await stack.services.temporal.get_workflow_handle(dispute_id).terminate("example stopped")
        raise

    ledger = stack.services.ledger
    assert ledger.check_invariants() == []
    buyer = ledger.account(accounts.buyer(parties.buyer, CURRENCY))
    seller = ledger.account(accounts.seller(parties.seller, CURRENCY))
    escrow = ledger.account(accounts.escrow(order_id, CURRENCY))
    refunded = final["refunded"]["amount"]
    # Conservation: the order's payment ends with the buyer or the seller, to the minor unit,
    # and nothing is held for either of them any more.
    assert (buyer.balance, seller.balance) == (refunded, case.paid - refunded)
    assert buyer.balance + seller.balance == case.paid
    assert (buyer.debits_pending, buyer.credits_pending, seller.debits_pending, seller.credits_pending) == (0,) * 4
    assert (escrow.balance, escrow.debits_pending, escrow.credits_pending) == (0, 0, 0)
    # The fund is whole again and holds nothing for anyone: every advance was recovered,
    # returned or clawed back.
    assert _fund(stack) == fund_before
    fund = await stack.ok("GET", f"/guarantee-fund/{CURRENCY}", PLATFORM)
    assert fund["outstanding_advances"]["amount"] == 0
    transfers = ledger.transfers(dispute_id=dispute_id)
    assert [t.id for t in transfers if t.phase == "pending" and t.pending_status == "pending"] == []
    # Every movement of the order's money is its payment, its completion, or a step of the dispute.
    assert {t.order_id for t in transfers} <= {order_id}
    assert [t.id for t in ledger.transfers(order_id=order_id)
            if (t.code, t.step) not in (("payment", "order_registered"), ("release", "order_completed"))
            and not (t.dispute_id == dispute_id and t.step)] == []
    # What the case says the buyer got is what the ledger gave the buyer for it.
    posted = [t for t in transfers if t.phase in ("single", "post_pending")]
    given_to_buyer = (sum(t.amount for t in posted if t.credit_account_id == buyer.id)
                      - sum(t.amount for t in posted if t.debit_account_id == buyer.id))
    assert given_to_buyer == refunded
    assert 0 <= refunded <= final["request"]["amount"]["amount"] <= case.paid
    resolution = final["resolution"]
    assert resolution["settled"] and resolution["refunded"] == final["refunded"]
    if not case.completed_first:
        assert resolution["released_to_seller"]["amount"] == case.paid - refunded
    if final["advance"] is not None:
        assert final["advance"]["status"] != "outstanding"
    order = await stack.ok("GET", f"/orders/{order_id}", PLATFORM)
    assert order["open_dispute_id"] is None
    # What the examples covered: pytest --hypothesis-show-statistics.
    event(f"closed {final['state']} by {resolution['timer'] or (resolution['decided_by'] or {}).get('role')}")
    event(f"advance {final['advance']['status'] if final['advance'] else 'none'}")
    for kind in {e["kind"] for e in final["events"]} & {"appealed", "sla_breached", "buyer_escalated",
                                                         "seller_reported_return_problem", "advance_refused"}:
        event(kind)


async def _play(stack: Stack, dispute_id: str, parties: Parties, data: st.DataObject) -> dict:
    """The route's intents, then random ones (now and then two at once), then the end."""
    route = data.draw(routes(), label="route")
    for step in range(MAX_INTENTS):
        view = await stack.dispute(dispute_id)
        if step < len(route):
            await apply(stack, dispute_id, route[step], view, parties)
            continue
        if data.draw(st.booleans(), label="stop here"):
            break
        offered = sorted({a for actions in view["allowed_actions"].values() for a in actions})
        together = data.draw(st.integers(1, 2) if data.draw(st.integers(0, 4)) == 0 else st.just(1),
                             label="intents at once")
        batch = [data.draw(intents(offered), label=f"intent {step + 1}") for _ in range(together)]
        await asyncio.gather(*(apply(stack, dispute_id, intent, view, parties) for intent in batch))
    ruling = data.draw(st.sampled_from(DECISIONS[:3]).flatmap(
        lambda decision: st.builds(Intent, st.just("mediator_rule"), share=st.integers(1, 100),
                                   choice=st.just(decision))), label="final ruling, if one is needed")
    return await _bring_to_an_end(stack, dispute_id, ruling, parties)

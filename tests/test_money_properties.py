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
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from temporalio.service import RPCError

from config.settings import TokenGrant
from identity import Role
from ledger import accounts
from policy import Window
from tests.support import PLATFORM, Stack, eventually
from workflows.models import Action

CURRENCY = "HKD"
MAX_INTENTS = 8
# Examples per backend; raise it for a longer hunt (each example takes a few seconds).
EXAMPLES = int(os.environ.get("DISPUTEFLOW_PROPERTY_EXAMPLES", "12"))
MIA = "dev-mediator-mia"
SAM = "dev-senior-sam"
SUE = "dev-senior-sue"  # conftest.SECOND_SENIOR: hears the appeal of a ruling by sam
MEDIATOR_TOKENS = {"mia": MIA, "noah": "dev-mediator-noah", "sam": SAM, "sue": SUE}

# Every window of the life cycle, in seconds: long enough for a few actions in a row,
# short enough that letting one lapse costs little.
WINDOWS = {
    "seller_response_not_shipped": Window.seconds(1.5),
    "seller_response_shipped_refund_only": Window.seconds(1.5),
    "seller_response_return_and_refund": Window.seconds(1.5),
    "buyer_response_after_refusal": Window.seconds(1.5),
    "buyer_response_to_offer": Window.seconds(1.5),
    "buyer_return_shipment": Window.seconds(1.5),
    "seller_confirm_return": Window.seconds(1.5),
    "mediator_take": Window.seconds(2),
    "mediator_take_urgent": Window.seconds(1.5),
    "mediator_rule": Window.seconds(3),
    "evidence_response": Window.seconds(1.5),
    "evidence_response_after_buyer": Window.seconds(1),
    "appeal": Window.seconds(1.5),
}

KINDS = ("refund_only", "return_and_refund")
REASONS = ("quality", "not_received", "damaged", "not_as_described")
DECISIONS = ("full_refund", "partial_refund", "reject", "refund_after_return")
ALL_ACTIONS = tuple(a.value for a in Action)
_TERMINAL = ("SUCCESS", "CLOSED")


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


@dataclass(frozen=True)
class Parties:
    """The example's own buyer and seller, and their bearer tokens."""

    buyer: str
    seller: str

    @property
    def buyer_token(self) -> str:
        return f"prop-buyer-{self.buyer}"

    @property
    def seller_token(self) -> str:
        return f"prop-seller-{self.seller}"

    @classmethod
    def fresh(cls, stack: Stack) -> "Parties":
        suffix = uuid.uuid4().hex[:10]
        parties = cls(buyer=f"b-{suffix}", seller=f"s-{suffix}")
        stack.services.settings.tokens[parties.buyer_token] = TokenGrant(role=Role.BUYER, party_id=parties.buyer)
        stack.services.settings.tokens[parties.seller_token] = TokenGrant(role=Role.SELLER, party_id=parties.seller)
        return parties


@dataclass(frozen=True)
class Intent:
    action: str  # an Action value, or "lapse"
    # Percent of the current request (offers, advances, partial rulings) or of the paid
    # amount (revisions).
    share: int = 100
    # A ruling's decision, a party's role, a return problem, or a revision's "kind/reason".
    choice: str = ""
    # An advance's return_goods, an escalation's urgency.
    flag: bool = False


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


def _params(action: str) -> st.SearchStrategy[Intent]:
    choices = {
        "mediator_rule": st.sampled_from(DECISIONS),
        "party_submit_evidence": st.sampled_from(("buyer", "seller")),
        "party_appeal": st.sampled_from(("buyer", "seller")),
        "party_withdraw_appeal": st.sampled_from(("buyer", "seller")),
        "mediator_request_evidence": st.sampled_from(("buyer", "seller")),
        "seller_report_return_problem": st.sampled_from(("not_received", "damaged", "different")),
        "buyer_revise": st.tuples(st.sampled_from(KINDS), st.sampled_from(REASONS)).map("/".join),
    }.get(action, st.just(""))
    return st.builds(Intent, st.just(action), share=st.integers(1, 100), choice=choices, flag=st.booleans())


# Actions that take a case somewhere new (intervention, advances, returns, appeals) are
# offered more often than those that end it at once, so a dozen examples reach them.
_FORWARD = {"seller_refuse", "buyer_escalate", "mediator_take", "mediator_order_advance", "buyer_ship_return",
            "seller_report_return_problem", "party_appeal", "mediator_rule"}


@st.composite
def intents(draw: st.DrawFn, offered: list[str]) -> Intent:
    """Mostly an action the case offers now; sometimes a lapse; sometimes anything."""
    pick = draw(st.integers(0, 19))
    if pick < 14 and offered:
        weighted = [a for a in offered for _ in range(3 if a in _FORWARD else 1)]
        return draw(st.sampled_from(weighted).flatmap(_params))
    if pick < 18:
        return Intent("lapse")
    return draw(st.sampled_from(ALL_ACTIONS).flatmap(_params))


# Routes into the deeper stages, taken as the first intents of an example (each may still be
# refused: an advance on a not-as-described case, a return on a refund-only one).
_ESCALATE = ("seller_refuse", "buyer_escalate", "mediator_take")
ROUTES = {
    "negotiation": (),
    "intervention": _ESCALATE,
    "advance": (*_ESCALATE, "mediator_order_advance"),
    "advance, ruling, appeal": (*_ESCALATE, "mediator_order_advance", "mediator_rule", "party_appeal"),
    "ruling, appeal": (*_ESCALATE, "mediator_rule", "party_appeal"),
    "return problem": ("seller_agree_return", "buyer_ship_return", "seller_report_return_problem", "mediator_take"),
}
# Advances are the newest and most intricate money paths: their routes come up twice as often.
_ROUTE_CHOICES = [route for route in ROUTES for _ in range(2 if "advance" in route else 1)]


def routes() -> st.SearchStrategy[tuple[Intent, ...]]:
    return st.sampled_from(_ROUTE_CHOICES).flatmap(
        lambda route: st.tuples(*(_params(a) for a in ROUTES[route])))


def _money(amount: int) -> dict:
    return {"amount": amount, "currency": CURRENCY}


def _part(whole: int, share: int) -> int:
    return max(1, whole * share // 100)


def _assigned(view: dict) -> str:
    intervention = view["intervention"] or {}
    return MEDIATOR_TOKENS.get(intervention.get("mediator_id") or "", MIA)


def _taker(view: dict) -> str:
    intervention = view["intervention"] or {}
    if not intervention.get("needs_senior"):
        return MIA
    return SUE if intervention.get("excluded_mediator_id") == "sam" else SAM


def _request(intent: Intent, view: dict, parties: Parties) -> tuple[str, dict]:
    """The token and body of an action intent, given the case as it is now."""
    requested = view["request"]["amount"]["amount"]
    paid = view["order"]["paid"]["amount"]
    buyer, seller = parties.buyer_token, parties.seller_token
    party = buyer if intent.choice == "buyer" else seller
    match intent.action:
        case "seller_agree_refund" | "seller_confirm_return":
            return seller, {}
        case "seller_agree_return":
            return seller, {"return_address": "Returns desk, 1 Harbour Rd"}
        case "seller_refuse":
            return seller, {"reason": "The item left us in perfect condition"}
        case "seller_offer_partial":
            return seller, {"amount": _money(_part(requested, intent.share))}
        case "seller_report_return_problem":
            return seller, {"problem": intent.choice, "description": "Not what was sent"}
        case "buyer_accept_offer" | "buyer_refuse_offer":
            return buyer, {}
        case "buyer_revise":
            kind, reason = intent.choice.split("/")
            return buyer, {"request": {"kind": kind, "reason": reason, "amount": _money(_part(paid, intent.share)),
                                       "description": "Revised request", "evidence": []}}
        case "buyer_withdraw":
            return buyer, {"reason": "Sorted it out"}
        case "buyer_ship_return":
            return buyer, {"carrier": "SF Express", "tracking_number": "SF0000001"}
        case "buyer_escalate":
            return buyer, {"reason": "Please step in", **({"urgent_concern": "counterfeit"} if intent.flag else {})}
        case "party_submit_evidence":
            return party, {"text": "Photos attached"}
        case "party_appeal":
            return party, {"reason": "The ruling ignored my photos", "new_information": "The courier's report"}
        case "party_withdraw_appeal":  # by either party: only the appellant's is accepted
            return party, {"reason": "We settled it ourselves"}
        case "mediator_take":
            return _taker(view), {}
        case "mediator_request_evidence":
            return _assigned(view), {"party": intent.choice, "request": "Photos of the item, please"}
        case "mediator_extend_deadline":
            open_ = [d for d in view["deadlines"] if d["role"] in ("buyer", "seller")] or [
                {"kind": "buyer_evidence", "due_at": datetime.now(UTC).isoformat()}]
            until = datetime.fromisoformat(open_[0]["due_at"]) + timedelta(seconds=intent.share / 100)
            return _assigned(view), {"deadline": open_[0]["kind"], "until": until.isoformat(),
                                     "reason": "The courier is late"}
        case "mediator_hand_over":
            current = (view["intervention"] or {}).get("mediator_id")
            return _assigned(view), {"to_mediator_id": "mia" if current == "noah" else "noah",
                                     "reason": "Workload"}
        case "mediator_rule":
            body = {"decision": intent.choice, "rationale": "On the evidence submitted"}
            if intent.choice == "partial_refund":
                body["amount"] = _money(_part(requested, intent.share))
            if intent.choice == "refund_after_return":
                body["return_address"] = "Returns desk, 1 Harbour Rd"
            return _assigned(view), body
        case "mediator_order_advance":
            body = {"amount": _money(_part(requested, intent.share)), "rationale": "Defect shown, seller silent",
                    "buyer_in_good_faith": True, "return_goods": intent.flag}
            if intent.flag:
                body["return_address"] = "Returns desk, 1 Harbour Rd"
            return _assigned(view), body
    raise AssertionError(f"no request for {intent}")


async def _apply(stack: Stack, dispute_id: str, intent: Intent, view: dict, parties: Parties) -> None:
    if intent.action == "lapse":
        await _lapse(stack, dispute_id, view)
        return
    token, body = _request(intent, view, parties)
    response = await stack.call("POST", f"/disputes/{dispute_id}/{intent.action.replace('_', '-')}", token, body)
    assert response.status_code < 500, f"{intent} answered {response.status_code}: {response.text}"
    event(f"{intent.action} {'done' if response.status_code < 400 else 'refused'}")
    if response.status_code >= 400:
        # Refused by the case as it is now: skipped. Anything else is a bug in this test.
        assert response.status_code in (403, 409, 422), f"{intent}: {response.status_code} {response.text}"
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] != "/problems/invalid-request", f"{intent}: {response.text}"


def _settled(view: dict) -> bool:
    return view["state"] not in _TERMINAL or view["resolution"]["settled"]


async def _lapse(stack: Stack, dispute_id: str, view: dict) -> None:
    """Let the earliest deadline pass and wait until the case has acted on it."""
    if not view["deadlines"]:
        return
    due = min(datetime.fromisoformat(d["due_at"]) for d in view["deadlines"]).timestamp()
    # The view lists the newest events only; events_total counts them all.
    seen = view["events_total"]

    async def acted_on() -> dict | None:
        if time.time() <= due:
            return None
        now = await stack.dispute(dispute_id)
        return now if now["events_total"] > seen and _settled(now) else None

    await eventually(acted_on, timeout=max(due - time.time(), 0) + 20, what=f"{dispute_id}'s deadline to lapse")


async def _bring_to_an_end(stack: Stack, dispute_id: str, ruling: Intent, parties: Parties) -> dict:
    """Lapse what lapses; during intervention a mediator takes the case and rules. Then wait
    for the workflow to complete and return its final view."""
    for _ in range(25):
        view = await stack.dispute(dispute_id)
        if view["state"] in _TERMINAL and not view["deadlines"]:
            break
        if view["state"] == "PLATFORM_INTERVENING":
            # Races with the SLA timers are refused and the loop looks again.
            take = Intent("mediator_take") if view["intervention"]["mediator_id"] is None else ruling
            await _apply(stack, dispute_id, take, view, parties)
        else:
            await _lapse(stack, dispute_id, view)
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
                   {"amount": _money(10 * case.paid), "reference": f"prop-{uuid.uuid4().hex[:12]}"}, status=201)
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
            await _apply(stack, dispute_id, route[step], view, parties)
            continue
        if data.draw(st.booleans(), label="stop here"):
            break
        offered = sorted({a for actions in view["allowed_actions"].values() for a in actions})
        together = data.draw(st.integers(1, 2) if data.draw(st.integers(0, 4)) == 0 else st.just(1),
                             label="intents at once")
        batch = [data.draw(intents(offered), label=f"intent {step + 1}") for _ in range(together)]
        await asyncio.gather(*(_apply(stack, dispute_id, intent, view, parties) for intent in batch))
    ruling = data.draw(st.sampled_from(DECISIONS[:3]).flatmap(
        lambda decision: st.builds(Intent, st.just("mediator_rule"), share=st.integers(1, 100),
                                   choice=st.just(decision))), label="final ruling, if one is needed")
    return await _bring_to_an_end(stack, dispute_id, ruling, parties)

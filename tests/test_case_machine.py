"""Many orders and cases at once, worked by careless and hostile parties, mediators and
impatient clocks: after every step the money and the cases still hold.

A Hypothesis rule-based state machine drives the real API and worker (Temporal dev server;
SQLite and PostgreSQL). Each example has two buyers and two sellers of its own, combined
into orders, and a policy whose windows are a second or two. Its rules register orders
(also the same order twice at once), complete them, open disputes (two at once on one
order, the same opening twice with one Idempotency-Key, a second dispute after the first
closed, more than was paid, on another buyer's order), act (what the case offers, any
action, any action from a wrong party, the same keyed action twice, two actions at once),
let deadlines lapse, submit maximal and one-past-the-limit evidence (and maximal evidence
until it is refused), appeal and withdraw in every order, and top the guarantee fund up by
anything up to one past the maximum amount. An answer must be what the move earns (done,
or refused with a 4xx problem); a 5xx, or a 404 for a dispute that exists, fails at once.

After every step, from the API and the ledger:
- money is conserved in the example's currency: the balances of all accounts sum to zero
  with nothing half-held, and what the example's parties and escrows hold is what their
  orders paid plus what the guarantee fund paid out to their disputes;
- what an order's buyer got (or has on hold) from it, over all its disputes, is between 0
  and what was paid;
- a closed case whose money has moved holds no escrow and has no pending transfer; what it
  says it refunded is what the ledger gave the buyer, and what its last ruling decided
  (unless that ruling sent the goods back first);
- every case is open with a deadline not yet past (by more than a loaded machine's timer
  lag), or closed; a closed case with nothing left to wait for completes its workflow;
- every case and the guarantee fund can still be read.

The rules run in a worker thread; each request runs on the session's event loop (where
the stack's worker and app live) through `run_coroutine_threadsafe`. An example that ends
terminates its workflows, so no timer of it moves money during the next.

DISPUTEFLOW_PROPERTY_EXAMPLES and DISPUTEFLOW_PROPERTY_STEPS raise the budget for a hunt.
"""

import asyncio
import contextlib
import itertools
import os
import time
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.service import RPCError

from ledger import accounts
from ledger import TransferView
from money import MAX_AMOUNT
from tests.dispute_moves import (
    ALL_ACTIONS,
    DECISIONS,
    KINDS,
    MIA,
    REASONS,
    ROUTES,
    TERMINAL,
    WINDOWS,
    Intent,
    Parties,
    Pick,
    act,
    check_answer,
    lapse,
    money,
    params,
    picks,
    request_for,
    routes,
    send,
)
from tests.support import PLATFORM, Stack, eventually, settled
from policy import CaseLimits

# Currencies no other test pays in (their funds and balances are checked absolutely). Each
# example takes the next, so an earlier example's ledger state (a guarantee fund near the
# maximum) seldom meets a later one; when it does, the moves' answers may differ, not what
# is drawn.
CURRENCIES = itertools.cycle(("BRL", "CZK", "HUF", "IDR", "ILS", "INR", "ISK", "KES",
                              "MAD", "MXN", "NGN", "PHP", "RON", "TWD", "UAH", "VND"))
EXAMPLES = int(os.environ.get("DISPUTEFLOW_PROPERTY_EXAMPLES", "5"))
STEPS = int(os.environ.get("DISPUTEFLOW_PROPERTY_STEPS", "20"))
# How late a timer may fire on a loaded 2-core machine before a case counts as stuck.
TIMER_LAG = timedelta(seconds=30)
# Temporal's default payload and blob size limit: evidence beyond it once bricked a case.
TEMPORAL_PAYLOAD_LIMIT = 2 * 1024 * 1024
_POSTED = ("single", "post_pending")


def _evidence(*, text: int, attachments: int, url: int) -> dict:
    prefix = "https://files.example/"
    return {"text": "x" * text,
            "attachments": [{"url": prefix + "a" * (url - len(prefix))} for _ in range(attachments)]}


def maximal_evidence(limits: CaseLimits) -> dict:
    """The largest evidence submission the policy takes."""
    return _evidence(text=limits.evidence_text_chars, attachments=limits.attachments_per_submission,
                     url=limits.attachment_url_chars)


def over_limit_evidence(limits: CaseLimits, over: str) -> dict:
    """A submission one past one of the policy's limits (and otherwise small)."""
    return {
        "text": _evidence(text=limits.evidence_text_chars + 1, attachments=0, url=0),
        "attachments": _evidence(text=1, attachments=limits.attachments_per_submission + 1, url=100),
        "url": _evidence(text=1, attachments=1, url=limits.attachment_url_chars + 1),
    }[over]


# Enough maximal submissions to pass Temporal's payload limit, if nothing refuses them first.
FLOOD = TEMPORAL_PAYLOAD_LIMIT // len(str(maximal_evidence(CaseLimits()))) + 2

# The moves around a ruling, made in any order, any number of times.
APPEAL_MOVES = {"buyer appeals": Intent("party_appeal", choice="buyer"),
                "seller appeals": Intent("party_appeal", choice="seller"),
                "buyer withdraws the appeal": Intent("party_withdraw_appeal", choice="buyer"),
                "seller withdraws the appeal": Intent("party_withdraw_appeal", choice="seller"),
                "buyer withdraws": Intent("buyer_withdraw")}
_TO_A_RULING = ROUTES["intervention"]  # refused, escalated, taken
_INTO_INTERVENTION = _TO_A_RULING[:2]
# How a case can be ended at once, most preferred first.
_CLOSING = ("seller_agree_refund", "seller_confirm_return", "buyer_accept_offer", "buyer_withdraw")

# Cases are named by their index (modulo how many there are) rather than drawn from a Bundle:
# whether an opening wins depends on the live system's timing, and what is drawn must not.
cases = st.integers(0, 63)
paid_amounts = st.one_of(st.integers(1, 100_000), st.just(0))
top_up_amounts = st.one_of(st.integers(1, 10**6), st.integers(MAX_AMOUNT - 10**6, MAX_AMOUNT),
                           st.just(MAX_AMOUNT + 1))
shares = st.integers(1, 100)


# The rules that act on a case wait until there is one.
with_cases = precondition(lambda machine: bool(machine.order_of))


def _problem(response: httpx.Response, *statuses: int) -> None:
    assert response.status_code in statuses, f"expected one of {statuses}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == "application/problem+json", response.text


class CaseMachine(RuleBasedStateMachine):
    """Bound to a stack and its event loop by the test (class attributes)."""

    stack: ClassVar[Stack]
    loop: ClassVar[asyncio.AbstractEventLoop]

    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.currency = next(CURRENCIES)
        self.pairs: list[Parties] = []
        self.paid: dict[str, int] = {}
        self.parties_of: dict[str, Parties] = {}
        self.order_of: dict[str, str] = {}
        # When a closed case was first seen with nothing left to wait for.
        self.done_since: dict[str, float] = {}

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def call(self, method: str, path: str, token: str, json: Any = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
        response = self.run(self.stack.call(method, path, token, json, headers))
        assert response.status_code < 500, f"{method} {path} answered {response.status_code}: {response.text}"
        return response

    def view(self, dispute_id: str) -> dict:
        response = self.call("GET", f"/disputes/{dispute_id}", PLATFORM)
        assert response.status_code == 200, f"dispute {dispute_id}: {response.status_code} {response.text}"
        return response.json()

    # ---- the example's world ---------------------------------------------------------

    @initialize(target=orders, two_phase=st.booleans(), paid=st.tuples(shares, shares), shipped=st.booleans(),
                kind=st.sampled_from(KINDS), reason=st.sampled_from(REASONS))
    def start(self, two_phase: bool, paid: tuple[int, int], shipped: bool, kind: str, reason: str):
        """Two buyers and two sellers; two orders by one buyer, from two sellers, each with a case."""
        stack = self.stack
        stack.services.policy = stack.services.policy.model_copy(
            update=WINDOWS | {"advance_payment_two_phase": two_phase})
        self.pairs = [Parties.fresh(stack), Parties.fresh(stack)]
        # Enough for every advance; a fund already near the maximum (an earlier example's
        # top-up) may refuse it.
        self.fund(10**9)
        orders = [self.register_order(0, seller, 100 * amount, shipped, []) for seller, amount in enumerate(paid)]
        for order in orders:
            self.open_dispute(order, kind, reason, 100, 100, "once")
        return multiple(*orders)

    @rule(amount=top_up_amounts)
    def top_up(self, amount: int) -> None:
        self.fund(amount)

    def fund(self, amount: int) -> None:
        response = self.call("POST", "/guarantee-fund/top-ups", PLATFORM,
                             {"amount": money(amount, self.currency), "reference": f"sm-{uuid.uuid4().hex[:12]}"})
        if response.status_code != 201:
            _problem(response, 409, 422)
        event(f"top-up {response.status_code}")

    @rule(target=orders, buyer=st.integers(0, 1), seller=st.integers(0, 1), paid=paid_amounts,
          shipped=st.booleans(), other_amounts=st.lists(paid_amounts, max_size=2))
    def register_order(self, buyer: int, seller: int, paid: int, shipped: bool, other_amounts: list[int]):
        """One order, registered once or several times at once (the same id, maybe other amounts)."""
        parties = Parties(buyer=self.pairs[buyer].buyer, seller=self.pairs[seller].seller)
        order_id = f"ORD-{uuid.uuid4().hex[:10]}"
        amounts = (paid, *other_amounts)

        async def register(amount: int) -> httpx.Response:
            return await self.stack.call("POST", "/orders", PLATFORM, {
                "order_id": order_id, "buyer_id": parties.buyer, "seller_id": parties.seller,
                "paid": money(amount, self.currency), "shipped": shipped})

        async def all_at_once() -> list[httpx.Response]:
            return await asyncio.gather(*(register(amount) for amount in amounts))

        answers = self.run(all_at_once())
        statuses = [(r.status_code, r.text) for r in answers]
        assert all(r.status_code < 500 for r in answers), statuses
        created = [r.json() for r in answers if r.status_code == 201]
        # Exactly one registration wins if any amount is valid; the others see it or conflict.
        assert len(created) == (1 if any(amounts) else 0), statuses
        for response in answers:
            if response.status_code == 200:  # the same facts again
                assert response.json()["paid"] == created[0]["paid"], response.text
            elif response.status_code != 201:
                _problem(response, 409, 422)
        if not created:
            return multiple()
        self.paid[order_id] = created[0]["paid"]["amount"]
        self.parties_of[order_id] = parties
        return order_id

    @rule(order=orders)
    def complete_order(self, order: str) -> None:
        response = self.call("POST", f"/orders/{order}/complete", PLATFORM)
        if response.status_code != 200:
            _problem(response, 409)

    # ---- opening -----------------------------------------------------------------------

    @rule(order=orders, kind=st.sampled_from(KINDS), reason=st.sampled_from(REASONS),
          share=st.one_of(shares, st.just(101)), other_share=shares,
          how=st.sampled_from(["once", "after the last case closes", "two at once", "same key twice",
                               "same key twice at once", "by another buyer"]))
    def open_dispute(self, order: str, kind: str, reason: str, share: int, other_share: int, how: str):
        paid, parties = self.paid[order], self.parties_of[order]
        token = parties.buyer_token
        if how == "after the last case closes":
            self.close_last_case(order)
        elif how == "by another buyer":
            token = next(p.buyer_token for p in self.pairs if p.buyer != parties.buyer)
        # 101 percent: one minor unit more than was paid.
        amounts = [paid + 1 if share == 101 else max(1, paid * share // 100), max(1, paid * other_share // 100)]
        key = {"Idempotency-Key": f"open-{uuid.uuid4().hex}"} if how.startswith("same key") else None

        def opening(amount: int) -> Coroutine[Any, Any, httpx.Response]:
            return self.stack.call("POST", "/disputes", token, {
                "order_id": order, "kind": kind, "reason": reason, "amount": money(amount, self.currency),
                "description": "The kettle leaks from the base.", "evidence": []}, key)

        async def open_all() -> list[tuple[int, httpx.Response]]:
            if how == "two at once":
                return list(zip(amounts, await asyncio.gather(*(opening(a) for a in amounts))))
            if how == "same key twice at once":
                return list(zip(amounts[:1] * 2, await asyncio.gather(opening(amounts[0]), opening(amounts[0]))))
            if how == "same key twice":
                return [(amounts[0], await opening(amounts[0])), (amounts[0], await opening(amounts[0]))]
            return [(amounts[0], await opening(amounts[0]))]

        answers = self.run(open_all())
        statuses = [(r.status_code, r.text) for _, r in answers]
        assert all(r.status_code < 500 for _, r in answers), statuses
        event(f"open {how}: {[r.status_code for _, r in answers]}")
        opened = []
        for amount, response in answers:
            if response.status_code == 201:
                body = response.json()
                # Each winner sees its own claim on its own order.
                assert (body["order"]["order_id"], body["request"]["amount"]["amount"]) == (order, amount), body
                opened.append(body["dispute_id"])
            elif how == "by another buyer":
                _problem(response, 403)
            else:
                _problem(response, 409, 422)
                if response.json()["type"].endswith("dispute_already_open"):
                    assert response.json().get("dispute_id"), f"a 409 names the open dispute: {response.text}"
        if how == "same key twice":  # a retry gets the first answer
            assert statuses[1][0] == statuses[0][0], statuses
        # One dispute at most per opening: unkeyed racers do not both win, a key opens one.
        assert len(opened if key is None else set(opened)) <= 1, f"{order}: {statuses}"
        for dispute_id in opened:
            self.order_of[dispute_id] = order

    def close_last_case(self, order: str) -> None:
        """End the order's last case the quickest way it offers (a refund, mostly) and wait
        until the order takes a new dispute."""
        cases = [d for d, o in self.order_of.items() if o == order]
        if cases:
            view = self.view(cases[-1])
            offered = {a for actions in view["allowed_actions"].values() for a in actions}
            closing = next((a for a in _CLOSING if a in offered), None)
            if closing is None and view["state"] not in TERMINAL:
                return  # nothing ends it now: the opening meets the open case
            if closing is not None:
                self.apply(cases[-1], Intent(closing), view)

        async def order_free() -> bool:
            response = await self.stack.call("GET", f"/orders/{order}", PLATFORM)
            return response.status_code != 200 or response.json()["open_dispute_id"] is None

        # A case whose closing was refused stays open; the opening then meets it.
        with contextlib.suppress(AssertionError):
            self.run(eventually(order_free, timeout=TIMER_LAG.total_seconds(), what=f"{order} free"))

    # ---- acting (on the case at index `case`, modulo how many there are) -----------------

    def case(self, index: int) -> str:
        return list(self.order_of)[index % len(self.order_of)]

    def parties(self, dispute_id: str) -> Parties:
        return self.parties_of[self.order_of[dispute_id]]

    def apply(self, dispute_id: str, intent: Intent, view: dict | None = None) -> None:
        # Answers are checked here, in Hypothesis's thread, where it records its events.
        response = self.run(act(self.stack, dispute_id, intent, view or self.view(dispute_id),
                                self.parties(dispute_id)))
        if response is not None:
            check_answer(response, intent)

    def intent(self, dispute_id: str, pick: Pick) -> tuple[Intent, dict]:
        """The pick made concrete for the case as it is now, and the view it was made for."""
        view = self.view(dispute_id)
        return pick.intent(sorted({a for actions in view["allowed_actions"].values() for a in actions})), view

    @rule(case=cases, pick=picks)
    @with_cases
    def act(self, case: int, pick: Pick) -> None:
        """Mostly an action the case offers, sometimes a lapse, sometimes any action."""
        dispute = self.case(case)
        self.apply(dispute, *self.intent(dispute, pick))

    @rule(case=cases, route=routes())
    @with_cases
    def take_a_route(self, case: int, route: tuple[Intent, ...]) -> None:
        """Into the deeper stages: intervention, advances, rulings and appeals, a disputed return."""
        for intent in route:
            self.apply(self.case(case), intent)

    @rule(case=cases, first=picks, second=picks)
    @with_cases
    def two_at_once(self, case: int, first: Pick, second: Pick) -> None:
        dispute = self.case(case)
        (one, view), (other, _) = self.intent(dispute, first), self.intent(dispute, second)

        async def both() -> list[httpx.Response | None]:
            return await asyncio.gather(*(act(self.stack, dispute, i, view, self.parties(dispute)) for i in (one, other)))

        for intent, response in zip((one, other), self.run(both())):
            if response is not None:
                check_answer(response, intent)

    @rule(case=cases, pick=picks, at_once=st.booleans())
    @with_cases
    def same_keyed_action_twice(self, case: int, pick: Pick, at_once: bool) -> None:
        dispute = self.case(case)
        intent, view = self.intent(dispute, pick)
        if intent.action == "lapse":
            return
        token, body = request_for(intent, view, self.parties(dispute))
        key = f"act-{uuid.uuid4().hex}"
        request_ids = [f"req-{uuid.uuid4().hex}" for _ in range(2)]

        def sending(request_id: str) -> Coroutine[Any, Any, httpx.Response]:
            return send(self.stack, dispute, intent.action, token, body,
                        {"Idempotency-Key": key, "X-Request-ID": request_id})

        async def twice() -> list[httpx.Response]:
            if at_once:
                return list(await asyncio.gather(*(sending(r) for r in request_ids)))
            return [await sending(r) for r in request_ids]

        for response in self.run(twice()):
            check_answer(response, intent)
        # One of the two acted, at most: the other got its outcome.
        acted = {e["actor"]["request_id"] for e in self.view(dispute)["events"]
                 if e["actor"] and e["actor"].get("request_id") in request_ids}
        assert len(acted) <= 1, f"the same keyed {intent.action} acted twice"

    @rule(case=cases, intent=st.sampled_from(ALL_ACTIONS).flatmap(params), wrong=st.integers(0, 3))
    @with_cases
    def act_as_a_wrong_party(self, case: int, intent: Intent, wrong: int) -> None:
        dispute = self.case(case)
        parties = self.parties(dispute)
        _, body = request_for(intent, self.view(dispute), parties)
        other_buyers = [p.buyer_token for p in self.pairs if p.buyer != parties.buyer]
        other_sellers = [p.seller_token for p in self.pairs if p.seller != parties.seller]
        tokens = {
            "buyer": [parties.seller_token, *other_buyers, MIA],
            "seller": [parties.buyer_token, *other_sellers, MIA],
            "party": [*other_buyers, *other_sellers, MIA, PLATFORM],
            "mediator": [parties.buyer_token, parties.seller_token, PLATFORM],
        }[intent.action.split("_")[0]]
        token = tokens[wrong % len(tokens)]
        response = self.run(send(self.stack, dispute, intent.action, token, body))
        assert response.status_code < 500, f"{intent} as {token}: {response.status_code} {response.text}"
        # Refused: not theirs to do (or the case refuses it to anyone just now).
        _problem(response, 403, 409)

    @rule(case=cases)
    @with_cases
    def let_a_deadline_lapse(self, case: int) -> None:
        dispute = self.case(case)
        self.run(lapse(self.stack, dispute, self.view(dispute)))

    # ---- evidence ----------------------------------------------------------------------

    def evidence_from(self, case: int, party: str) -> tuple[str, str]:
        """The case, taken into intervention (where evidence is heard) if it can still get
        there, and the token of the party submitting."""
        dispute = self.case(case)
        for action in _INTO_INTERVENTION:
            self.apply(dispute, Intent(action))
        parties = self.parties(dispute)
        return dispute, parties.buyer_token if party == "buyer" else parties.seller_token

    @rule(case=cases, party=st.sampled_from(("buyer", "seller")),
          over=st.sampled_from([None, "text", "attachments", "url"]))
    @with_cases
    def submit_evidence_at_the_limit(self, case: int, party: str, over: str | None) -> None:
        """The largest evidence the API takes, or one past one of its limits."""
        dispute, token = self.evidence_from(case, party)
        limits = self.stack.services.policy.limits
        body = maximal_evidence(limits) if over is None else over_limit_evidence(limits, over)
        response = self.run(send(self.stack, dispute, "party_submit_evidence", token, body))
        if over is None:
            check_answer(response, "maximal evidence")
        else:  # past the limit, or refused by the case as it is now
            _problem(response, 409, 422)

    @rule(case=cases, party=st.sampled_from(("buyer", "seller")))
    @with_cases
    def flood_evidence(self, case: int, party: str) -> None:
        """Maximal evidence again and again, until the case refuses it (or it would pass
        Temporal's payload limit many times over); then the case must still work."""
        dispute, token = self.evidence_from(case, party)
        body = maximal_evidence(self.stack.services.policy.limits)
        for n in range(FLOOD):
            response = self.run(send(self.stack, dispute, "party_submit_evidence", token, body))
            check_answer(response, f"maximal evidence #{n + 1}")
            if response.status_code >= 400:
                event(f"evidence flood refused at #{n + 1}")
                break

    # ---- appeals and withdrawals -----------------------------------------------------------

    @rule(case=cases, decision=st.sampled_from(DECISIONS[:3]), share=shares,
          moves=st.lists(st.sampled_from(sorted(APPEAL_MOVES)), min_size=1, max_size=4))
    @with_cases
    def appeal_and_withdraw(self, case: int, decision: str, share: int, moves: list[str]) -> None:
        """A ruling, then the parties' appeals and withdrawals in some order."""
        dispute = self.case(case)
        for intent in (*(Intent(a) for a in _TO_A_RULING), Intent("mediator_rule", share=share, choice=decision),
                       *(APPEAL_MOVES[move] for move in moves)):
            self.apply(dispute, intent)

    # ---- what holds after every step ---------------------------------------------------------

    @invariant()
    def the_cases_and_the_money_hold(self) -> None:
        views = {dispute_id: self.view(dispute_id) for dispute_id in self.order_of}
        fund = self.call("GET", f"/guarantee-fund/{self.currency}", PLATFORM)
        assert fund.status_code == 200, f"the guarantee fund cannot be read: {fund.text}"
        # Read after the views: a case they show as settled has no money still to move.
        balances, transfers = self.stack.services.ledger.snapshot(self.currency)
        self.check_conservation(balances, transfers)
        self.check_refunds_per_order(transfers)
        for dispute_id, view in views.items():
            self.check_case(view, [t for t in transfers if t.dispute_id == dispute_id])

    def check_conservation(self, balances: list, transfers: list[TransferView]) -> None:
        assert sum(a.balance for a in balances) == 0, "money was made or lost"
        assert sum(a.debits_pending for a in balances) == sum(a.credits_pending for a in balances)
        fund = accounts.guarantee_fund(self.currency)
        own = {accounts.buyer(p.buyer, self.currency) for p in self.pairs} | {
            accounts.seller(p.seller, self.currency) for p in self.pairs} | {
            accounts.escrow(order, self.currency) for order in self.paid}
        from_fund = sum((t.amount if t.debit_account_id == fund else -t.amount if t.credit_account_id == fund else 0)
                        for t in transfers if t.phase in _POSTED and t.dispute_id in self.order_of)
        held = sum(a.balance for a in balances if a.id in own)
        assert held == sum(self.paid.values()) + from_fund, (
            f"the example's parties and escrows hold {held}; their orders paid {sum(self.paid.values())} "
            f"and the fund paid out {from_fund} net")

    def check_refunds_per_order(self, transfers: list[TransferView]) -> None:
        for order, paid in self.paid.items():
            buyer = accounts.buyer(self.parties_of[order].buyer, self.currency)
            mine = [t for t in transfers if t.order_id == order
                    and (t.phase in _POSTED or t.pending_status == "pending")]
            received = (sum(t.amount for t in mine if t.credit_account_id == buyer)
                        - sum(t.amount for t in mine if t.debit_account_id == buyer))
            assert 0 <= received <= paid, (
                f"the buyer of {order} (paid {paid}) got {received} from it: "
                + ", ".join(f"{t.id} {t.amount}" for t in mine if buyer in (t.credit_account_id, t.debit_account_id)))

    def check_case(self, view: dict, transfers: list[TransferView]) -> None:
        dispute_id = view["dispute_id"]
        if view["state"] not in TERMINAL or view["deadlines"]:
            assert view["deadlines"], f"{dispute_id} is open in {view['state']} with nothing due: it is stuck"
            due = min(datetime.fromisoformat(d["due_at"]) for d in view["deadlines"])
            assert due > datetime.now(UTC) - TIMER_LAG, f"{dispute_id}'s deadline {due} passed long ago"
        if view["state"] in TERMINAL and settled(view):
            self.check_closed_case(view, transfers)

    def check_closed_case(self, view: dict, transfers: list[TransferView]) -> None:
        dispute_id = view["dispute_id"]
        assert [t.id for t in transfers if t.pending_status == "pending"] == [], (
            f"{dispute_id} is closed but holds money")
        buyer = accounts.buyer(view["order"]["buyer_id"], self.currency)
        posted = [t for t in transfers if t.phase in _POSTED]
        given = (sum(t.amount for t in posted if t.credit_account_id == buyer)
                 - sum(t.amount for t in posted if t.debit_account_id == buyer))
        assert given == view["refunded"]["amount"], f"{dispute_id} says it refunded {view['refunded']}, " \
                                                    f"the ledger gave the buyer {given}"
        rulings = (view["intervention"] or {}).get("rulings") or []
        if rulings and rulings[-1]["decision"] != "refund_after_return":
            assert view["refunded"]["amount"] == rulings[-1]["refund"]["amount"], (
                f"{dispute_id} closed with {view['refunded']} against its last ruling {rulings[-1]}")
        if view["deadlines"]:
            return  # the appeal window is open
        # Nothing is left to wait for: the workflow ends soon.
        first_seen = self.done_since.setdefault(dispute_id, time.monotonic())
        if time.monotonic() - first_seen > TIMER_LAG.total_seconds():
            status = self.run(self.stack.services.temporal.get_workflow_handle(dispute_id).describe()).status
            assert status != WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING, (
                f"{dispute_id} is closed with nothing due but its workflow still runs")

    def teardown(self) -> None:
        async def terminate_all() -> None:
            for dispute_id in self.order_of:
                with contextlib.suppress(RPCError):  # it may have completed already
                    await self.stack.services.temporal.get_workflow_handle(dispute_id).terminate("example ended")

        self.run(terminate_all())


async def test_cases_and_money_hold_after_every_step(any_stack: Stack) -> None:
    machine = type("BoundCaseMachine", (CaseMachine,), {"stack": any_stack, "loop": asyncio.get_running_loop()})
    await asyncio.to_thread(run_state_machine_as_test, machine, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))

"""The moves the property tests make on cases: the parties, the mediators, the short policy
windows, and how each intent (an action with its amounts and choices, or "let the deadline
lapse") becomes a request to the API.

An intent the case refuses as it is now is a 4xx problem and is skipped; a 5xx, a 404 for
a dispute that exists, or a request this module built wrongly fails the test.
"""

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from hypothesis import event
from hypothesis import strategies as st

from config.settings import TokenGrant
from identity import Role
from policy import Window
from tests.support import Stack, eventually, settled
from workflows.models import Action

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
TERMINAL = ("SUCCESS", "CLOSED")


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


# What each action's `choice` is chosen from.
_CHOICES: dict[str, tuple[str, ...]] = {
    "mediator_rule": DECISIONS,
    "party_submit_evidence": ("buyer", "seller"),
    "party_appeal": ("buyer", "seller"),
    "party_withdraw_appeal": ("buyer", "seller"),
    "mediator_request_evidence": ("buyer", "seller"),
    "seller_report_return_problem": ("not_received", "damaged", "different"),
    "buyer_revise": tuple(f"{kind}/{reason}" for kind in KINDS for reason in REASONS),
}


def params(action: str) -> st.SearchStrategy[Intent]:
    return st.builds(Intent, st.just(action), share=st.integers(1, 100),
                     choice=st.sampled_from(_CHOICES.get(action, ("",))), flag=st.booleans())


# Actions that take a case somewhere new (intervention, advances, returns, appeals) are
# offered more often than those that end it at once, so a dozen examples reach them.
_FORWARD = {"seller_refuse", "buyer_escalate", "mediator_take", "mediator_order_advance", "buyer_ship_return",
            "seller_report_return_problem", "party_appeal", "mediator_rule"}


@dataclass(frozen=True)
class Pick:
    """An intent drawn before the case is looked at, and made concrete by `intent` against
    what the case offers then. What Hypothesis draws then never depends on the live
    system's state, which differs from one run of an example to the next."""

    what: int  # < 14: an action the case offers; < 18: a lapse; else any action
    action: int  # index into the (weighted) offered actions, or into all actions
    share: int
    choice: int
    flag: bool

    def intent(self, offered: list[str]) -> Intent:
        """Mostly an action the case offers now; sometimes a lapse; sometimes anything."""
        if self.what < 14 and offered:
            weighted = [a for a in offered for _ in range(3 if a in _FORWARD else 1)]
            action = weighted[self.action % len(weighted)]
        elif self.what < 18:
            return Intent("lapse")
        else:
            action = ALL_ACTIONS[self.action % len(ALL_ACTIONS)]
        choices = _CHOICES.get(action, ("",))
        return Intent(action, share=self.share, choice=choices[self.choice % len(choices)], flag=self.flag)


picks = st.builds(Pick, st.integers(0, 19), st.integers(0, 255), st.integers(1, 100), st.integers(0, 255),
                  st.booleans())


def intents(offered: list[str]) -> st.SearchStrategy[Intent]:
    return picks.map(lambda pick: pick.intent(offered))


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
        lambda route: st.tuples(*(params(a) for a in ROUTES[route])))


def money(amount: int, currency: str) -> dict:
    return {"amount": amount, "currency": currency}


def assigned_mediator(view: dict) -> str:
    intervention = view["intervention"] or {}
    return MEDIATOR_TOKENS.get(intervention.get("mediator_id") or "", MIA)


def taker(view: dict) -> str:
    intervention = view["intervention"] or {}
    if not intervention.get("needs_senior"):
        return MIA
    return SUE if intervention.get("excluded_mediator_id") == "sam" else SAM


def request_for(intent: Intent, view: dict, parties: Parties) -> tuple[str, dict]:
    """The token and body of an action intent, given the case as it is now."""
    requested = view["request"]["amount"]["amount"]
    paid = view["order"]["paid"]["amount"]

    def share_of(whole: int) -> dict:
        return money(max(1, whole * intent.share // 100), view["order"]["paid"]["currency"])

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
            return seller, {"amount": share_of(requested)}
        case "seller_report_return_problem":
            return seller, {"problem": intent.choice, "description": "Not what was sent"}
        case "buyer_accept_offer" | "buyer_refuse_offer":
            return buyer, {}
        case "buyer_revise":
            kind, reason = intent.choice.split("/")
            return buyer, {"request": {"kind": kind, "reason": reason, "amount": share_of(paid),
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
            return taker(view), {}
        case "mediator_request_evidence":
            return assigned_mediator(view), {"party": intent.choice, "request": "Photos of the item, please"}
        case "mediator_extend_deadline":
            open_ = [d for d in view["deadlines"] if d["role"] in ("buyer", "seller")] or [
                {"kind": "buyer_evidence", "due_at": datetime.now(UTC).isoformat()}]
            until = datetime.fromisoformat(open_[0]["due_at"]) + timedelta(seconds=intent.share / 100)
            return assigned_mediator(view), {"deadline": open_[0]["kind"], "until": until.isoformat(),
                                             "reason": "The courier is late"}
        case "mediator_hand_over":
            current = (view["intervention"] or {}).get("mediator_id")
            return assigned_mediator(view), {"to_mediator_id": "mia" if current == "noah" else "noah",
                                             "reason": "Workload"}
        case "mediator_rule":
            body = {"decision": intent.choice, "rationale": "On the evidence submitted"}
            if intent.choice == "partial_refund":
                body["amount"] = share_of(requested)
            if intent.choice == "refund_after_return":
                body["return_address"] = "Returns desk, 1 Harbour Rd"
            return assigned_mediator(view), body
        case "mediator_order_advance":
            body = {"amount": share_of(requested), "rationale": "Defect shown, seller silent",
                    "buyer_in_good_faith": True, "return_goods": intent.flag}
            if intent.flag:
                body["return_address"] = "Returns desk, 1 Harbour Rd"
            return assigned_mediator(view), body
    raise AssertionError(f"no request for {intent}")


async def apply(stack: Stack, dispute_id: str, intent: Intent, view: dict, parties: Parties) -> None:
    response = await act(stack, dispute_id, intent, view, parties)
    if response is not None:
        check_answer(response, intent)


async def act(stack: Stack, dispute_id: str, intent: Intent, view: dict, parties: Parties) -> httpx.Response | None:
    """Carry the intent out: send its request (and return the answer), or let the deadline lapse."""
    if intent.action == "lapse":
        await lapse(stack, dispute_id, view)
        return None
    token, body = request_for(intent, view, parties)
    return await send(stack, dispute_id, intent.action, token, body)


async def send(stack: Stack, dispute_id: str, action: str, token: str, body: dict,
               headers: dict[str, str] | None = None) -> httpx.Response:
    return await stack.call("POST", f"/disputes/{dispute_id}/{action.replace('_', '-')}", token, body, headers)


def check_answer(response: httpx.Response, what: object) -> None:
    """Done, or refused by the case as it is now with a problem; anything else is a bug (in
    the system, or in this module when it sent an invalid request)."""
    assert response.status_code < 500, f"{what} answered {response.status_code}: {response.text}"
    event(f"{getattr(what, 'action', what)} {'done' if response.status_code < 400 else 'refused'}")
    if response.status_code >= 400:
        assert response.status_code in (403, 409, 422), f"{what}: {response.status_code} {response.text}"
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] != "/problems/invalid-request", f"{what}: {response.text}"


async def lapse(stack: Stack, dispute_id: str, view: dict) -> None:
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
        return now if now["events_total"] > seen and settled(now) else None

    await eventually(acted_on, timeout=max(due - time.time(), 0) + 20, what=f"{dispute_id}'s deadline to lapse")



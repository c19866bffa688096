"""The life cycle as one table: for each state, which role may take which action, which
deadlines entering it opens, and, per deadline, who must act, how long they have and what
a lapse does. `allowed_actions`, who may take an action at all, the deadlines a state
sets, the lapse outcomes, the consequence texts users see and the README's life-cycle
tables are all read from it. Intervention's part lives in `workflows.intervention`.
"""

from identity import Role
from policy import Policy, Window
from workflows import intervention
from workflows.models import Action, DeadlineKind, DisputeKind, DisputeState
from workflows.stages import Clock, Close, Condition, Offer, Situation, Stage

S = DisputeState
_B, _S = Role.BUYER, Role.SELLER

RETURN_POSSIBLE = Condition("for a return-and-refund of shipped goods",
                            lambda s, _: s.kind == DisputeKind.RETURN_AND_REFUND and s.shipped)

_STAGES = (
    Stage(S.WAIT_SELLER_AGREE, offers=(
        Offer((_S,), Action.SELLER_AGREE_REFUND),
        Offer((_S,), Action.SELLER_AGREE_RETURN, RETURN_POSSIBLE),
        Offer((_S,), Action.SELLER_REFUSE),
        Offer((_S,), Action.SELLER_OFFER_PARTIAL),
        Offer((_B,), Action.BUYER_REVISE),
        Offer((_B,), Action.BUYER_WITHDRAW),
    ), opens=(DeadlineKind.SELLER_RESPONSE,)),
    Stage(S.SELLER_REFUSED, offers=(
        Offer((_B,), Action.BUYER_REVISE),
        Offer((_B,), Action.BUYER_ESCALATE),
        Offer((_B,), Action.BUYER_WITHDRAW),
    ), opens=(DeadlineKind.BUYER_RESPONSE_AFTER_REFUSAL,)),
    Stage(S.WAIT_BUYER_ANSWER_OFFER, offers=(
        Offer((_B,), Action.BUYER_ACCEPT_OFFER),
        Offer((_B,), Action.BUYER_REFUSE_OFFER),
        Offer((_B,), Action.BUYER_WITHDRAW),
    ), opens=(DeadlineKind.BUYER_RESPONSE_TO_OFFER,)),
    Stage(S.WAIT_BUYER_RETURN_GOODS, offers=(
        Offer((_B,), Action.BUYER_SHIP_RETURN),
        Offer((_B,), Action.BUYER_WITHDRAW),
    ), opens=(DeadlineKind.BUYER_RETURN_SHIPMENT,)),
    Stage(S.WAIT_SELLER_CONFIRM_GOODS, offers=(
        Offer((_S,), Action.SELLER_CONFIRM_RETURN),
        Offer((_S,), Action.SELLER_REPORT_RETURN_PROBLEM),
    ), opens=(DeadlineKind.SELLER_CONFIRM_RETURN,)),
    intervention.INTERVENING,
    intervention.closed(S.SUCCESS),
    intervention.closed(S.CLOSED),
)

_GRANTED = "the refund is granted to the buyer"
_NO_REFUND = "the dispute closes without a refund"
_CLOCKS = (
    Clock(DeadlineKind.SELLER_RESPONSE, _S,
          lambda p, s: p.seller_response_window(shipped=s.shipped, return_goods=s.kind == DisputeKind.RETURN_AND_REFUND),
          Close(S.SUCCESS, refund_requested=True), _GRANTED,
          variants=(("not shipped", Situation()), ("shipped, refund only", Situation(shipped=True)),
                    ("return and refund", Situation(kind=DisputeKind.RETURN_AND_REFUND, shipped=True)))),
    Clock(DeadlineKind.BUYER_RESPONSE_AFTER_REFUSAL, _B, lambda p, s: p.buyer_response_after_refusal,
          Close(S.CLOSED, refund_requested=False), "the dispute closes in the seller's favour"),
    Clock(DeadlineKind.BUYER_RESPONSE_TO_OFFER, _B, lambda p, s: p.buyer_response_to_offer,
          Close(S.CLOSED, refund_requested=False), _NO_REFUND),
    Clock(DeadlineKind.BUYER_RETURN_SHIPMENT, _B, lambda p, s: p.buyer_return_shipment,
          Close(S.CLOSED, refund_requested=False), _NO_REFUND),
    Clock(DeadlineKind.SELLER_CONFIRM_RETURN, _S, lambda p, s: p.seller_confirm_return,
          Close(S.SUCCESS, refund_requested=True), _GRANTED),
    *intervention.CLOCKS,
)

STAGES: dict[DisputeState, Stage] = {stage.state: stage for stage in _STAGES}
CLOCKS: dict[DeadlineKind, Clock] = {clock.kind: clock for clock in _CLOCKS}
_ROLES = (Role.BUYER, Role.SELLER, Role.MEDIATOR)


def allowed_actions(state: DisputeState, situation: Situation) -> dict[Role, list[Action]]:
    """What each role may do now, in the table's order."""
    offers = STAGES[state].offers
    allowed = {role: [o.action for o in offers if o.open_to(role, situation)] for role in _ROLES}
    return {role: actions for role, actions in allowed.items() if actions}


def refusal(state: DisputeState, role: Role, action: Action, situation: Situation) -> str | None:
    """Why the stage does not offer `role` the `action` now, where the table says it specially."""
    for offer in STAGES[state].offers:
        if offer.action == action and role in offer.roles and not offer.open_to(role, situation):
            return offer.refusal
    return None


def actors_of(action: Action) -> tuple[Role, ...]:
    """The roles that may ever take `action`: the union of its offers, in the order of _ROLES."""
    roles = {role for stage in _STAGES for offer in stage.offers if offer.action == action for role in offer.roles}
    return tuple(role for role in _ROLES if role in roles)


# ---- the README's tables -----------------------------------------------------------


def describe_window(window: Window) -> str:
    if window.working_days is not None:
        return f"{window.working_days} working day{'s' if window.working_days > 1 else ''}"
    assert window.duration is not None
    seconds = int(window.duration.total_seconds())
    if seconds % 86400 == 0 and seconds >= 3 * 86400:
        return f"{seconds // 86400} days"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds} s"


def describe_clock(clock: Clock, policy: Policy) -> str:
    variants = clock.variants or (("", Situation()),)
    windows = []
    for label, situation in variants:
        window = describe_window(clock.window(policy, situation))
        windows.append(f"{window} ({label})" if label else window)
    return ", ".join(windows)


def _who(stage: Stage) -> str:
    """Each run of offers to the same roles, as "seller: `a`, `b` (when)"."""
    runs: list[tuple[tuple[Role, ...], list[str]]] = []
    for offer in stage.offers:
        action = f"`{offer.action.value}`" + (f" ({offer.when.text})" if offer.when else "")
        if runs and runs[-1][0] == offer.roles:
            runs[-1][1].append(action)
        else:
            runs.append((offer.roles, [action]))
    return "; ".join(f"{' or '.join(role.value for role in roles)}: {', '.join(actions)}" for roles, actions in runs)


def readme_tables(policy: Policy) -> str:
    """The README's life-cycle tables, generated from the table (tests check they match)."""
    lines = ["| state | who may act | deadlines it opens |", "| --- | --- | --- |"]
    for stage in _STAGES:
        opens = ", ".join(f"`{kind.value}`" for kind in stage.opens)
        if stage.opens_when:
            opens += f" ({stage.opens_when})"
        if stage.also:
            opens += "; on request: " + ", ".join(f"`{kind.value}`" for kind in stage.also)
        lines.append(f"| `{stage.state.value}` | {_who(stage)} | {opens} |")
    lines += ["", "| deadline | who must act | window (default) | if nobody acts |", "| --- | --- | --- | --- |"]
    for clock in _CLOCKS:
        lines.append(f"| `{clock.kind.value}` | {clock.role.value} | {describe_clock(clock, policy)} "
                     f"| {clock.consequence} |")
    return "\n".join(lines) + "\n"

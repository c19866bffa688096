"""Platform intervention (平台介入) as a sub-process of the case: the mediators' take and
rule SLAs, evidence requests, hand-over, the breach to the senior queue, and the appeal.

Its part of the life-cycle table (the intervening stage, the closed stages' appeal, their
clocks) and the pure steps that change an `Intervention`; the workflow records the events
and runs the effects around them.
"""

from identity import Role
from workflows.models import (
    Action,
    Appeal,
    AppealStage,
    DeadlineKind,
    DisputeState,
    Intervention,
    Ruling,
)
from workflows.stages import Clock, Condition, EvidenceMissed, Offer, RulingFinal, Situation, Stage, ToSeniorQueue

MEDIATOR_QUEUE = "mediator-queue"
SENIOR_QUEUE = "senior-queue"
EVIDENCE_DEADLINE = {Role.BUYER: DeadlineKind.BUYER_EVIDENCE, Role.SELLER: DeadlineKind.SELLER_EVIDENCE}
APPEAL_DEADLINES = (DeadlineKind.BUYER_APPEAL, DeadlineKind.SELLER_APPEAL)
SLA_DEADLINES = (DeadlineKind.MEDIATOR_TAKE, DeadlineKind.MEDIATOR_RULE)

_B, _S, _M = Role.BUYER, Role.SELLER, Role.MEDIATOR
_PARTIES = (_B, _S)

UNTAKEN = Condition("until a mediator takes the case", lambda s, _: not s.mediator_assigned)
TAKEN = Condition("once a mediator has taken the case", lambda s, _: s.mediator_assigned)
NOT_ON_APPEAL = Condition("unless an appeal is being heard", lambda s, _: s.appeal != AppealStage.HEARD)
# The first ruling settled the money; an appeal ends in a final ruling that moves only the
# difference, which would leave an advance paid now unsettled.
TAKEN_NOT_ON_APPEAL = Condition("once taken, unless an appeal is being heard",
                                lambda s, role: TAKEN.holds(s, role) and NOT_ON_APPEAL.holds(s, role))
# Withdrawing the request would undo a settled ruling; the appellant may withdraw the appeal instead.
APPELLANT = Condition("the party who appealed, while it is heard",
                      lambda s, role: s.appeal == AppealStage.HEARD and s.appellant == role)
APPEAL_WINDOW = Condition("within the appeal window of a mediator's ruling, once",
                          lambda s, _: s.appeal == AppealStage.WINDOW_OPEN)

INTERVENING = Stage(
    DisputeState.PLATFORM_INTERVENING,
    offers=(
        Offer(_PARTIES, Action.PARTY_SUBMIT_EVIDENCE),
        Offer((_B,), Action.BUYER_WITHDRAW, NOT_ON_APPEAL,
              refusal="the request cannot be withdrawn during an appeal: its ruling settled; "
                      "the party who appealed may withdraw the appeal (party_withdraw_appeal)"),
        Offer(_PARTIES, Action.PARTY_WITHDRAW_APPEAL, APPELLANT),
        Offer((_M,), Action.MEDIATOR_TAKE, UNTAKEN),
        Offer((_M,), Action.MEDIATOR_REQUEST_EVIDENCE, TAKEN),
        Offer((_M,), Action.MEDIATOR_EXTEND_DEADLINE, TAKEN),
        Offer((_M,), Action.MEDIATOR_HAND_OVER, TAKEN),
        Offer((_M,), Action.MEDIATOR_ORDER_ADVANCE, TAKEN_NOT_ON_APPEAL),
        Offer((_M,), Action.MEDIATOR_RULE, TAKEN),
    ),
    opens=SLA_DEADLINES,
    also=tuple(EVIDENCE_DEADLINE.values()),
)


def closed(state: DisputeState) -> Stage:
    return Stage(state, offers=(Offer(_PARTIES, Action.PARTY_APPEAL, APPEAL_WINDOW),),
                 opens=APPEAL_DEADLINES, opens_when="after a mediator's ruling not made on appeal")


_TO_SENIOR = "the case goes to a senior mediator and is flagged"
_EVIDENCE_MISSED = "the mediator decides on the evidence already submitted"
_FINAL = "the ruling becomes final"

CLOCKS = (
    Clock(DeadlineKind.MEDIATOR_TAKE, _M, lambda p, s: p.mediator_take_window(urgent=s.urgent),
          ToSeniorQueue(), _TO_SENIOR, variants=(("", Situation()), ("urgent", Situation(urgent=True)))),
    Clock(DeadlineKind.MEDIATOR_RULE, _M, lambda p, s: p.mediator_rule, ToSeniorQueue(), _TO_SENIOR),
    Clock(DeadlineKind.BUYER_EVIDENCE, _B, lambda p, s: p.evidence_response, EvidenceMissed(), _EVIDENCE_MISSED),
    # Once the buyer has submitted, the seller has the shorter window to answer.
    Clock(DeadlineKind.SELLER_EVIDENCE, _S,
          lambda p, s: p.evidence_response_after_buyer if s.buyer_submitted_evidence else p.evidence_response,
          EvidenceMissed(), _EVIDENCE_MISSED,
          variants=(("", Situation()), ("once the buyer has submitted", Situation(buyer_submitted_evidence=True)))),
    Clock(DeadlineKind.BUYER_APPEAL, _B, lambda p, s: p.appeal, RulingFinal(), _FINAL),
    Clock(DeadlineKind.SELLER_APPEAL, _S, lambda p, s: p.appeal, RulingFinal(), _FINAL),
)


def situation_facts(intervention: Intervention | None) -> dict:
    """The intervention's part of the case's `Situation`."""
    if intervention is None:
        return {}
    return {"urgent": intervention.urgent, "mediator_assigned": intervention.mediator_id is not None,
            "appeal": intervention.appeal_stage,
            "appellant": intervention.appeal.role if intervention.appeal is not None else None,
            "buyer_submitted_evidence": any(e.role == Role.BUYER for e in intervention.evidence)}


def hears_appeal(intervention: Intervention | None) -> bool:
    return intervention is not None and intervention.appeal_stage == AppealStage.HEARD


def queue(intervention: Intervention) -> str:
    """Where a case no mediator holds waits."""
    return SENIOR_QUEUE if intervention.needs_senior else MEDIATOR_QUEUE


def who_acts(intervention: Intervention) -> str:
    """The mediator who must act: the assigned one, or the queue the case waits in."""
    return intervention.mediator_id or queue(intervention)


def settle_requests(intervention: Intervention, role: Role, status: str) -> None:
    """The party's open evidence requests are answered, or missed."""
    for request in intervention.evidence_requests:
        if request.role == role and request.status == "open":
            request.status = status


def breach(intervention: Intervention, kind: DeadlineKind, listed: int) -> None:
    """A mediator SLA passed: flag the case and put it back in the queue, for seniors only."""
    intervention.sla_breaches = [*intervention.sla_breaches, kind][-listed:]
    intervention.sla_breach_count += 1
    intervention.needs_senior = True
    intervention.mediator_id = None


def open_appeal_window(intervention: Intervention) -> None:
    intervention.appeal_stage = AppealStage.WINDOW_OPEN


def file_appeal(intervention: Intervention, appeal: Appeal) -> Ruling:
    """The appeal is heard by a senior who is not the mediator of the appealed ruling."""
    appealed = intervention.rulings[-1]
    intervention.appeal = appeal
    intervention.appeal_stage = AppealStage.HEARD
    intervention.needs_senior = True
    intervention.excluded_mediator_id = appealed.mediator_id
    intervention.mediator_id = None
    return appealed


def withdraw_appeal(intervention: Intervention) -> Ruling:
    """The appealed ruling stands, with its mediator; the case's one appeal is spent."""
    ruling = intervention.rulings[-1]
    intervention.mediator_id = ruling.mediator_id
    intervention.appeal_stage = AppealStage.FINAL
    return ruling


def make_final(intervention: Intervention) -> None:
    """Ruled on appeal, or the appeal windows lapsed."""
    intervention.appeal_stage = AppealStage.FINAL

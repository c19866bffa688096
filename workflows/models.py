"""Pydantic models that cross the workflow boundary: input, update arguments, views.

Everything here is recorded in Temporal history, so changing a field's meaning changes
what old histories mean: add fields with defaults, never repurpose one.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    StringConstraints,
    computed_field,
)

from identity import Actor, Role
from money import CurrencyCode, Money
from money.plans import CaseParties
from notifications.models import NotificationMessage
from policy import Policy
from policy.versions import PolicyRef
from workflows.actions import ActionArgs
from reporting.facts import CaseFacts

PartyId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class DisputeKind(StrEnum):
    REFUND_ONLY = "refund_only"
    RETURN_AND_REFUND = "return_and_refund"


class ReasonCategory(StrEnum):
    NOT_RECEIVED = "not_received"
    QUALITY = "quality"
    NOT_AS_DESCRIBED = "not_as_described"
    WRONG_ITEM = "wrong_item"
    DAMAGED = "damaged"
    OTHER = "other"


class DisputeState(StrEnum):
    WAIT_SELLER_AGREE = "WAIT_SELLER_AGREE"
    SELLER_REFUSED = "SELLER_REFUSED"
    WAIT_BUYER_ANSWER_OFFER = "WAIT_BUYER_ANSWER_OFFER"
    WAIT_BUYER_RETURN_GOODS = "WAIT_BUYER_RETURN_GOODS"
    WAIT_SELLER_CONFIRM_GOODS = "WAIT_SELLER_CONFIRM_GOODS"
    PLATFORM_INTERVENING = "PLATFORM_INTERVENING"
    SUCCESS = "SUCCESS"
    CLOSED = "CLOSED"

    @property
    def is_terminal(self) -> bool:
        return self in (DisputeState.SUCCESS, DisputeState.CLOSED)


class DeadlineKind(StrEnum):
    SELLER_RESPONSE = "seller_response"
    BUYER_RESPONSE_AFTER_REFUSAL = "buyer_response_after_refusal"
    BUYER_RESPONSE_TO_OFFER = "buyer_response_to_offer"
    BUYER_RETURN_SHIPMENT = "buyer_return_shipment"
    SELLER_CONFIRM_RETURN = "seller_confirm_return"
    MEDIATOR_TAKE = "mediator_take"
    MEDIATOR_RULE = "mediator_rule"
    BUYER_EVIDENCE = "buyer_evidence"
    SELLER_EVIDENCE = "seller_evidence"
    BUYER_APPEAL = "buyer_appeal"
    SELLER_APPEAL = "seller_appeal"


class UrgentConcern(StrEnum):
    """Safety or major-loss cases that platform staff must take within the urgent SLA."""

    SAFETY = "safety"
    PERSONAL_INJURY = "personal_injury"
    COUNTERFEIT = "counterfeit"


class ReturnProblem(StrEnum):
    NOT_RECEIVED = "not_received"
    DAMAGED = "damaged"
    DIFFERENT = "different"


class RulingDecision(StrEnum):
    FULL_REFUND = "full_refund"
    PARTIAL_REFUND = "partial_refund"
    REJECT = "reject"
    REFUND_AFTER_RETURN = "refund_after_return"


class EvidenceRef(BaseModel):
    """A pointer to a file the party uploaded elsewhere; disputeflow stores references only."""

    url: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None
    media_type: Annotated[str, StringConstraints(max_length=200)] | None = None


class RefundRequest(BaseModel):
    """What the buyer asks for; revised requests replace it wholesale."""

    kind: DisputeKind
    reason: ReasonCategory
    amount: Money
    description: Text
    evidence: list[EvidenceRef] = Field(default_factory=list, max_length=20)


class OrderSnapshot(BaseModel):
    """The order as it was when the dispute opened."""

    order_id: PartyId
    buyer_id: PartyId
    seller_id: PartyId
    paid: Money
    shipped: bool
    # What earlier disputes on the order refunded, net (README: "Refund caps and second
    # disputes"). Cases recorded before it was kept have none: nothing was refunded before.
    refunded_before: Money | None = None

    @property
    def refundable(self) -> Money:
        """What this dispute may still claim: the payment less what earlier disputes refunded."""
        before = self.refunded_before.amount if self.refunded_before is not None else 0
        return Money(amount=max(self.paid.amount - before, 0), currency=self.paid.currency)


class DisputeInput(BaseModel):
    dispute_id: str
    order: OrderSnapshot
    request: RefundRequest
    opened_by: Actor
    # The case's policy: the ref of the shipped version it follows (policy/versions), else the
    # whole policy (a test's or an operator's own, and every input recorded before refs).
    policy: Policy | PolicyRef
    # Set when a long case continues as new: where the previous run left it.
    carried: "CarriedCase | None" = None


# ---- update arguments --------------------------------------------------------------
# Each dispute action is declared once, by its arguments (see `workflows.actions`).


class DisputeArgs(ActionArgs):
    """The arguments of a dispute action."""


# Every dispute action's arguments by its name, in the order they are declared below.
ACTION_ARGS = DisputeArgs.actions


class _Noted(DisputeArgs):
    note: Text | None = None


class SellerAgreeRefund(_Noted, action="seller_agree_refund"):
    """Seller agrees to refund the requested amount; the dispute closes with the refund."""


class SellerAgreeReturn(DisputeArgs, action="seller_agree_return"):
    """Seller agrees to a return; the buyer's return window starts."""

    return_address: Text
    note: Text | None = None


class SellerRefuse(DisputeArgs, action="seller_refuse"):
    """Seller refuses, with a reason; the buyer may revise or the dispute closes when the window lapses."""

    reason: Text
    evidence: list[EvidenceRef] = Field(default_factory=list, max_length=20)


class SellerOfferPartial(DisputeArgs, action="seller_offer_partial"):
    """Seller offers a partial refund for the buyer to accept or refuse."""

    amount: Money
    note: Text | None = None


class SellerConfirmReturn(_Noted, action="seller_confirm_return"):
    """Seller confirms the returned parcel arrived; the buyer is refunded."""


class BuyerAcceptOffer(_Noted, action="buyer_accept_offer"):
    """Buyer accepts the seller's partial offer; the dispute closes with that refund."""


class BuyerRefuseOffer(_Noted, action="buyer_refuse_offer"):
    """Buyer refuses the seller's partial offer."""


class BuyerRevise(DisputeArgs, action="buyer_revise"):
    """Buyer revises the request and submits it again to the seller."""

    request: RefundRequest


class BuyerWithdraw(DisputeArgs, action="buyer_withdraw"):
    """Buyer withdraws the request; the escrow is released to the seller."""

    reason: Text | None = None


class BuyerShipReturn(DisputeArgs, action="buyer_ship_return"):
    """Buyer ships the return with carrier and tracking number; the seller's confirmation window starts."""

    carrier: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    tracking_number: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{4,40}$")]


class BuyerEscalate(DisputeArgs, action="buyer_escalate"):
    """Buyer asks the platform to intervene after a refusal (平台介入); urgent concerns get the urgent SLA."""

    reason: Text
    urgent_concern: UrgentConcern | None = None
    evidence: list[EvidenceRef] = Field(default_factory=list, max_length=20)


class SellerReportReturnProblem(DisputeArgs, action="seller_report_return_problem"):
    """Seller reports the returned parcel not received, damaged or different; the platform intervenes."""

    problem: ReturnProblem
    description: Text
    evidence: list[EvidenceRef] = Field(default_factory=list, max_length=20)


class PartySubmitEvidence(DisputeArgs, action="party_submit_evidence"):
    """Buyer or seller submits evidence (举证) during intervention; answers an open evidence request."""

    text: Text
    attachments: list[EvidenceRef] = Field(default_factory=list, max_length=20)


class StoredEvidence(BaseModel):
    """An evidence body the API stored outside the workflow (content-addressed), as the case
    records it: its id and what the case's limits are checked against."""

    evidence_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]  # sha256 of the body
    size: int = Field(ge=0)  # bytes of the stored body
    text_chars: int = Field(ge=0)
    attachments: int = Field(ge=0)
    longest_url_chars: int = Field(ge=0)


class SubmittedEvidence(BaseModel):
    """What the case receives for party_submit_evidence: the reference to the body the API
    stored. Histories recorded before evidence moved out of the workflow carry the body
    inline (`text`, `attachments`)."""

    stored: StoredEvidence | None = None
    text: str | None = None
    attachments: list[EvidenceRef] = Field(default_factory=list)


class PartyAppeal(DisputeArgs, action="party_appeal"):
    """Buyer or seller appeals a mediator's ruling with new information, once; a senior mediator rules finally."""

    reason: Text
    new_information: Text
    attachments: list[EvidenceRef] = Field(default_factory=list, max_length=20)


class PartyWithdrawAppeal(DisputeArgs, action="party_withdraw_appeal"):
    """The party who appealed withdraws the appeal; the appealed ruling stands, final, and no money moves."""

    reason: Text | None = None


class MediatorTake(_Noted, action="mediator_take"):
    """A mediator takes a case from the queue; exactly one mediator gets it."""


class MediatorRequestEvidence(DisputeArgs, action="mediator_request_evidence"):
    """The assigned mediator asks a party for evidence, with the policy's deadline."""

    party: Literal[Role.BUYER, Role.SELLER]
    request: Text


class MediatorExtendDeadline(DisputeArgs, action="mediator_extend_deadline"):
    """The assigned mediator extends a party's deadline, with a reason; the running timer is replaced."""

    deadline: DeadlineKind
    until: AwareDatetime
    reason: Text


class MediatorHandOver(DisputeArgs, action="mediator_hand_over"):
    """The assigned mediator hands the case to another mediator, with a reason."""

    to_mediator_id: PartyId
    reason: Text


class MediatorRule(DisputeArgs, action="mediator_rule"):
    """The assigned mediator rules, with a rationale: full refund, partial refund, reject, or refund after return."""

    decision: RulingDecision
    rationale: Text
    # Required for a partial refund; the requested amount otherwise.
    amount: Money | None = None
    # For a refund after return, where the seller has not given one yet.
    return_address: Text | None = None


class MediatorOrderAdvance(DisputeArgs, action="mediator_order_advance"):
    """The assigned mediator orders an advance payment (先行垫付) from the guarantee fund to the buyer.

    The platform pays the buyer from its guarantee fund; the order money stays frozen."""

    amount: Money
    rationale: Text
    # The mediator attests the conditions of seed 004: the buyer acted in good faith and is not at fault.
    buyer_in_good_faith: Literal[True]
    # Defective goods go back to the seller before the advance settles; undelivered ones cannot.
    return_goods: bool
    return_address: Text | None = None


# Every party action; each is a Temporal Update of the same name, taking `Call[<its args>]`.
Action = StrEnum("Action", {name.upper(): name for name in ACTION_ARGS}, module=__name__)


class PlatformAction(StrEnum):
    """Operator actions on a case, each a Temporal Update of the same name."""

    CALENDAR_UPDATE = "calendar_update"


class CalendarUpdate(BaseModel):
    """Move an open case to ``policy``: its current policy with the calendar extended
    (``Policy.check_calendar_update``)."""

    actor: Actor
    policy: Policy

    @property
    def update_id(self) -> str:
        """One update per case and policy version, sent by the API or the CLI."""
        return f"calendar-update:{self.policy.version}"


# ---- views -------------------------------------------------------------------------


class Deadline(BaseModel):
    kind: DeadlineKind
    role: Role
    party_id: str
    set_at: datetime
    due_at: datetime
    consequence: str
    remind_at: datetime | None = None
    reminded: bool = False
    # Set for a deadline counted in working days on the policy's calendar: from when and
    # how many, so a calendar update can count it again.
    counted_from: datetime | None = None
    working_days: int | None = None
    # The count reached days the calendar's published arrangement does not cover yet:
    # due_at may move when the next year's arrangement is loaded (README, Working-day calendar).
    past_calendar_coverage: bool = False


class DisputeEvent(BaseModel):
    seq: int
    at: datetime
    kind: str
    state_before: DisputeState | None
    state_after: DisputeState
    actor: Actor | None = None
    # Set when a durable timer, not a person, caused the event.
    timer: DeadlineKind | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Resolution(BaseModel):
    """How a closed dispute ended and who or what decided it."""

    outcome: DisputeState
    refunded: Money
    released_to_seller: Money
    decided_by: Actor | None = None
    timer: DeadlineKind | None = None
    reason: str
    # True once the ledger has refunded the buyer and released the rest to the seller.
    settled: bool = False


class EvidenceSubmission(BaseModel):
    seq: int
    at: datetime
    role: Role
    party_id: str
    # The body: inline for escalation evidence and cases recorded before the evidence store;
    # for stored evidence the workflow keeps `evidence_id` and `size` and the API fills these in.
    text: str = ""
    attachments: list[EvidenceRef] = Field(default_factory=list)
    evidence_id: str | None = None
    size: int = 0


class EvidenceRequest(BaseModel):
    role: Role
    party_id: str
    request: str
    requested_by: str
    requested_at: datetime
    status: Literal["open", "answered", "missed"] = "open"


class Ruling(BaseModel):
    decision: RulingDecision
    refund: Money
    rationale: str
    mediator_id: str
    at: datetime
    on_appeal: bool = False


class AppealStage(StrEnum):
    """Where a case's one appeal stands."""

    NONE = "none"  # no appealable ruling yet
    WINDOW_OPEN = "window_open"  # a ruling was made; either party may appeal it
    HEARD = "heard"  # appealed: a senior mediator rules finally
    FINAL = "final"  # ruled on appeal, the appeal withdrawn, or the windows lapsed


class Appeal(BaseModel):
    role: Role
    party_id: str
    reason: str
    new_information: str
    attachments: list[EvidenceRef]
    at: datetime


class Intervention(BaseModel):
    """Stage 4: the platform stepped in."""

    escalated_at: datetime
    escalated_by: Role
    reason: str
    urgent: bool
    urgent_concern: UrgentConcern | None = None
    mediator_id: str | None = None
    # Set by an SLA breach or an appeal: only a senior mediator may take the case.
    needs_senior: bool = False
    # The mediator of the appealed ruling, who may not hear the appeal.
    excluded_mediator_id: str | None = None
    # The newest SLA breaches (a neglected case breaches again and again: the policy's
    # limits.sla_breaches_listed), and how many there were in all.
    sla_breaches: list[DeadlineKind] = Field(default_factory=list)
    sla_breach_count: int = 0
    evidence: list[EvidenceSubmission] = Field(default_factory=list)
    evidence_requests: list[EvidenceRequest] = Field(default_factory=list)
    rulings: list[Ruling] = Field(default_factory=list)
    appeal: Appeal | None = None
    appeal_stage: AppealStage = AppealStage.NONE

    @computed_field
    @property
    def flagged(self) -> bool:
        return bool(self.sla_breaches)


class Advance(BaseModel):
    amount: Money
    two_phase: bool
    ordered_by: str
    rationale: str
    at: datetime
    transfer_id: str
    # outstanding: paid and frozen (or available); final: recovered and kept by the buyer
    # (解冻); clawed_back: returned to the fund (调帐); partly_final: part kept, part returned.
    status: Literal["outstanding", "final", "clawed_back", "partly_final"] = "outstanding"


class ReturnShipment(BaseModel):
    carrier: str
    tracking_number: str
    shipped_at: datetime


class DisputeView(BaseModel):
    dispute_id: str
    order: OrderSnapshot
    state: DisputeState
    request: RefundRequest
    policy_version: str
    opened_at: datetime
    escrow_frozen: Money
    refunded: Money
    offer: Money | None = None
    return_address: str | None = None
    return_shipment: ReturnShipment | None = None
    resubmissions: int = 0
    intervention: Intervention | None = None
    advance: Advance | None = None
    deadlines: list[Deadline] = Field(default_factory=list)
    allowed_actions: dict[Role, list[Action]] = Field(default_factory=dict)
    resolution: Resolution | None = None
    # The newest events (the policy's `limits.events_in_view`); all of them are in the audit trail.
    events: list[DisputeEvent] = Field(default_factory=list)
    events_total: int = 0


class DisputeClosed(BaseModel):
    """A run's result: how the case ended, small whatever the case's length. The final view
    travels once, in the archive activity's input; runs recorded before it returned the view."""

    dispute_id: str
    state: DisputeState
    policy_version: str
    resolution: Resolution | None = None


class Refusal(BaseModel):
    """Why the case would refuse an action now, as its validator would say it."""

    type: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class OpenDeadline(BaseModel):
    """Of a deadline, what a caller acting on the case needs: what, who must act, by when."""

    kind: DeadlineKind
    role: Role
    party_id: str
    due_at: datetime

    @classmethod
    def of(cls, deadline: Deadline) -> "OpenDeadline":
        return cls(kind=deadline.kind, role=deadline.role, party_id=deadline.party_id, due_at=deadline.due_at)


class ActionResult(BaseModel):
    """What an action's Update answers: small whatever the case holds (its deadlines are at
    most one per kind); the whole case is the `view` query."""

    dispute_id: str
    state: DisputeState
    # The case's newest event once the action was applied.
    event_seq: int
    allowed_actions: dict[Role, list[Action]] = Field(default_factory=dict)
    # Soonest first. Answers recorded before deadlines were part of it decode with none.
    deadlines: list[OpenDeadline] = Field(default_factory=list)

    @classmethod
    def of(cls, view: DisputeView) -> "ActionResult":
        """The small answer of a case known by its view (as the archive keeps a closed one)."""
        return cls(dispute_id=view.dispute_id, state=view.state, event_seq=view.events_total,
                   allowed_actions=view.allowed_actions, deadlines=[OpenDeadline.of(d) for d in view.deadlines])


class Opened(ActionResult):
    """What the opening Update answers: the small answer, and the request that started the
    case (its memo's `OPENING_MEMO`), so the API tells whether that was this request."""

    # None from a case started before openings were recorded.
    started_by: str | None = None


# The memo key naming the request that started a dispute (`api.dispute_calls.open_dispute`).
OPENING_MEMO = "opening_request"


class CaseCounts(BaseModel):
    """How often a case did what its limits bound (policy `limits`)."""

    evidence_submissions: dict[Role, int] = Field(default_factory=dict)
    evidence_bytes: int = 0
    evidence_requests: dict[Role, int] = Field(default_factory=dict)
    deadline_extensions: int = 0
    hand_overs: int = 0
    escalations: int = 0


class AnsweredUpdate(BaseModel):
    update_id: str
    result: ActionResult


class CarriedCase(BaseModel):
    """A case's state handed from one run to the next by continue-as-new."""

    state: DisputeState
    request: RefundRequest
    opened_at: datetime
    events: list[DisputeEvent]
    events_total: int
    deadlines: list[Deadline]
    escrow_frozen: int
    refunded: int
    offer: Money | None = None
    return_address: str | None = None
    return_shipment: ReturnShipment | None = None
    resubmissions: int = 0
    resolution: Resolution | None = None
    # The appealed ruling's resolution, which stands again if the appeal is withdrawn.
    appealed_resolution: Resolution | None = None
    intervention: Intervention | None = None
    advance: Advance | None = None
    order_released: bool = False
    counts: CaseCounts = Field(default_factory=CaseCounts)
    # The newest completed actions of earlier runs, oldest first, so a retry is answered again.
    answered: list[AnsweredUpdate] = Field(default_factory=list)
    # The reporting read model's facts; None when carried by a run from before reporting.
    facts: CaseFacts | None = None


# ---- activity inputs and results ---------------------------------------------------


class FreezeEscrow(BaseModel):
    dispute_id: str
    order_id: str
    seller_id: str
    currency: CurrencyCode


class EscrowFrozen(BaseModel):
    transfer_id: str | None
    amount: int


class SettleDispute(CaseParties):
    """Close the dispute's money: refund the buyer, release the rest of escrow to the seller."""

    refund: int
    step: str


class PayAdvance(BaseModel):
    dispute_id: str
    order_id: str
    buyer_id: str
    currency: CurrencyCode
    amount: int
    two_phase: bool


class AdjustAfterAppeal(CaseParties):
    """Move the difference between the first and the final ruling's refund."""

    # Positive: the buyer gets more (from the seller); negative: the buyer gives back.
    delta: int


class ReleaseOrder(BaseModel):
    order_id: str
    dispute_id: str
    # The platform ruled on the case, so no new dispute may re-litigate the order.
    ruled: bool = False


class CaseSnapshot(BaseModel):
    """The case as it stands after event `seq`: what the casebook (the read model of cases
    behind the mediators' queue) keeps one row of. A later `seq` always replaces an earlier one."""

    # The number of the case's last event, counted from its opening: it never goes back.
    seq: int
    order_id: str
    buyer_id: str
    seller_id: str
    state: DisputeState
    reason: ReasonCategory
    requested: Money
    opened_at: datetime
    escalated_at: datetime | None = None
    urgent: bool = False
    urgent_concern: UrgentConcern | None = None
    awaiting_mediator: bool = False
    needs_senior: bool = False
    mediator_id: str | None = None
    next_due_at: datetime | None = None
    next_due_kind: DeadlineKind | None = None


class Notification(NotificationMessage):
    """The notify activity's input: the message, and the case it tells about."""

    # Carried so the casebook follows the case; None in notifications recorded before it.
    case: CaseSnapshot | None = None
    # Likewise the reporting read model (reporting.facts), on the same notifications as `case`.
    report: CaseFacts | None = None


class Notifications(BaseModel):
    """The notify_all activity's input: every message one change of a case sends (to each of its
    recipients), and the case as it stands after it, carried once for all of them."""

    dispute_id: str
    messages: list[NotificationMessage]
    # For the casebook and reporting read models; None where the case has no read model (complaints).
    case: CaseSnapshot | None = None
    report: CaseFacts | None = None


DisputeInput.model_rebuild()

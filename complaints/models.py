"""Pydantic models crossing the complaint and standing workflows' boundaries.

Recorded in Temporal history: add fields with defaults, never repurpose one.
"""

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, Field

from complaints.policy import ComplaintPolicy, ComplaintType, StandingPolicy, ViolationClass
from identity import Actor, Role
from money import Money
from workflows.actions import ActionArgs
from workflows.models import EvidenceRef, PartyId, Text


class ComplaintState(StrEnum):
    WAIT_SELLER_RESPONSE = "WAIT_SELLER_RESPONSE"
    PLATFORM_REVIEW = "PLATFORM_REVIEW"  # contested: a mediator decides
    UPHELD = "UPHELD"  # a violation; the seller may appeal within the window
    APPEALED = "APPEALED"  # a senior mediator decides the appeal
    REJECTED = "REJECTED"  # closed: the complaint did not stand
    OVERTURNED = "OVERTURNED"  # closed: the seller's appeal was upheld


FINAL_STATES = (ComplaintState.REJECTED, ComplaintState.OVERTURNED)


class ComplaintAction(StrEnum):
    SELLER_ACCEPT = "seller_accept"
    SELLER_CONTEST = "seller_contest"
    MEDIATOR_REQUEST_EVIDENCE = "mediator_request_evidence"
    PARTY_SUBMIT_EVIDENCE = "party_submit_evidence"
    MEDIATOR_DECIDE = "mediator_decide"
    SELLER_APPEAL = "seller_appeal"
    SENIOR_DECIDE_APPEAL = "senior_decide_appeal"


class Fault(StrEnum):
    SELLER = "seller"  # 卖责
    BUYER = "buyer"  # 买责
    NONE = "none"


class Decision(StrEnum):
    UPHOLD = "uphold"
    REJECT = "reject"


class AppealDecision(StrEnum):
    UPHOLD_APPEAL = "uphold_appeal"  # the seller was right: the complaint is overturned
    REJECT_APPEAL = "reject_appeal"  # the complaint stands, final


class ComplaintOrder(BaseModel):
    order_id: PartyId
    buyer_id: PartyId
    seller_id: PartyId
    paid: Money


class ComplaintInput(BaseModel):
    complaint_id: str
    order: ComplaintOrder
    complaint_type: ComplaintType
    description: Text
    evidence: list[EvidenceRef] = Field(default_factory=list, max_length=20)
    filed_by: Actor
    policy: ComplaintPolicy


# ---- update arguments ----------------------------------------------------------------------
# Each complaint action is declared once, by its arguments (see `workflows.actions`); its
# docstring is its route's summary.


class ComplaintArgs(ActionArgs):
    """The arguments of a complaint action."""


class SellerAccept(ComplaintArgs, action=ComplaintAction.SELLER_ACCEPT):
    """The seller accepts the complaint: upheld, with its violation and any compensation; no appeal."""

    note: Text | None = None


class _Evidenced(ComplaintArgs):
    text: Text
    evidence: list[EvidenceRef] = Field(default_factory=list, max_length=20)


class SellerContest(_Evidenced, action=ComplaintAction.SELLER_CONTEST):
    """The seller contests the complaint with evidence (举证); a mediator decides."""


class MediatorRequestComplaintEvidence(ComplaintArgs, action=ComplaintAction.MEDIATOR_REQUEST_EVIDENCE):
    """A mediator asks the buyer or the seller for evidence, with the policy's deadline."""

    party: Role
    request: Text


class PartySubmitComplaintEvidence(_Evidenced, action=ComplaintAction.PARTY_SUBMIT_EVIDENCE):
    """The party asked submits evidence."""


class MediatorDecide(ComplaintArgs, action=ComplaintAction.MEDIATOR_DECIDE):
    """A mediator upholds (卖责) or rejects (买责 or no one at fault) the complaint, with a rationale."""

    decision: Decision
    rationale: Text
    fault: Fault


class SellerAppeal(ComplaintArgs, action=ComplaintAction.SELLER_APPEAL):
    """The seller appeals an upheld complaint, once, within the appeal window; a senior mediator decides."""

    reason: Text
    new_information: Text


class SeniorDecideAppeal(ComplaintArgs, action=ComplaintAction.SENIOR_DECIDE_APPEAL):
    """A senior mediator upholds the appeal (points removed, compensation returned) or rejects it."""

    decision: AppealDecision
    rationale: Text


COMPLAINT_ARGS = ComplaintArgs.actions


# ---- the complaint's view ------------------------------------------------------------------


class ComplaintEvent(BaseModel):
    at: AwareDatetime
    kind: str
    # The party who acted, or None when a timer decided.
    actor: Actor | None = None
    text: str | None = None


class EvidenceSubmission(BaseModel):
    at: AwareDatetime
    party: Role
    text: str
    evidence: list[EvidenceRef]


class EvidenceRequest(BaseModel):
    party: Role
    request: str
    requested_at: AwareDatetime
    due_at: AwareDatetime
    answered_at: AwareDatetime | None = None
    missed: bool = False


class Outcome(BaseModel):
    """Who or what decided the complaint, and why."""

    decision: Decision
    fault: Fault
    rationale: str
    decided_by: Actor | None  # None: the seller's silence upheld it
    decided_at: AwareDatetime


class Appeal(BaseModel):
    reason: str
    new_information: str
    appealed_at: AwareDatetime
    decision: AppealDecision | None = None
    rationale: str | None = None
    decided_by: Actor | None = None
    decided_at: AwareDatetime | None = None


class CompensationPaid(BaseModel):
    amount: Money
    transfer_id: str
    reversed_by: str | None = None  # the transfer returning it after an upheld appeal


class ComplaintView(BaseModel):
    complaint_id: str
    state: ComplaintState
    complaint_type: str
    violation_class: ViolationClass
    points: int
    description: str
    evidence: list[EvidenceRef]
    order: ComplaintOrder
    filed_by: Actor
    filed_at: AwareDatetime
    policy_version: str
    # The deadline now running (seller response, evidence, appeal), if any.
    deadline: AwareDatetime | None = None
    deadline_kind: str | None = None
    evidence_requests: list[EvidenceRequest] = Field(default_factory=list)
    submissions: list[EvidenceSubmission] = Field(default_factory=list)
    outcome: Outcome | None = None
    appeal: Appeal | None = None
    compensation: CompensationPaid | None = None
    # The violation is on the seller's standing (False again once an upheld appeal removed it).
    violation_recorded: bool = False
    # Closed for good: nothing can change it any more.
    final: bool = False
    allowed_actions: dict[Role, list[ComplaintAction]] = Field(default_factory=dict)
    events: list[ComplaintEvent] = Field(default_factory=list)
    events_total: int = 0


class ActionResult(BaseModel):
    state: ComplaintState


# ---- activities ------------------------------------------------------------------------------


class PayCompensation(BaseModel):
    complaint_id: str
    buyer_id: str
    seller_id: str
    amount: Money


class ReverseCompensation(BaseModel):
    complaint_id: str
    buyer_id: str
    seller_id: str
    amount: Money


class Violation(BaseModel):
    """An upheld complaint, as the seller's standing counts it."""

    violation_id: str  # the complaint's id: a redelivery carries the same one
    rule: str
    violation_class: ViolationClass
    points: int
    at: AwareDatetime


class DeliverViolation(BaseModel):
    seller_id: str
    violation: Violation
    # Starts the seller's standing under this policy if it has none yet.
    policy: StandingPolicy


class WithdrawViolation(BaseModel):
    seller_id: str
    violation_id: str
    policy: StandingPolicy


class ReleaseFiling(BaseModel):
    order_id: str
    complaint_type: str
    complaint_id: str


# ---- the seller standing -------------------------------------------------------------------


class Penalty(BaseModel):
    penalty_id: str
    violation_class: ViolationClass
    threshold: int
    measures: list[str]
    started_at: AwareDatetime
    ends_at: AwareDatetime | None  # None: permanent
    ended_at: AwareDatetime | None = None
    # "expired" (its timer), or "appeal" (an upheld appeal took the points that imposed it).
    end_reason: str | None = None


class CountedViolation(Violation):
    removed: bool = False  # an upheld appeal took it back
    reset: bool = False  # the class's points were reset since


class StandingState(BaseModel):
    """Everything a standing keeps, carried whole into the next run."""

    seller_id: str
    points: dict[ViolationClass, int] = Field(default_factory=dict)
    # Thresholds whose penalty was imposed in the current counting period, per class.
    imposed: dict[ViolationClass, list[int]] = Field(default_factory=dict)
    violations: list[CountedViolation] = Field(default_factory=list)
    violations_total: int = 0
    delivered_ids: list[str] = Field(default_factory=list)
    active: list[Penalty] = Field(default_factory=list)
    # Ended penalties, newest last (bounded like the violations).
    ended: list[Penalty] = Field(default_factory=list)
    penalties_total: int = 0
    last_reset: dict[ViolationClass, AwareDatetime] = Field(default_factory=dict)
    revision: int = 0


class StandingInput(BaseModel):
    seller_id: str
    policy: StandingPolicy
    carried: StandingState | None = None


class StandingView(BaseModel):
    seller_id: str
    policy_version: str
    points: dict[ViolationClass, int]
    under_penalty: bool
    active_penalties: list[Penalty]
    ended_penalties: list[Penalty]
    violations: list[CountedViolation]
    violations_total: int
    next_reset: dict[ViolationClass, AwareDatetime | None]
    revision: int


class StandingSummary(BaseModel):
    """What the read model of sellers under penalty keeps of a standing."""

    seller_id: str
    revision: int
    points_a: int
    points_b: int
    under_penalty: bool
    measures: list[str]
    # When the last timed penalty ends (None: none, or only permanent ones).
    penalty_ends_at: datetime | None

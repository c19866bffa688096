"""Pydantic models crossing the complaint and standing workflows' boundaries.

Recorded in Temporal history: add fields with defaults, never repurpose one.
"""

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from complaints.policy import ComplaintPolicy, ComplaintType, StandingPolicy, ViolationClass
from identity import Actor, Role
from money import Money
from workflows.models import EvidenceRef, PartyId, Text


class ActionBase(BaseModel):
    """What a client sends for a complaint action (the API's request body)."""

    model_config = ConfigDict(extra="forbid")


class Acting(BaseModel):
    """The update's argument carries the actor inside it, the shape the recorded histories hold."""

    actor: Actor

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


# ---- update arguments: `...Base` is the request body, the subclass adds the actor ----------


class SellerAcceptBase(ActionBase):
    note: Text | None = None


class SellerAccept(SellerAcceptBase, Acting):
    pass


class EvidenceBase(ActionBase):
    text: Text
    evidence: list[EvidenceRef] = Field(default_factory=list, max_length=20)


class SellerContestBase(EvidenceBase):
    pass


class SellerContest(SellerContestBase, Acting):
    pass


class MediatorRequestEvidenceBase(ActionBase):
    party: Role
    request: Text


class MediatorRequestEvidence(MediatorRequestEvidenceBase, Acting):
    pass


class PartySubmitEvidenceBase(EvidenceBase):
    pass


class PartySubmitEvidence(PartySubmitEvidenceBase, Acting):
    pass


class MediatorDecideBase(ActionBase):
    decision: Decision
    rationale: Text
    fault: Fault


class MediatorDecide(MediatorDecideBase, Acting):
    pass


class SellerAppealBase(ActionBase):
    reason: Text
    new_information: Text


class SellerAppeal(SellerAppealBase, Acting):
    pass


class SeniorDecideAppealBase(ActionBase):
    decision: AppealDecision
    rationale: Text


class SeniorDecideAppeal(SeniorDecideAppealBase, Acting):
    pass


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

"""What the reporting read model knows of a case, folded from its events as they happen.

The workflow keeps one `CaseFacts` and folds every event it records into it (`observe`), on
the case's own clock; each notification carries a copy, and the notification activity writes
it to the read model in the outbox's transaction. Pure and deterministic (workflow code): it
imports no workflow module, so `workflows.models` can carry it.
"""

from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from identity import Role
from money import Money
from policy.model import Milestone, Policy, ServiceLevel, Urgency

if TYPE_CHECKING:
    from workflows.models import DisputeEvent

SlaOutcome = Literal["met", "breached", "void"]
AppealResult = Literal["upheld", "changed", "withdrawn"]

_TERMINAL = ("SUCCESS", "CLOSED")
_INTERVENING = "PLATFORM_INTERVENING"
# Events by the platform that are not an action on the case's merits.
_NOT_ACTIONS = ("opened", "calendar_updated")


class SlaClock(BaseModel):
    """One service level of one case: from its start to its stop, against its due time."""

    name: str
    started_at: datetime
    due_at: datetime
    stopped_at: datetime | None = None
    # None while it runs; void when the case ended before it was due without it stopping.
    outcome: SlaOutcome | None = None


class CaseFacts(BaseModel):
    seq: int = 0
    order_id: str
    buyer_id: str
    seller_id: str
    reason: str
    currency: str
    requested: int
    opened_at: datetime
    state: str = "WAIT_SELLER_AGREE"
    urgent: bool = False
    urgent_concern: str | None = None
    milestones: dict[Milestone, datetime] = Field(default_factory=dict)
    escalations: int = 0
    # The mediator who last took or ruled on the case: whose figures it counts in.
    mediator_id: str | None = None
    # The latest close: when, how, and who or which timer decided it.
    closed_at: datetime | None = None
    outcome: str | None = None
    decided_by: str | None = None
    refunded: int = 0
    advanced: int = 0
    first_decision: str | None = None
    first_refund: int | None = None
    appealed_at: datetime | None = None
    appealed_by: Role | None = None
    appeal_result: AppealResult | None = None
    slas: list[SlaClock] = Field(default_factory=list)

    def observe(self, event: "DisputeEvent", policy: Policy) -> None:
        """Fold the case's next event in; the service levels are evaluated as of its time."""
        self.seq = event.seq
        self.state = event.state_after.value
        actor = event.actor
        role = actor.role if actor is not None else None
        if role == Role.SELLER:
            self._first(Milestone.SELLER_FIRST_ACTION, event.at)
        elif role in (Role.MEDIATOR, Role.PLATFORM) and event.kind not in _NOT_ACTIONS:
            self._first(Milestone.PLATFORM_FIRST_ACTION, event.at)
        details = event.details
        before = event.state_before.value if event.state_before is not None else None
        if event.kind == "buyer_revised":
            self.reason = details["request"]["reason"]
            self.requested = details["request"]["amount"]["amount"]
        if self.state == _INTERVENING and before != _INTERVENING and event.kind != "appealed":
            self.escalations += 1
            self._first(Milestone.ESCALATED, event.at)
            self.urgent = bool(details.get("urgent"))
            self.urgent_concern = details.get("urgent_concern")
        if event.kind == "mediator_took":
            self._first(Milestone.MEDIATOR_TOOK, event.at)
            self.mediator_id = actor.party_id
        elif event.kind == "mediator_ruled":
            self._ruled(event)
        elif event.kind == "appealed":
            self.appealed_at, self.appealed_by, self.outcome = event.at, role, None
        elif event.kind == "appeal_withdrawn":
            self.appeal_result = "withdrawn"
        elif event.kind == "advance_paid":
            self.advanced += details["amount"]
        if self.state in _TERMINAL and (before not in _TERMINAL or event.kind == "appeal_withdrawn"):
            self._closed(event)
        self.evaluate(policy, event.at)

    def evaluate(self, policy: Policy, now: datetime) -> None:
        """The policy's service levels of this case as of `now`."""
        self.slas = [clock for level in policy.service_levels
                     if (clock := self._clock(level, policy, now)) is not None]

    def _first(self, milestone: Milestone, at: datetime) -> None:
        self.milestones.setdefault(milestone, at)

    def _ruled(self, event: "DisputeEvent") -> None:
        self._first(Milestone.RULED, event.at)
        self.mediator_id = event.actor.party_id
        decision, refund = event.details["decision"], event.details.get("refund")
        if event.details.get("on_appeal"):
            same = decision == self.first_decision and refund == self.first_refund
            self.appeal_result = "upheld" if same else "changed"
        else:
            self.first_decision, self.first_refund = decision, refund

    def _closed(self, event: "DisputeEvent") -> None:
        self._first(Milestone.CLOSED, event.at)
        self.closed_at, self.outcome = event.at, self.state
        if "refund" in event.details:  # a withdrawn appeal lets the earlier refund stand
            self.refunded = event.details["refund"]
        actor = event.actor
        self.decided_by = (f"{actor.role.value}:{actor.party_id}" if actor is not None
                           else f"timer:{event.timer.value}" if event.timer is not None else None)

    def _clock(self, level: ServiceLevel, policy: Policy, now: datetime) -> SlaClock | None:
        started = self.milestones.get(level.start)
        if started is None or not _applies(level.applies_to, self.urgent):
            return None
        due = policy.due_at(started, level.target)
        stops = [self.milestones[m] for m in level.stop if m in self.milestones and self.milestones[m] >= started]
        stopped = min(stops, default=None)
        if stopped is not None:
            outcome: SlaOutcome | None = "met" if stopped <= due else "breached"
        elif self.state in _TERMINAL:
            assert self.closed_at is not None
            outcome = "breached" if self.closed_at >= due else "void"
        else:
            outcome = "breached" if now >= due else None
        return SlaClock(name=level.name, started_at=started, due_at=due, stopped_at=stopped, outcome=outcome)


def _applies(applies_to: Urgency, urgent: bool) -> bool:
    return applies_to == Urgency.ANY or (applies_to == Urgency.URGENT) == urgent


def opening_facts(order_id: str, buyer_id: str, seller_id: str, reason: str, requested: Money,
                  opened_at: datetime) -> CaseFacts:
    return CaseFacts(order_id=order_id, buyer_id=buyer_id, seller_id=seller_id, reason=reason,
                     currency=requested.currency, requested=requested.amount, opened_at=opened_at,
                     milestones={Milestone.OPENED: opened_at})

"""The checks an action must pass beyond the life-cycle table (`workflows.lifecycle`): the
actor is the order's party or a mediator allowed on the case, and what it sends fits the
order, the request and the case's limits. Pure functions, used by the workflow's validators.
"""

from temporalio.exceptions import ApplicationError

from identity import Actor, Role
from money import Money
from policy import CaseLimits
from workflows import lifecycle
from workflows.intervention import hears_appeal
from workflows.models import (
    Action,
    CaseCounts,
    EvidenceRef,
    StoredEvidence,
    DisputeKind,
    DisputeState,
    Intervention,
    MediatorOrderAdvance,
    MediatorRule,
    OrderSnapshot,
    ReasonCategory,
    RefundRequest,
    RulingDecision,
)

# Failure types the API maps to HTTP statuses (api/problems.py).
FORBIDDEN = "Forbidden"
NOT_ALLOWED_NOW = "ActionNotAllowed"
INVALID = "InvalidAction"
ADVANCE_REFUSED = "AdvanceRefused"
REFUND_EXCEEDS_REMAINING = "RefundExceedsRemaining"

def check_party(action: Action, actor: Actor, order: OrderSnapshot, intervention: Intervention | None) -> None:
    """The actor is one the table lets take `action` at all, and on this order."""
    actors = lifecycle.actors_of(action)
    if actors == (Role.MEDIATOR,):
        check_mediator(action, actor, intervention)
        return
    parties = {Role.BUYER: order.buyer_id, Role.SELLER: order.seller_id}
    if not (actor.role in actors and parties.get(actor.role) == actor.party_id):
        who = " or the ".join(role.value for role in actors)
        raise forbidden(f"only the {who} of order {order.order_id} may {action.value}")
    if action == Action.PARTY_WITHDRAW_APPEAL and intervention is not None and intervention.appeal is not None \
            and actor.role != intervention.appeal.role:
        raise forbidden(f"only the {intervention.appeal.role.value}, who appealed, may withdraw the appeal")


def check_mediator(action: Action, actor: Actor, intervention: Intervention | None) -> None:
    if actor.role != Role.MEDIATOR:
        raise forbidden(f"only a mediator may {action.value}")
    if intervention is None:
        return  # the state check refuses it with the reason
    if action == Action.MEDIATOR_TAKE:
        if intervention.needs_senior and not actor.senior:
            why = "it is an appeal" if hears_appeal(intervention) else "it breached its SLA"
            raise forbidden(f"only a senior mediator may take this case: {why}")
        if actor.party_id == intervention.excluded_mediator_id:
            raise forbidden("the mediator of the appealed ruling may not hear the appeal")
        return
    if actor.party_id == intervention.excluded_mediator_id:
        # Seniors may act on cases assigned to others, but never on the appeal of their own ruling.
        raise forbidden("the mediator of the appealed ruling may not hear the appeal")
    assigned = intervention.mediator_id
    if assigned is not None and actor.party_id != assigned and not actor.senior:
        raise forbidden(f"the case is assigned to mediator {assigned}; only they or a senior mediator may act")


def check_untaken(actor: Actor, state: DisputeState, intervention: Intervention | None) -> None:
    """A mediator who lost the race for a case is told who won it (`taken_by`)."""
    taken_by = intervention.mediator_id if intervention is not None else None
    if actor.role == Role.MEDIATOR and state == DisputeState.PLATFORM_INTERVENING and taken_by is not None:
        raise ApplicationError(f"{Action.MEDIATOR_TAKE.value} is not possible: mediator {taken_by} has already "
                               "taken this case",
                               {"state": state.value, "taken_by": taken_by}, type=NOT_ALLOWED_NOW,
                               non_retryable=True)


def check_request_fits_order(request: RefundRequest, order: OrderSnapshot) -> None:
    if request.amount.currency != order.paid.currency:
        raise invalid(f"the order was paid in {order.paid.currency}; a refund request must use it too")
    if request.amount.amount <= 0:
        raise invalid("the requested amount must be more than 0")
    remaining = order.refundable
    if request.amount.amount > remaining.amount:
        before = order.refunded_before
        refunded = f" and earlier disputes refunded {before}" if before is not None and before.amount else ""
        raise ApplicationError(
            f"the requested amount may not exceed the {remaining} the order can still refund (paid {order.paid}"
            f"{refunded})",
            {"remaining": remaining.model_dump(mode="json")}, type=REFUND_EXCEEDS_REMAINING, non_retryable=True)
    if request.kind == DisputeKind.RETURN_AND_REFUND and not order.shipped:
        raise invalid("nothing was shipped, so there is nothing to return: request a refund only")


def check_attachments(attachments: list[EvidenceRef], limits: CaseLimits) -> None:
    """The attachment limits every action carrying attachments shares."""
    if len(attachments) > limits.attachments_per_submission:
        raise over_limit("attachments_per_submission", limits.attachments_per_submission,
                         f"at most {limits.attachments_per_submission} attachments per action")
    longest = max((len(a.url) for a in attachments), default=0)
    if longest > limits.attachment_url_chars:
        raise over_limit("attachment_url_chars", limits.attachment_url_chars,
                         f"an attachment URL may have at most {limits.attachment_url_chars} characters")


def check_evidence(stored: StoredEvidence, role: Role, counts: CaseCounts, limits: CaseLimits) -> None:
    submitted = counts.evidence_submissions.get(role, 0)
    if submitted >= limits.evidence_submissions_per_party:
        raise over_limit("evidence_submissions_per_party", limits.evidence_submissions_per_party,
                         f"the {role.value} has submitted evidence {submitted} times, the most a case allows")
    if stored.text_chars > limits.evidence_text_chars:
        raise over_limit("evidence_text_chars", limits.evidence_text_chars,
                         f"evidence text may have at most {limits.evidence_text_chars} characters")
    if stored.attachments > limits.attachments_per_submission:
        raise over_limit("attachments_per_submission", limits.attachments_per_submission,
                         f"at most {limits.attachments_per_submission} attachments per action")
    if stored.longest_url_chars > limits.attachment_url_chars:
        raise over_limit("attachment_url_chars", limits.attachment_url_chars,
                         f"an attachment URL may have at most {limits.attachment_url_chars} characters")
    if counts.evidence_bytes + stored.size > limits.evidence_bytes_per_case:
        raise over_limit("evidence_bytes_per_case", limits.evidence_bytes_per_case,
                         f"the case holds {counts.evidence_bytes} bytes of evidence; this {stored.size} more "
                         f"would pass the limit of {limits.evidence_bytes_per_case}")


def check_count(name: str, done: int, limit: int, what: str) -> None:
    """A repeatable action done `done` times may not pass its limit."""
    if done >= limit:
        raise over_limit(name, limit, f"{what} {done} times, the most a case allows")


def over_limit(name: str, limit: int, message: str) -> ApplicationError:
    return ApplicationError(f"{message} (limit {name} = {limit})", {"limit": name, "max": limit},
                            type=INVALID, non_retryable=True)


def forbidden(message: str) -> ApplicationError:
    return ApplicationError(message, type=FORBIDDEN, non_retryable=True)


def not_allowed(message: str, state: DisputeState) -> ApplicationError:
    return ApplicationError(message, {"state": state.value}, type=NOT_ALLOWED_NOW, non_retryable=True)


def invalid(message: str) -> ApplicationError:
    return ApplicationError(message, type=INVALID, non_retryable=True)


# Seed 004: the platform advances payment when the goods did not arrive or are defective.
ADVANCE_REASONS = (ReasonCategory.NOT_RECEIVED, ReasonCategory.QUALITY, ReasonCategory.DAMAGED)


def check_advance(order_advance: MediatorOrderAdvance, request: RefundRequest, order: OrderSnapshot,
                  already_advanced: bool, has_return_address: bool) -> None:
    if already_advanced:
        raise invalid("this case already had its advance payment")
    if request.reason not in ADVANCE_REASONS:
        raise invalid(f"an advance is for goods not received or defective, not for {request.reason.value}")
    amount, requested = order_advance.amount, request.amount
    if amount.currency != requested.currency:
        raise invalid(f"the advance must be in {requested.currency}, the currency of the request")
    if not 0 < amount.amount <= requested.amount:
        raise invalid(f"an advance must be more than 0 and at most the disputed {requested}")
    if order_advance.return_goods:
        if not order.shipped:
            raise invalid("nothing was shipped, so there is nothing to return")
        if not (has_return_address or order_advance.return_address):
            raise invalid("the seller has given no return address: include one with the advance")


def ruling_refund(decision: RulingDecision, amount: Money | None, requested: Money) -> int:
    if decision == RulingDecision.PARTIAL_REFUND:
        assert amount is not None
        return amount.amount
    if decision == RulingDecision.REJECT:
        return 0
    return requested.amount


def check_ruling(ruling: MediatorRule, requested: Money, order: OrderSnapshot, intervention: Intervention,
                 has_return_address: bool) -> None:
    decision = ruling.decision
    if decision == RulingDecision.PARTIAL_REFUND:
        if ruling.amount is None:
            raise invalid("a partial refund needs an amount")
        if ruling.amount.currency != requested.currency:
            raise invalid(f"the refund must be in {requested.currency}, the currency of the request")
        if not 0 < ruling.amount.amount <= requested.amount:
            raise invalid(f"a partial refund must be more than 0 and at most the requested {requested}")
    elif ruling.amount is not None:
        raise invalid(f"an amount goes only with a partial refund, not with {decision.value}")
    if decision == RulingDecision.REFUND_AFTER_RETURN:
        if hears_appeal(intervention):
            raise invalid("an appeal ends in a final ruling: full refund, partial refund or reject")
        if not order.shipped:
            raise invalid("nothing was shipped, so there is nothing to return")
        if not (has_return_address or ruling.return_address):
            raise invalid("the seller has given no return address: include one in the ruling")

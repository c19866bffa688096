"""Who may do what to a complaint, and when: pure functions shared by the workflow's Update
validators and its view, so the actions a client is offered are exactly those it may take.
Refusals use the dispute rules' failure types, which the API maps to 403/409/422."""

from temporalio.exceptions import ApplicationError

from complaints.models import (
    ComplaintAction,
    ComplaintState,
    Decision,
    EvidenceRequest,
    EvidenceSubmission,
    Fault,
    MediatorDecide,
    Outcome,
)
from complaints.policy import ComplaintPolicy
from identity import Actor, Role
from workflows.models import EvidenceRef
from workflows.rules import FORBIDDEN, INVALID, NOT_ALLOWED_NOW

S = ComplaintState
A = ComplaintAction

_ROLE_OF = {
    A.SELLER_ACCEPT: Role.SELLER, A.SELLER_CONTEST: Role.SELLER, A.SELLER_APPEAL: Role.SELLER,
    A.MEDIATOR_REQUEST_EVIDENCE: Role.MEDIATOR, A.MEDIATOR_DECIDE: Role.MEDIATOR,
    A.SENIOR_DECIDE_APPEAL: Role.MEDIATOR,
}


def allowed_actions(state: ComplaintState, outcome: Outcome | None, appeal_open: bool,
                    open_requests: list[EvidenceRequest]) -> dict[Role, list[ComplaintAction]]:
    allowed: dict[Role, list[ComplaintAction]] = {}
    if state == S.WAIT_SELLER_RESPONSE:
        allowed[Role.SELLER] = [A.SELLER_ACCEPT, A.SELLER_CONTEST]
    elif state == S.PLATFORM_REVIEW:
        allowed[Role.MEDIATOR] = [A.MEDIATOR_REQUEST_EVIDENCE, A.MEDIATOR_DECIDE]
        for request in open_requests:
            allowed.setdefault(request.party, []).append(A.PARTY_SUBMIT_EVIDENCE)
    elif state == S.UPHELD and appeal_open and not seller_accepted(outcome):
        allowed[Role.SELLER] = [A.SELLER_APPEAL]
    elif state == S.APPEALED:
        allowed[Role.MEDIATOR] = [A.SENIOR_DECIDE_APPEAL]
    return allowed


def seller_accepted(outcome: Outcome | None) -> bool:
    """A complaint the seller accepted is not its to appeal."""
    return outcome is not None and outcome.decided_by is not None and outcome.decided_by.role == Role.SELLER


def actors_of(action: ComplaintAction) -> tuple[Role, ...]:
    """Who may take the action (its route's roles): its one role, or the party asked for evidence."""
    return (_ROLE_OF[action],) if action in _ROLE_OF else (Role.BUYER, Role.SELLER)


def check_action(action: ComplaintAction, actor: Actor, parties: dict[Role, str],
                 allowed: dict[Role, list[ComplaintAction]]) -> None:
    """Refuse an action by the wrong party, or one the complaint does not take now."""
    role = _ROLE_OF.get(action)
    if role is not None and actor.role != role or action == A.PARTY_SUBMIT_EVIDENCE and actor.role not in parties:
        raise refusal(FORBIDDEN, f"A {actor.role.value} may not {action.value}.")
    if actor.role in parties and parties[actor.role] != actor.party_id:
        raise refusal(FORBIDDEN, f"{actor.party_id} is not this complaint's {actor.role.value}.")
    if action == A.SENIOR_DECIDE_APPEAL and not actor.senior:
        raise refusal(FORBIDDEN, "Only a senior mediator decides an appeal.")
    if action not in allowed.get(actor.role, []):
        raise refusal(NOT_ALLOWED_NOW, f"{action.value} is not possible now.")


def check_decision(decision: MediatorDecide) -> None:
    """An upheld complaint is the seller's fault (卖责); a rejected one is not."""
    if (decision.decision == Decision.UPHOLD) != (decision.fault == Fault.SELLER):
        raise refusal(INVALID, "An upheld complaint records the seller at fault (卖责); a rejected one the buyer "
                               "(买责) or no one.")


def check_evidence(evidence: list[EvidenceRef], policy: ComplaintPolicy) -> None:
    if len(evidence) > policy.evidence_per_action:
        raise refusal(INVALID, f"At most {policy.evidence_per_action} pieces of evidence per action.",
                      limit="evidence_per_action", maximum=policy.evidence_per_action)


def check_submission(role: Role, submissions: list[EvidenceSubmission], policy: ComplaintPolicy) -> None:
    made = sum(1 for s in submissions if s.party == role)
    if made >= policy.evidence_submissions_per_party:
        raise refusal(INVALID, f"The {role.value} has submitted evidence {made} times, the most a complaint allows.",
                      limit="evidence_submissions_per_party", maximum=policy.evidence_submissions_per_party)


def check_request(party: Role, requests: list[EvidenceRequest], policy: ComplaintPolicy) -> None:
    if party not in (Role.BUYER, Role.SELLER):
        raise refusal(INVALID, "Evidence is requested from the buyer or the seller.")
    if any(r.party == party and r.answered_at is None and not r.missed for r in requests):
        raise refusal(NOT_ALLOWED_NOW, f"The {party.value} already has an open evidence request.")
    if len(requests) >= policy.evidence_requests:
        raise refusal(INVALID, f"At most {policy.evidence_requests} evidence requests per complaint.",
                      limit="evidence_requests", maximum=policy.evidence_requests)


def refusal(failure_type: str, message: str, **details: object) -> ApplicationError:
    return ApplicationError(message, details, type=failure_type, non_retryable=True)

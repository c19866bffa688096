from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import ServicesDep, require_roles
from api.problems import PROBLEM_RESPONSES, Problem, problem_type
from api.schemas import MediationQueue, QueuedCase
from casebook.models import OpenCase
from casebook.service import Casebook, InvalidCursor, QueueFilter
from identity import Actor, Role
from money import Money
from workflows.models import ReasonCategory

router = APIRouter(prefix="/mediation", tags=["mediation"], responses=PROBLEM_RESPONSES)

MediatorActor = Annotated[Actor, Depends(require_roles(Role.MEDIATOR))]


@router.get("/queue", operation_id="mediation_queue", response_model=MediationQueue)
def mediation_queue(
    actor: MediatorActor,
    services: ServicesDep,
    reason: ReasonCategory | None = None,
    urgent: bool | None = None,
    needs_senior: bool | None = None,
    mine: Annotated[bool, Query(description="The caller's own open cases instead of those awaiting a mediator")]
    = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    cursor: Annotated[str | None, Query(max_length=400, description="`next_cursor` of the previous page")] = None,
) -> MediationQueue:
    """Cases awaiting a mediator (or, with `mine`, the caller's), the most pressing SLA first,
    ordered across the whole queue before the page is cut."""
    criteria = QueueFilter(reason=reason, urgent=urgent, needs_senior=needs_senior,
                         mediator_id=actor.party_id if mine else None)
    try:
        page = Casebook(services.engine).queue(criteria, limit=limit, cursor=cursor)
    except InvalidCursor as error:
        raise Problem(422, "Invalid cursor", str(error), type=problem_type("invalid-cursor")) from error
    items = [_queued(case) for case in page.cases]
    return MediationQueue(items=items, count=len(items), total=page.total, next_cursor=page.next_cursor)


def _queued(case: OpenCase) -> QueuedCase:
    return QueuedCase(
        dispute_id=case.dispute_id, order_id=case.order_id, buyer_id=case.buyer_id, seller_id=case.seller_id,
        state=case.state, reason=case.reason, next_deadline=case.next_due_at, next_deadline_kind=case.next_due_kind,
        mediator_id=case.mediator_id, awaiting_mediator=case.awaiting_mediator, urgent=case.urgent,
        urgent_concern=case.urgent_concern, needs_senior=case.needs_senior, opened_at=case.opened_at,
        escalated_at=case.escalated_at, closed_at=None,
        requested=Money(amount=case.amount_requested, currency=case.currency),
    )

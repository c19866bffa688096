from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api import dispute_calls
from api.deps import TemporalDep, require_roles
from api.problems import PROBLEM_RESPONSES
from api.schemas import DisputeList
from config.temporal import SearchAttributes, cases_of
from identity import Actor, Role
from workflows.dispute import DisputeWorkflow
from workflows.models import ReasonCategory

router = APIRouter(prefix="/mediation", tags=["mediation"], responses=PROBLEM_RESPONSES)

MediatorActor = Annotated[Actor, Depends(require_roles(Role.MEDIATOR))]


@router.get("/queue", operation_id="mediation_queue", response_model=DisputeList)
async def mediation_queue(
    actor: MediatorActor,
    temporal: TemporalDep,
    reason: ReasonCategory | None = None,
    urgent: bool | None = None,
    needs_senior: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> DisputeList:
    """Cases awaiting a mediator, the most pressing SLA first."""
    clauses = [cases_of(DisputeWorkflow.__name__), f"{SearchAttributes.AWAITING_MEDIATOR.name} = true"]
    if reason is not None:
        clauses.append(f"{SearchAttributes.CATEGORY.name} = '{reason.value}'")
    for key, value in ((SearchAttributes.URGENT, urgent), (SearchAttributes.NEEDS_SENIOR, needs_senior)):
        if value is not None:
            clauses.append(f"{key.name} = {'true' if value else 'false'}")
    items = await dispute_calls.list_disputes(temporal, " AND ".join(clauses), limit)
    # SQL visibility cannot order by a custom attribute, so the queue sorts here.
    items.sort(key=lambda d: (d.next_deadline or datetime.max.replace(tzinfo=UTC), d.opened_at))
    return DisputeList(items=items, count=len(items))

"""Moving an open case onto a newly published working-day calendar (README, "Working-day calendar")."""

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from api import dispute_calls
from api.deps import DisputeId, ServicesDep, require_roles
from api.problems import PROBLEM_RESPONSES, Problem, problem_type
from api.dispute_service import view_after_action
from identity import Actor, Role
from workflows.models import CalendarUpdate, DisputeView, PlatformAction

router = APIRouter(prefix="/disputes", tags=["platform actions"], responses=PROBLEM_RESPONSES)

PlatformActor = Annotated[Actor, Depends(require_roles(Role.PLATFORM))]


class CalendarUpdateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The policy this API runs (GET /healthz shows it), named so the operator says which.
    policy_version: str = Field(min_length=1, max_length=100)


@router.post("/{dispute_id}/calendar-update", operation_id="calendar_update", response_model=DisputeView)
async def calendar_update(dispute_id: DisputeId, body: CalendarUpdateRequest, actor: PlatformActor,
                          services: ServicesDep) -> DisputeView:
    """The platform moves an open case to the policy this API runs, which must be the case's
    policy with only its calendar extended; deadlines counted past the old coverage are
    counted again and the change is recorded in the case's history. Again: no change."""
    policy = services.policy
    if body.policy_version != policy.version:
        raise Problem(409, "Policy not loaded",
                      f"This API runs policy {policy.version}, not {body.policy_version}; start it with "
                      "DISPUTEFLOW_POLICY set to that policy's file first.", type=problem_type("policy-not-loaded"))
    update = CalendarUpdate(actor=actor, policy=policy)
    await dispute_calls.act(services.temporal, dispute_id, PlatformAction.CALENDAR_UPDATE, update,
                            update_id=update.update_id)
    return await view_after_action(services, dispute_id)

"""The disputes resource: opening, reading and one route per action, generated from the
actions' declarations (`workflows.models.ACTION_ARGS`) and the life-cycle table's roles.
Domain work is in `api.dispute_service`."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AwareDatetime
from starlette.concurrency import run_in_threadpool

from api import dispute_service, preferences
from api.deps import CurrentActor, DisputeId, IdempotencyKey, ServicesDep, require_roles
from api.dispute_service import DisputeFilter
from api.preferences import ReturnMinimal
from api.problems import PROBLEM_RESPONSES, check_period
from api.schemas import DisputeCreate, DisputeList, EvidencePage, TransferPublic
from audit.trail import Timeline, build_timeline
from identity import Actor, Role
from workflows import lifecycle
from workflows.models import (
    ACTION_ARGS, Action, ActionArgs, ActionResult, DisputeState, DisputeView, PartyId, ReasonCategory,
)

router = APIRouter(prefix="/disputes", tags=["disputes"], responses=PROBLEM_RESPONSES)

BuyerActor = Annotated[Actor, Depends(require_roles(Role.BUYER))]
StaffReader = Annotated[Actor, Depends(require_roles(Role.MEDIATOR, Role.AUDITOR))]


@router.post("", status_code=201, operation_id="open_dispute", response_model=DisputeView | ActionResult,
             responses=preferences.documented(201))
async def open_dispute(body: DisputeCreate, actor: BuyerActor, services: ServicesDep,
                       idempotency_key: IdempotencyKey, minimal: ReturnMinimal,
                       response: Response) -> DisputeView | ActionResult:
    """Open a dispute on one of the buyer's paid orders; the order's escrow is frozen."""
    opened = await dispute_service.open_dispute(services, actor, body, idempotency_key, minimal)
    response.headers["Location"] = f"/disputes/{opened.dispute_id}"
    if minimal:
        preferences.answered_minimal(response)
    return opened


@router.get("", operation_id="list_disputes", response_model=DisputeList)
async def list_disputes(
    actor: CurrentActor,
    services: ServicesDep,
    state: DisputeState | None = None,
    buyer_id: Annotated[PartyId | None, Query()] = None,
    seller_id: Annotated[PartyId | None, Query()] = None,
    order_id: Annotated[PartyId | None, Query()] = None,
    reason: ReasonCategory | None = None,
    mediator_id: Annotated[PartyId | None, Query()] = None,
    opened_from: Annotated[AwareDatetime | None, Query(description="opened at or after (inclusive)")] = None,
    opened_to: Annotated[AwareDatetime | None, Query(description="opened before (exclusive)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DisputeList:
    """Disputes, newest first. Buyers and sellers see only their own."""
    check_period(opened_from, opened_to, "opened_from", "opened_to")
    wanted = DisputeFilter(state=state, buyer_id=buyer_id, seller_id=seller_id, order_id=order_id, reason=reason,
                           mediator_id=mediator_id, opened_from=opened_from, opened_to=opened_to)
    items = await dispute_service.list_disputes(services, actor, wanted, limit)
    return DisputeList(items=items, count=len(items))


@router.get("/{dispute_id}", operation_id="get_dispute", response_model=DisputeView)
async def get_dispute(dispute_id: DisputeId, actor: CurrentActor, services: ServicesDep) -> DisputeView:
    """State, amounts, open deadlines, the newest events (with `events_total`) and the evidence
    of one dispute (from the archive once Temporal no longer keeps the closed case)."""
    view = await dispute_service.visible_view(services, dispute_id, actor)
    return await run_in_threadpool(dispute_service.with_evidence_bodies, services, view)


@router.get("/{dispute_id}/evidence", operation_id="list_dispute_evidence", response_model=EvidencePage)
async def list_dispute_evidence(dispute_id: DisputeId, actor: CurrentActor, services: ServicesDep,
                                offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
                                limit: Annotated[int, Query(ge=1, le=100)] = 20) -> EvidencePage:
    """The evidence submitted during the platform's intervention, oldest first, with bodies."""
    view = await dispute_service.visible_view(services, dispute_id, actor)
    submissions = view.intervention.evidence if view.intervention else []
    page = await run_in_threadpool(dispute_service.bodies_filled, services, submissions[offset:offset + limit])
    return EvidencePage(items=page, total=len(submissions), offset=offset, limit=limit)


@router.get("/{dispute_id}/transfers", operation_id="list_dispute_transfers", response_model=list[TransferPublic])
async def list_dispute_transfers(dispute_id: DisputeId, actor: CurrentActor, services: ServicesDep) -> list:
    """Every ledger transfer this dispute caused, with the workflow step behind it."""
    await dispute_service.visible_view(services, dispute_id, actor)
    return await run_in_threadpool(services.ledger.transfers, dispute_id=dispute_id)


@router.get("/{dispute_id}/timeline", operation_id="get_dispute_timeline", response_model=Timeline)
async def get_dispute_timeline(dispute_id: DisputeId, actor: StaffReader, services: ServicesDep,
                               offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
                               limit: Annotated[int, Query(ge=1, le=500)] = 200) -> Timeline:
    """The case's full timeline, oldest first: every action with its actor, timers started, fired
    or superseded, notifications and ledger transfers with their ids. Built from the history like
    the auditors' trail, for mediators and auditors, without the history's raw payloads."""
    runs = await dispute_service.case_history(services, dispute_id)
    return await run_in_threadpool(build_timeline, runs, offset=offset, limit=limit)


def _action_endpoint(action: Action, args_model: type[ActionArgs], roles: tuple[Role, ...]):
    allowed = require_roles(*roles)

    async def endpoint(dispute_id: DisputeId, body: args_model, actor: Annotated[Actor, Depends(allowed)],
                       services: ServicesDep, idempotency_key: IdempotencyKey, minimal: ReturnMinimal,
                       response: Response) -> DisputeView | ActionResult:
        answer = await dispute_service.act(services, dispute_id, action, actor, body, idempotency_key, minimal)
        if minimal:
            preferences.answered_minimal(response)
        return answer

    return endpoint


for _name, _args in ACTION_ARGS.items():
    _roles = lifecycle.actors_of(Action(_name))
    router.add_api_route(
        f"/{{dispute_id}}/{_name.replace('_', '-')}",
        _action_endpoint(Action(_name), _args, _roles),
        methods=["POST"],
        operation_id=_name,
        summary=_args.__doc__.split("\n\n")[0],
        response_model=DisputeView | ActionResult,
        responses=preferences.documented(200),
        tags=[f"{'party' if len(_roles) > 1 else _roles[0].value} actions"],
    )

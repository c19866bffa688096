"""`/complaints` and `/sellers/{id}/standing`: thin routes over the complaint workflows."""

import uuid
from datetime import datetime
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from api import dispute_calls, idempotency
from api.deps import CurrentActor, IdempotencyKey, ServicesDep, require_roles
from api.problems import PROBLEM_RESPONSES, Problem, problem_type, unavailable
from api.schemas import TransferPublic
from archive.source import case_runs
from audit import history as histories
from audit import replay
from audit.trail import Trail, build_trail
from api.services import Services
from complaints import calls, rules
from complaints.models import (
    COMPLAINT_ARGS,
    ComplaintAction,
    ComplaintArgs,
    ComplaintInput,
    ComplaintOrder,
    ComplaintState,
    ComplaintView,
    StandingView,
)
from complaints.policy import ComplaintType
from complaints.service import COMPLAINT_ID_PATTERN, ComplaintAlreadyOpen, ComplaintService
from complaints.workflows import ComplaintWorkflow
from config.temporal import SearchAttributes, cases_of
from identity import Actor, Role
from money import Money
from orders import OrderNotFound
from workflows.actions import Call
from workflows.models import EvidenceRef, PartyId, Text
from workflows.rules import INVALID

router = APIRouter(tags=["complaints"], responses=PROBLEM_RESPONSES)

ComplaintIdPath = Annotated[str, Path(pattern=COMPLAINT_ID_PATTERN,
                                      description="e.g. cmp-ORD-1001-shipped_late-1")]
SellerIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
_STAFF = (Role.MEDIATOR, Role.AUDITOR, Role.PLATFORM)
StaffActor = Annotated[Actor, Depends(require_roles(*_STAFF))]
AuditorActor = Annotated[Actor, Depends(require_roles(Role.AUDITOR))]


class ComplaintCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: PartyId
    complaint_type: ComplaintType
    description: Text
    evidence: list[EvidenceRef] = Field(default_factory=list, max_length=20)


class ComplaintSummary(BaseModel):
    complaint_id: str
    order_id: str | None
    buyer_id: str | None
    seller_id: str | None
    complaint_type: str | None
    state: ComplaintState | None
    filed_at: datetime


class ComplaintList(BaseModel):
    items: list[ComplaintSummary]
    count: int


class SellerPenaltyStatus(BaseModel):
    seller_id: str
    points_a: int
    points_b: int
    measures: list[str]
    penalty_ends_at: datetime | None


class SellersUnderPenalty(BaseModel):
    items: list[SellerPenaltyStatus]
    count: int


@router.post("/complaints", status_code=201, operation_id="file_complaint", response_model=ComplaintView)
async def file_complaint(body: ComplaintCreate, actor: Annotated[Actor, Depends(require_roles(Role.BUYER, Role.PLATFORM))],
                         services: ServicesDep, idempotency_key: IdempotencyKey, response: Response) -> ComplaintView:
    """The buyer of an order (or the platform) files a complaint (投诉) about the seller's conduct;
    one open complaint per order and type. The seller's response window starts."""
    complaint = await run_in_threadpool(_prepare, services, actor, body, idempotency_key)
    filing = idempotency.request_token(actor, idempotency_key) if idempotency_key else uuid.uuid4().hex
    try:
        filed = await calls.file_complaint(services.temporal, services.settings.task_queue, complaint, filing)
    except RPCError as error:
        raise unavailable("The complaint service did not confirm the filing; retry with the same "
                          "Idempotency-Key.") from error
    response.headers["Location"] = f"/complaints/{complaint.complaint_id}"
    return filed


def _prepare(services: Services, actor: Actor, body: ComplaintCreate, key: str | None) -> ComplaintInput:
    policy = services.complaint_policy
    try:
        order = services.orders.get(body.order_id)
    except OrderNotFound as error:
        raise Problem(404, "Not found", str(error), type=problem_type("order-not-found")) from error
    if actor.role == Role.BUYER and order.buyer_id != actor.party_id:
        raise Problem(403, "Forbidden", f"Order {order.id} is not one of {actor.party_id}'s orders.",
                      type=problem_type("forbidden"))
    if body.complaint_type not in policy.types:
        raise Problem(422, "Unknown complaint type", f"Complaint types are: {', '.join(policy.types)}.",
                      type=problem_type("unknown-complaint-type"))
    try:
        rules.check_evidence(body.evidence, policy)
    except ApplicationError as error:
        raise Problem(422, "Invalid complaint", error.message, type=problem_type(INVALID), **error.details[0]) from error
    fingerprint = idempotency.fingerprint("file_complaint", body.model_dump(mode="json"))
    complaint_id = key and idempotency.recall(services.engine, actor, key, fingerprint)
    if not complaint_id:
        try:
            complaint_id = ComplaintService(services.engine).reserve(order.id, body.complaint_type)
        except ComplaintAlreadyOpen as error:
            if anyio.from_thread.run(dispute_calls.exists, services.temporal, error.complaint_id):
                raise Problem(409, "Complaint already open", str(error), type=problem_type(error.code),
                              complaint_id=error.complaint_id) from error
            # An earlier filing reserved the id but never reached Temporal: take it over.
            complaint_id = error.complaint_id
        if key:
            idempotency.remember(services.engine, actor, key, fingerprint, complaint_id)
    return ComplaintInput(
        complaint_id=complaint_id, complaint_type=body.complaint_type, description=body.description,
        evidence=body.evidence, filed_by=actor, policy=policy,
        order=ComplaintOrder(order_id=order.id, buyer_id=order.buyer_id, seller_id=order.seller_id,
                             paid=Money(amount=order.amount, currency=order.currency)))


@router.get("/complaints", operation_id="list_complaints", response_model=ComplaintList)
async def list_complaints(actor: CurrentActor, services: ServicesDep, state: ComplaintState | None = None,
                          order_id: Annotated[PartyId | None, Query()] = None,
                          buyer_id: Annotated[PartyId | None, Query()] = None,
                          seller_id: Annotated[PartyId | None, Query()] = None,
                          limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> ComplaintList:
    """Complaints, newest first. Buyers and sellers see only their own."""
    if actor.role == Role.BUYER:
        buyer_id = _own(actor, buyer_id)
    elif actor.role == Role.SELLER:
        seller_id = _own(actor, seller_id)
    clauses = [f"{key.name} = '{value}'" for key, value in (
        (SearchAttributes.STATE, state), (SearchAttributes.ORDER, order_id), (SearchAttributes.BUYER, buyer_id),
        (SearchAttributes.SELLER, seller_id)) if value is not None]
    items = []
    async for execution in services.temporal.list_workflows(
            " AND ".join([cases_of(ComplaintWorkflow.__name__), *clauses]), limit=limit):
        attrs = execution.typed_search_attributes
        items.append(ComplaintSummary(
            complaint_id=execution.id, order_id=attrs.get(SearchAttributes.ORDER),
            buyer_id=attrs.get(SearchAttributes.BUYER), seller_id=attrs.get(SearchAttributes.SELLER),
            complaint_type=attrs.get(SearchAttributes.CATEGORY), state=attrs.get(SearchAttributes.STATE),
            filed_at=execution.start_time))
    return ComplaintList(items=items, count=len(items))


def _own(actor: Actor, requested: str | None) -> str:
    if requested is not None and requested != actor.party_id:
        raise Problem(403, "Forbidden", f"A {actor.role.value} may list only their own complaints.",
                      type=problem_type("forbidden"))
    return actor.party_id


async def _visible(services: Services, complaint_id: str, actor: Actor) -> ComplaintView:
    view = await calls.view(services.temporal, complaint_id)
    parties = {Role.BUYER: view.order.buyer_id, Role.SELLER: view.order.seller_id}
    if actor.role not in _STAFF and parties.get(actor.role) != actor.party_id:
        raise Problem(403, "Forbidden", f"Complaint {complaint_id} is not one of {actor.party_id}'s complaints.",
                      type=problem_type("forbidden"))
    return view


@router.get("/complaints/{complaint_id}", operation_id="get_complaint", response_model=ComplaintView)
async def get_complaint(complaint_id: ComplaintIdPath, actor: CurrentActor, services: ServicesDep) -> ComplaintView:
    """State, deadline, evidence, outcome, appeal, compensation and the newest events of one complaint."""
    return await _visible(services, complaint_id, actor)


@router.get("/complaints/{complaint_id}/transfers", operation_id="list_complaint_transfers",
            response_model=list[TransferPublic])
async def list_complaint_transfers(complaint_id: ComplaintIdPath, actor: CurrentActor, services: ServicesDep) -> list:
    """The ledger transfers this complaint caused (compensation, its reversal), each with its step."""
    await _visible(services, complaint_id, actor)
    return await run_in_threadpool(services.ledger.transfers, dispute_id=complaint_id)


def _action_endpoint(action: ComplaintAction, args_model: type[ComplaintArgs]):
    allowed = require_roles(*rules.actors_of(action))

    async def endpoint(complaint_id: ComplaintIdPath, body: args_model, actor: Annotated[Actor, Depends(allowed)],
                       services: ServicesDep, idempotency_key: IdempotencyKey) -> ComplaintView:
        update_id = None
        if idempotency_key:
            # The key names this caller's one request: reused for another one, it is refused.
            fingerprint = idempotency.fingerprint(f"{action.value}:{complaint_id}", body.model_dump(mode="json"))
            update_id = await run_in_threadpool(idempotency.claim_action, services.engine, actor, idempotency_key,
                                                fingerprint, complaint_id)
        await dispute_calls.act(services.temporal, complaint_id, action, Call(actor=actor, args=body), update_id,
                                kind=calls.COMPLAINT)
        return await calls.view(services.temporal, complaint_id)

    return endpoint


for _action, _args in COMPLAINT_ARGS.items():
    router.add_api_route(f"/complaints/{{complaint_id}}/{_action.value.replace('_', '-')}",
                         _action_endpoint(_action, _args), methods=["POST"],
                         operation_id=f"complaint_{_action.value}", summary=_args.__doc__,
                         response_model=ComplaintView, tags=["complaint actions"])


@router.get("/sellers/under-penalty", operation_id="list_sellers_under_penalty", response_model=SellersUnderPenalty)
async def list_sellers_under_penalty(actor: StaffActor, services: ServicesDep,
                                     offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
                                     limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> SellersUnderPenalty:
    """Sellers with a penalty running, as their standings last published (the marketplace enforces them)."""
    rows = await run_in_threadpool(ComplaintService(services.engine).under_penalty, limit, offset)
    items = [SellerPenaltyStatus.model_validate(row, from_attributes=True) for row in rows]
    return SellersUnderPenalty(items=items, count=len(items))


@router.get("/sellers/{seller_id}/standing", operation_id="get_seller_standing", response_model=StandingView)
async def get_seller_standing(seller_id: SellerIdPath, actor: CurrentActor, services: ServicesDep) -> StandingView:
    """Points per class, the penalties running (with their end) and ended, and the violations.
    A seller sees only its own standing."""
    if actor.role not in _STAFF and (actor.role != Role.SELLER or actor.party_id != seller_id):
        raise Problem(403, "Forbidden", "A seller may read only its own standing.", type=problem_type("forbidden"))
    found = await calls.standing(services.temporal, seller_id)
    if found is None:
        policy = services.complaint_policy.standing
        return StandingView(seller_id=seller_id, policy_version=policy.version, points={c: 0 for c in policy.classes},
                            under_penalty=False, active_penalties=[], ended_penalties=[], violations=[],
                            violations_total=0, next_reset={c: None for c in policy.classes}, revision=0)
    return found


# ---- auditors: a complaint's (or a standing's) history, trail and replay, as for disputes ----------


async def _runs(services: Services, workflow_id: str):
    try:
        return await case_runs(services.temporal, services.archive, workflow_id)
    except histories.DisputeNotFound as error:
        raise Problem(404, "Not found", f"There is no complaint {workflow_id}.",
                      type=problem_type("complaint-not-found")) from error


@router.get("/audit/complaints/{complaint_id}/history", operation_id="export_complaint_history",
            tags=["audit"], responses={200: {"description": "The full history; save it as <complaint_id>.json",
                                             "content": {"application/json": {}}}})
async def export_complaint_history(complaint_id: ComplaintIdPath, actor: AuditorActor,
                                   services: ServicesDep) -> Response:
    """The complaint's complete Temporal history in the standard JSON format (what
    `disputeflow audit replay --histories` reads)."""
    runs = await _runs(services, complaint_id)
    return Response(histories.runs_to_json(runs), media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{complaint_id}.json"'})


@router.get("/audit/complaints/{complaint_id}/trail", operation_id="get_complaint_trail", response_model=Trail,
            tags=["audit"])
async def get_complaint_trail(complaint_id: ComplaintIdPath, actor: AuditorActor, services: ServicesDep) -> Trail:
    """Who did what to the complaint and which timer decided, derived from its history."""
    return await run_in_threadpool(build_trail, await _runs(services, complaint_id))


@router.post("/audit/complaints/{complaint_id}/replay", operation_id="replay_complaint",
             response_model=replay.ReplayReport, tags=["audit"])
async def replay_complaint(complaint_id: ComplaintIdPath, actor: AuditorActor,
                           services: ServicesDep) -> replay.ReplayReport:
    """Replay the complaint's history against the workflow code this server runs."""
    return await replay.shared_replayer().replay(
        replay.from_server(services.temporal, [complaint_id], archive=services.archive))

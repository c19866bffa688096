import uuid
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Query, Response
from starlette.concurrency import run_in_threadpool
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from api import dispute_calls, idempotency
from api.deps import CurrentActor, DisputeId, IdempotencyKey, ServicesDep, TemporalDep, get_fund, require_roles
from api.problems import PROBLEM_RESPONSES, Problem, problem_type, unavailable
from api.schemas import DisputeCreate, DisputeList, EvidencePage, TransferPublic
from api.services import Services
from archive.source import archived_final
from config.temporal import SearchAttributes, cases_of
from evidence import EvidenceBody, describe, read_bodies, store
from fund import FUND_CANNOT_PAY
from identity import Actor, Role
from ledger import OrderRefunds
from money import Money
from orders import DisputeAlreadyOpen, DisputeLimitReached, OrderNotFound, OrderRuledOn, ReopenWindowClosed
from workflows import rules
from workflows.dispute import DisputeWorkflow
from workflows.models import (
    Action,
    BuyerEscalate,
    BuyerEscalateBase,
    MediatorExtendDeadline,
    MediatorExtendDeadlineBase,
    MediatorHandOver,
    MediatorHandOverBase,
    MediatorOrderAdvance,
    MediatorOrderAdvanceBase,
    MediatorRequestEvidence,
    MediatorRequestEvidenceBase,
    MediatorRule,
    MediatorRuleBase,
    MediatorTake,
    MediatorTakeBase,
    PartyAppeal,
    PartyAppealBase,
    PartySubmitEvidence,
    PartySubmitEvidenceBase,
    PartyWithdrawAppeal,
    PartyWithdrawAppealBase,
    SellerReportReturnProblem,
    SellerReportReturnProblemBase,
    BuyerAnswerOffer,
    BuyerAnswerOfferBase,
    BuyerRevise,
    BuyerReviseBase,
    BuyerShipReturn,
    BuyerShipReturnBase,
    BuyerWithdraw,
    BuyerWithdrawBase,
    DisputeInput,
    DisputeState,
    DisputeView,
    OrderSnapshot,
    PartyId,
    ReasonCategory,
    RefundRequest,
    SellerAgreeRefund,
    SellerAgreeRefundBase,
    SellerAgreeReturn,
    SellerAgreeReturnBase,
    SellerConfirmReturn,
    SellerConfirmReturnBase,
    SellerOfferPartial,
    SellerOfferPartialBase,
    SellerRefuse,
    SellerRefuseBase,
)

router = APIRouter(prefix="/disputes", tags=["disputes"], responses=PROBLEM_RESPONSES)

BuyerActor = Annotated[Actor, Depends(require_roles(Role.BUYER))]
_STAFF = (Role.MEDIATOR, Role.AUDITOR, Role.PLATFORM)


@router.post("", status_code=201, operation_id="open_dispute", response_model=DisputeView)
async def open_dispute(body: DisputeCreate, actor: BuyerActor, services: ServicesDep,
                       idempotency_key: IdempotencyKey, response: Response) -> DisputeView:
    """Open a dispute on one of the buyer's paid orders; the order's escrow is frozen."""
    dispute = await run_in_threadpool(_prepare_dispute, services, actor, body, idempotency_key)
    # A retry of an opening whose case has since closed and left Temporal: Temporal would
    # take the id as new and open the case a second time.
    if (archived := await archived_final(services.archive, dispute.dispute_id)) is not None:
        return archived.view
    opening = idempotency.request_token(actor, idempotency_key) if idempotency_key else uuid.uuid4().hex
    try:
        opened = await dispute_calls.open_dispute(services.temporal, services.settings.task_queue, dispute, opening)
        opened = await run_in_threadpool(_with_evidence_bodies, services, opened)
    except RPCError as error:
        # Whether or not the start reached Temporal, a retry with the same key resumes it.
        raise unavailable("The dispute service did not confirm the opening; retry with the same "
                          "Idempotency-Key.") from error
    response.headers["Location"] = f"/disputes/{dispute.dispute_id}"
    return opened


def _prepare_dispute(services: Services, actor: Actor, body: DisputeCreate, key: str | None) -> DisputeInput:
    try:
        order = services.orders.get(body.order_id)
    except OrderNotFound as error:
        raise Problem(404, "Not found", str(error), type=problem_type("order-not-found")) from error
    if order.buyer_id != actor.party_id:
        raise Problem(403, "Forbidden", f"Order {order.id} is not one of {actor.party_id}'s orders.",
                      type=problem_type("forbidden"))
    request = RefundRequest.model_validate(body.model_dump(exclude={"order_id"}))
    try:
        rules.check_attachments(request.evidence, services.policy.limits)
    except ApplicationError as error:
        limit = error.details[0] if error.details else {}
        raise Problem(422, "Invalid dispute", error.message, type=problem_type(rules.INVALID), **limit) from error

    def snapshot(refunds: OrderRefunds) -> OrderSnapshot:
        return OrderSnapshot(order_id=order.id, buyer_id=order.buyer_id, seller_id=order.seller_id,
                             paid=Money(amount=order.amount, currency=order.currency), shipped=order.shipped,
                             refunded_before=Money(amount=refunds.refunded, currency=order.currency))

    admitted: list[OrderSnapshot] = []

    def admit(refunds: OrderRefunds) -> None:
        """The request fits what the order has left to refund; runs while the order is ours."""
        admitted.append(snapshot(refunds))
        try:
            rules.check_request_fits_order(request, admitted[-1])
        except ApplicationError as error:
            extensions = error.details[0] if error.details else {}
            raise Problem(422, "Invalid dispute", error.message, type=problem_type(error.type),
                          **extensions) from error

    fingerprint = idempotency.fingerprint("open_dispute", body.model_dump(mode="json"))
    dispute_id = key and idempotency.recall(services.engine, actor, key, fingerprint)
    if dispute_id:
        # This request was admitted when the order was reserved for it, and the order has been
        # its dispute's ever since; a started dispute keeps the input it started with.
        admitted.append(snapshot(services.ledger.order_refunds(order.id)))
    else:
        try:
            dispute_id = services.orders.reserve_dispute(order.id, policy=services.policy, admit=admit)
        except DisputeAlreadyOpen as error:
            if anyio.from_thread.run(dispute_calls.exists, services.temporal, error.dispute_id):
                raise dispute_calls.already_open(order.id, error.dispute_id) from error
            # An earlier attempt reserved the order but never reached Temporal: take it over
            # (if that attempt is still on its way, whichever starts the dispute wins).
            dispute_id = error.dispute_id
            admit(services.ledger.order_refunds(order.id))
        except (OrderRuledOn, DisputeLimitReached, ReopenWindowClosed) as error:
            raise Problem(409, "No further dispute", str(error), type=problem_type(error.code)) from error
        if key:
            idempotency.remember(services.engine, actor, key, fingerprint, dispute_id)
    return DisputeInput(dispute_id=dispute_id, order=admitted[-1], request=request, opened_by=actor,
                        policy=services.policy)


@router.get("", operation_id="list_disputes", response_model=DisputeList)
async def list_disputes(
    actor: CurrentActor,
    temporal: TemporalDep,
    state: DisputeState | None = None,
    buyer_id: Annotated[PartyId | None, Query()] = None,
    seller_id: Annotated[PartyId | None, Query()] = None,
    order_id: Annotated[PartyId | None, Query()] = None,
    reason: ReasonCategory | None = None,
    mediator_id: Annotated[PartyId | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DisputeList:
    """Disputes, newest first. Buyers and sellers see only their own."""
    if actor.role == Role.BUYER:
        buyer_id = _own(actor, buyer_id, "buyer_id")
    elif actor.role == Role.SELLER:
        seller_id = _own(actor, seller_id, "seller_id")
    # Every value is pattern-checked above, so quoting cannot be escaped.
    clauses = [cases_of(DisputeWorkflow.__name__)]
    for key, value in ((SearchAttributes.STATE, state), (SearchAttributes.BUYER, buyer_id),
                       (SearchAttributes.SELLER, seller_id), (SearchAttributes.ORDER, order_id),
                       (SearchAttributes.CATEGORY, reason), (SearchAttributes.MEDIATOR, mediator_id)):
        if value is not None:
            clauses.append(f"{key.name} = '{value}'")
    items = await dispute_calls.list_disputes(temporal, " AND ".join(clauses), limit)
    return DisputeList(items=items, count=len(items))


def _own(actor: Actor, requested: str | None, name: str) -> str:
    if requested is not None and requested != actor.party_id:
        raise Problem(403, "Forbidden", f"A {actor.role.value} may list only their own disputes ({name}).",
                      type=problem_type("forbidden"))
    return actor.party_id


@router.get("/{dispute_id}", operation_id="get_dispute", response_model=DisputeView)
async def get_dispute(dispute_id: DisputeId, actor: CurrentActor, services: ServicesDep) -> DisputeView:
    """State, amounts, open deadlines, the newest events (with `events_total`) and the evidence
    of one dispute (from the archive once Temporal no longer keeps the closed case)."""
    view = await _visible_view(services, dispute_id, actor)
    return await run_in_threadpool(_with_evidence_bodies, services, view)


@router.get("/{dispute_id}/evidence", operation_id="list_dispute_evidence", response_model=EvidencePage)
async def list_dispute_evidence(dispute_id: DisputeId, actor: CurrentActor, services: ServicesDep,
                                offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
                                limit: Annotated[int, Query(ge=1, le=100)] = 20) -> EvidencePage:
    """The evidence submitted during the platform's intervention, oldest first, with bodies."""
    view = await _visible_view(services, dispute_id, actor)
    submissions = view.intervention.evidence if view.intervention else []
    page = await run_in_threadpool(_bodies_filled, services, submissions[offset:offset + limit])
    return EvidencePage(items=page, total=len(submissions), offset=offset, limit=limit)


async def view_after_action(services: Services, dispute_id: str) -> DisputeView:
    """The Update answers small; the client gets the view as it stands after the action."""
    view = await dispute_calls.view(services.temporal, dispute_id)
    return await run_in_threadpool(_with_evidence_bodies, services, view)


def _with_evidence_bodies(services: Services, view: DisputeView) -> DisputeView:
    """The view with the stored evidence bodies it refers to; the case's limits bound them."""
    if view.intervention is None or not view.intervention.evidence:
        return view
    evidence = _bodies_filled(services, view.intervention.evidence)
    return view.model_copy(update={"intervention": view.intervention.model_copy(update={"evidence": evidence})})


def _bodies_filled(services: Services, submissions: list) -> list:
    bodies = read_bodies(services.engine, [s.evidence_id for s in submissions if s.evidence_id])
    filled = []
    for submission in submissions:
        body = bodies.get(submission.evidence_id) if submission.evidence_id else None
        filled.append(submission.model_copy(update={"text": body.text, "attachments": body.attachments}) if body else submission)
    return filled


@router.get("/{dispute_id}/transfers", operation_id="list_dispute_transfers", response_model=list[TransferPublic])
async def list_dispute_transfers(dispute_id: DisputeId, actor: CurrentActor, services: ServicesDep) -> list:
    """Every ledger transfer this dispute caused, with the workflow step behind it."""
    await _visible_view(services, dispute_id, actor)
    return await run_in_threadpool(services.ledger.transfers, dispute_id=dispute_id)


async def _visible_view(services: Services, dispute_id: str, actor: Actor) -> DisputeView:
    view = await dispute_calls.view(services.temporal, dispute_id, services.archive)
    parties = {Role.BUYER: view.order.buyer_id, Role.SELLER: view.order.seller_id}
    if actor.role not in _STAFF and parties.get(actor.role) != actor.party_id:
        raise Problem(403, "Forbidden", f"Dispute {dispute_id} is not one of {actor.party_id}'s disputes.",
                      type=problem_type("forbidden"))
    return view


def _action_endpoint(action: Action, body_model: type, argument_model: type, roles: tuple[Role, ...]):
    allowed = require_roles(*roles)

    async def endpoint(dispute_id: DisputeId, body: body_model, actor: Annotated[Actor, Depends(allowed)],
                       services: ServicesDep, idempotency_key: IdempotencyKey) -> DisputeView:
        if isinstance(body, MediatorHandOverBase):
            _check_known_mediator(services, body.to_mediator_id)
        if isinstance(body, MediatorOrderAdvanceBase):
            await run_in_threadpool(_check_fund_covers, services, body.amount)
        # The key names this caller's one request: reused for another action, dispute or
        # body, it is refused rather than answered with the earlier action's result.
        fingerprint = idempotency_key and idempotency.fingerprint(f"{action.value}:{dispute_id}",
                                                                  body.model_dump(mode="json"))
        if isinstance(body, PartySubmitEvidenceBase):
            # The case records the body's id; the body itself lives in the evidence store, written
            # only once the case said it would take it. A retried keyed request was asked about
            # already, and gets its first answer whatever the case would say now.
            evidence = EvidenceBody.model_validate(body.model_dump())
            retried = fingerprint and await run_in_threadpool(idempotency.recall, services.engine, actor,
                                                              idempotency_key, fingerprint)
            if not retried:
                await dispute_calls.check_evidence(services.temporal, dispute_id,
                                                   PartySubmitEvidence(stored=describe(evidence), actor=actor))
            stored = await run_in_threadpool(store, services.engine, evidence)
            argument = PartySubmitEvidence(stored=stored, actor=actor)
        else:
            argument = argument_model(**body.model_dump(), actor=actor)
        update_id = None
        if fingerprint:
            await run_in_threadpool(_claim_key, services, actor, idempotency_key, fingerprint, dispute_id)
            update_id = f"{actor.role.value}:{actor.party_id}:{idempotency_key}"
        await dispute_calls.act(services.temporal, dispute_id, action, argument, update_id)
        return await view_after_action(services, dispute_id)

    return endpoint


def _claim_key(services: Services, actor: Actor, key: str, fingerprint: str, dispute_id: str) -> None:
    if idempotency.recall(services.engine, actor, key, fingerprint) is None:
        idempotency.remember(services.engine, actor, key, fingerprint, dispute_id)


def _check_fund_covers(services: Services, amount: Money) -> None:
    """Refuse up front, leaving no trace, an advance the fund cannot pay; the ledger checks again."""
    try:
        get_fund(services).check_covers(amount)
    except FUND_CANNOT_PAY as error:
        raise Problem(409, "Advance refused", str(error), type=problem_type(rules.ADVANCE_REFUSED)) from None


def _check_known_mediator(services: Services, party_id: str) -> None:
    mediators = {g.party_id for g in services.settings.tokens.values() if g.role == Role.MEDIATOR}
    if party_id not in mediators:
        raise Problem(422, "Unknown mediator", f"There is no mediator {party_id}.",
                      type=problem_type("unknown-mediator"))



_SELLER = (Role.SELLER,)
_BUYER = (Role.BUYER,)
_PARTIES = (Role.BUYER, Role.SELLER)
_MEDIATOR = (Role.MEDIATOR,)
_ACTIONS = [
    (Action.SELLER_AGREE_REFUND, SellerAgreeRefundBase, SellerAgreeRefund, _SELLER,
     "Seller agrees to refund the requested amount; the dispute closes with the refund."),
    (Action.SELLER_AGREE_RETURN, SellerAgreeReturnBase, SellerAgreeReturn, _SELLER,
     "Seller agrees to a return; the buyer's return window starts."),
    (Action.SELLER_REFUSE, SellerRefuseBase, SellerRefuse, _SELLER,
     "Seller refuses, with a reason; the buyer may revise or the dispute closes when the window lapses."),
    (Action.SELLER_OFFER_PARTIAL, SellerOfferPartialBase, SellerOfferPartial, _SELLER,
     "Seller offers a partial refund for the buyer to accept or refuse."),
    (Action.SELLER_CONFIRM_RETURN, SellerConfirmReturnBase, SellerConfirmReturn, _SELLER,
     "Seller confirms the returned parcel arrived; the buyer is refunded."),
    (Action.BUYER_ACCEPT_OFFER, BuyerAnswerOfferBase, BuyerAnswerOffer, _BUYER,
     "Buyer accepts the seller's partial offer; the dispute closes with that refund."),
    (Action.BUYER_REFUSE_OFFER, BuyerAnswerOfferBase, BuyerAnswerOffer, _BUYER,
     "Buyer refuses the seller's partial offer."),
    (Action.BUYER_REVISE, BuyerReviseBase, BuyerRevise, _BUYER,
     "Buyer revises the request and submits it again to the seller."),
    (Action.BUYER_WITHDRAW, BuyerWithdrawBase, BuyerWithdraw, _BUYER,
     "Buyer withdraws the request; the escrow is released to the seller."),
    (Action.BUYER_SHIP_RETURN, BuyerShipReturnBase, BuyerShipReturn, _BUYER,
     "Buyer ships the return with carrier and tracking number; the seller's confirmation window starts."),
    (Action.BUYER_ESCALATE, BuyerEscalateBase, BuyerEscalate, _BUYER,
     "Buyer asks the platform to intervene after a refusal (平台介入); urgent concerns get the urgent SLA."),
    (Action.SELLER_REPORT_RETURN_PROBLEM, SellerReportReturnProblemBase, SellerReportReturnProblem, _SELLER,
     "Seller reports the returned parcel not received, damaged or different; the platform intervenes."),
    (Action.PARTY_SUBMIT_EVIDENCE, PartySubmitEvidenceBase, PartySubmitEvidence, _PARTIES,
     "Buyer or seller submits evidence (举证) during intervention; answers an open evidence request."),
    (Action.PARTY_APPEAL, PartyAppealBase, PartyAppeal, _PARTIES,
     "Buyer or seller appeals a mediator's ruling with new information, once; a senior mediator rules finally."),
    (Action.PARTY_WITHDRAW_APPEAL, PartyWithdrawAppealBase, PartyWithdrawAppeal, _PARTIES,
     "The party who appealed withdraws the appeal; the appealed ruling stands, final, and no money moves."),
    (Action.MEDIATOR_TAKE, MediatorTakeBase, MediatorTake, _MEDIATOR,
     "A mediator takes a case from the queue; exactly one mediator gets it."),
    (Action.MEDIATOR_REQUEST_EVIDENCE, MediatorRequestEvidenceBase, MediatorRequestEvidence, _MEDIATOR,
     "The assigned mediator asks a party for evidence, with the policy's deadline."),
    (Action.MEDIATOR_EXTEND_DEADLINE, MediatorExtendDeadlineBase, MediatorExtendDeadline, _MEDIATOR,
     "The assigned mediator extends a party's deadline, with a reason; the running timer is replaced."),
    (Action.MEDIATOR_HAND_OVER, MediatorHandOverBase, MediatorHandOver, _MEDIATOR,
     "The assigned mediator hands the case to another mediator, with a reason."),
    (Action.MEDIATOR_RULE, MediatorRuleBase, MediatorRule, _MEDIATOR,
     "The assigned mediator rules, with a rationale: full refund, partial refund, reject, or refund after return."),
    (Action.MEDIATOR_ORDER_ADVANCE, MediatorOrderAdvanceBase, MediatorOrderAdvance, _MEDIATOR,
     "The assigned mediator orders an advance payment (先行垫付) from the guarantee fund to the buyer."),
]

for _action, _body, _argument, _roles, _summary in _ACTIONS:
    router.add_api_route(
        f"/{{dispute_id}}/{_action.value.replace('_', '-')}",
        _action_endpoint(_action, _body, _argument, _roles),
        methods=["POST"],
        operation_id=_action.value,
        summary=_summary,
        response_model=DisputeView,
        tags=[f"{'party' if len(_roles) > 1 else _roles[0].value} actions"],
    )

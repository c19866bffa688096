"""Opening a dispute and acting on one: the domain work under the disputes routes, which
keep only HTTP concerns. Refusals are `Problem`s, as everywhere under the API."""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import anyio
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from api import dispute_calls, idempotency
from api.deps import get_fund
from api.problems import Problem, problem_type, unavailable
from api.schemas import DisputeCreate, DisputeSummary
from api.services import Services
from archive.source import archived_final, case_runs
from audit.history import DisputeNotFound
from config.temporal import SearchAttributes, Visibility
from database import session
from evidence import EvidenceBody, describe, read_bodies, store
from fund import FUND_CANNOT_PAY
from identity import Actor, Role
from ledger import OrderRefunds
from ledger.invariants import order_refunds
from money import Money
from orders import (
    DisputeAlreadyOpen, DisputeLimitReached, OrderNotFound, OrderRuledOn, ReopenWindowClosed, claim_dispute, locked,
)
from policy import versions as policy_versions
from workflows import rules
from workflows.dispute import DisputeWorkflow
from workflows.actions import Call
from workflows.models import (
    Action,
    ActionArgs,
    ActionResult,
    DisputeInput,
    DisputeState,
    DisputeView,
    EvidenceSubmission,
    MediatorHandOver,
    MediatorOrderAdvance,
    OrderSnapshot,
    PartySubmitEvidence,
    ReasonCategory,
    RefundRequest,
    SubmittedEvidence,
)

_STAFF = (Role.MEDIATOR, Role.AUDITOR, Role.PLATFORM)


# ---- opening -----------------------------------------------------------------------


async def open_dispute(services: Services, actor: Actor, body: DisputeCreate, key: str | None,
                       minimal: bool) -> DisputeView | ActionResult:
    """Open a dispute on one of the buyer's paid orders once its escrow is frozen; a retry with
    the same key answers with the dispute its first attempt opened. The answer is its view, or
    when `minimal` the opening's small result."""
    dispute = await run_in_threadpool(prepare_opening, services, actor, body, key)
    # A retry of an opening whose case has since closed and left Temporal: Temporal would
    # take the id as new and open the case a second time.
    if (archived := await archived_final(services.archive, dispute.dispute_id)) is not None:
        return ActionResult.of(archived.view) if minimal else archived.view
    opening = idempotency.request_token(actor, key) if key else uuid.uuid4().hex
    try:
        opened = await dispute_calls.open_dispute(services.temporal, services.settings.task_queue, dispute, opening)
        return opened if minimal else await view_after_action(services, opened.dispute_id)
    except RPCError as error:
        # Whether or not the start reached Temporal, a retry with the same key resumes it.
        raise unavailable("The dispute service did not confirm the opening; retry with the same "
                          "Idempotency-Key.") from error


def prepare_opening(services: Services, actor: Actor, body: DisputeCreate, key: str | None) -> DisputeInput:
    """The case's input: the buyer's order reserved for it (or taken over from an attempt that
    reserved it and never reached Temporal), the request checked against what it may refund.

    The order's lock, the key's claim, the checks and the reservation are one transaction."""
    fingerprint = idempotency.fingerprint("open_dispute", body.model_dump(mode="json"))
    request = RefundRequest.model_validate(body.model_dump(exclude={"order_id"}))
    order: OrderSnapshot | None = None
    admitted: list[OrderSnapshot] = []

    def snapshot(refunds: OrderRefunds) -> OrderSnapshot:
        assert order is not None
        return order.model_copy(update={"refunded_before": Money(amount=refunds.refunded,
                                                                 currency=order.paid.currency)})

    def admit(refunds: OrderRefunds) -> None:
        """The request fits what the order has left to refund; runs while the order is ours."""
        admitted.append(snapshot(refunds))
        try:
            rules.check_request_fits_order(request, admitted[-1])
        except ApplicationError as error:
            extensions = error.details[0] if error.details else {}
            raise Problem(422, "Invalid dispute", error.message, type=problem_type(error.type),
                          **extensions) from error

    def reserve(db: Session) -> str:
        nonlocal order
        try:
            row = locked(db, body.order_id)
        except OrderNotFound as error:
            raise Problem(404, "Not found", str(error), type=problem_type("order-not-found")) from error
        if row.buyer_id != actor.party_id:
            raise Problem(403, "Forbidden", f"Order {row.id} is not one of {actor.party_id}'s orders.",
                          type=problem_type("forbidden"))
        order = OrderSnapshot(order_id=row.id, buyer_id=row.buyer_id, seller_id=row.seller_id,
                              paid=Money(amount=row.amount, currency=row.currency), shipped=row.shipped)
        try:
            rules.check_attachments(request.evidence, services.policy.limits)
        except ApplicationError as error:
            limit = error.details[0] if error.details else {}
            raise Problem(422, "Invalid dispute", error.message, type=problem_type(rules.INVALID), **limit) from error
        if key and (dispute_id := idempotency.recall_in(db, actor, key, fingerprint)):
            # This request was admitted when the order was reserved for it, and the order has been
            # its dispute's ever since; a started dispute keeps the input it started with.
            admitted.append(snapshot(order_refunds(db, row.id)))
            return dispute_id
        dispute_id = claim_dispute(db, row, policy=services.policy, admit=admit)
        if key:
            idempotency.remember_in(db, actor, key, fingerprint, dispute_id)
        return dispute_id

    try:
        try:
            with session(services.engine) as db:
                dispute_id = reserve(db)
        except IntegrityError:  # the key was claimed concurrently: again, seeing that claim
            with session(services.engine) as db:
                dispute_id = reserve(db)
    except DisputeAlreadyOpen as error:
        assert order is not None
        # Asked once the transaction ended: never hold the order (SQLite: every writer) on Temporal.
        if anyio.from_thread.run(dispute_calls.exists, services.temporal, error.dispute_id):
            raise dispute_calls.already_open(order.order_id, error.dispute_id) from error
        # An earlier attempt reserved the order but never reached Temporal: take it over
        # (if that attempt is still on its way, whichever starts the dispute wins).
        dispute_id = error.dispute_id
        admit(services.ledger.order_refunds(order.order_id))
        if key:
            idempotency.remember(services.engine, actor, key, fingerprint, dispute_id)
    except (OrderRuledOn, DisputeLimitReached, ReopenWindowClosed) as error:
        raise Problem(409, "No further dispute", str(error), type=problem_type(error.code)) from error
    return DisputeInput(dispute_id=dispute_id, order=admitted[-1], request=request, opened_by=actor,
                        policy=policy_versions.ref_or_body(services.policy))


# ---- reading -----------------------------------------------------------------------


@dataclass(frozen=True)
class DisputeFilter:
    """What a list of disputes may be narrowed to; every value is pattern-checked by the API."""

    state: DisputeState | None = None
    buyer_id: str | None = None
    seller_id: str | None = None
    order_id: str | None = None
    reason: ReasonCategory | None = None
    mediator_id: str | None = None
    # Opened at or after `opened_from`, and before `opened_to`.
    opened_from: datetime | None = None
    opened_to: datetime | None = None


async def list_disputes(services: Services, actor: Actor, wanted: DisputeFilter, limit: int) -> list[DisputeSummary]:
    """Disputes, newest first. Buyers and sellers see only their own."""
    buyer_id, seller_id = wanted.buyer_id, wanted.seller_id
    if actor.role == Role.BUYER:
        buyer_id = _own(actor, buyer_id, "buyer_id")
    elif actor.role == Role.SELLER:
        seller_id = _own(actor, seller_id, "seller_id")
    query = (Visibility.cases_of(DisputeWorkflow.__name__)
             .where(SearchAttributes.STATE, wanted.state).where(SearchAttributes.BUYER, buyer_id)
             .where(SearchAttributes.SELLER, seller_id).where(SearchAttributes.ORDER, wanted.order_id)
             .where(SearchAttributes.CATEGORY, wanted.reason).where(SearchAttributes.MEDIATOR, wanted.mediator_id)
             .where("StartTime", wanted.opened_from, op=">=").where("StartTime", wanted.opened_to, op="<"))
    return await dispute_calls.list_disputes(services.temporal, str(query), limit)


def _own(actor: Actor, requested: str | None, name: str) -> str:
    if requested is not None and requested != actor.party_id:
        raise Problem(403, "Forbidden", f"A {actor.role.value} may list only their own disputes ({name}).",
                      type=problem_type("forbidden"))
    return actor.party_id


async def visible_view(services: Services, dispute_id: str, actor: Actor) -> DisputeView:
    """The case's view (from the archive once Temporal no longer keeps it), for its parties and staff."""
    view = await dispute_calls.view(services.temporal, dispute_id, services.archive)
    parties = {Role.BUYER: view.order.buyer_id, Role.SELLER: view.order.seller_id}
    if actor.role not in _STAFF and parties.get(actor.role) != actor.party_id:
        raise Problem(403, "Forbidden", f"Dispute {dispute_id} is not one of {actor.party_id}'s disputes.",
                      type=problem_type("forbidden"))
    return view


async def case_history(services: Services, dispute_id: str) -> list[WorkflowHistory]:
    """Every run of the case, oldest first, from Temporal or (once it let the case go) the archive."""
    try:
        return await case_runs(services.temporal, services.archive, dispute_id)
    except DisputeNotFound as error:
        raise Problem(404, "Not found", str(error), type=problem_type("dispute-not-found")) from error


async def view_after_action(services: Services, dispute_id: str) -> DisputeView:
    """The view as it stands after an Update (which answers small), with its evidence bodies."""
    view = await dispute_calls.view(services.temporal, dispute_id)
    return await run_in_threadpool(with_evidence_bodies, services, view)


def with_evidence_bodies(services: Services, view: DisputeView) -> DisputeView:
    """The view with the stored evidence bodies it refers to; the case's limits bound them."""
    if view.intervention is None or not view.intervention.evidence:
        return view
    evidence = bodies_filled(services, view.intervention.evidence)
    return view.model_copy(update={"intervention": view.intervention.model_copy(update={"evidence": evidence})})


def bodies_filled(services: Services, submissions: list[EvidenceSubmission]) -> list[EvidenceSubmission]:
    bodies = read_bodies(services.engine, [s.evidence_id for s in submissions if s.evidence_id])
    filled = []
    for submission in submissions:
        body = bodies.get(submission.evidence_id) if submission.evidence_id else None
        filled.append(submission.model_copy(update={"text": body.text, "attachments": body.attachments})
                      if body else submission)
    return filled


# ---- acting ------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionRequest:
    services: Services
    dispute_id: str
    actor: Actor
    key: str | None
    # Of a keyed request: names this caller's one request (action, dispute and body).
    fingerprint: str | None

    async def retried(self) -> bool:
        """A keyed request the API has answered before."""
        return bool(self.fingerprint) and await run_in_threadpool(
            idempotency.recall, self.services.engine, self.actor, self.key, self.fingerprint) is not None


@dataclass(frozen=True)
class ActionHook:
    """What an action needs from the API before the case sees it: a check (run in a thread,
    refusing with a Problem), and what the case receives if not the body as sent."""

    check: Callable[[Services, ActionArgs], None] | None = None
    argument: Callable[[ActionRequest, ActionArgs], Awaitable[BaseModel]] | None = None


async def act(services: Services, dispute_id: str, action: Action, actor: Actor, args: ActionArgs,
              key: str | None, minimal: bool) -> DisputeView | ActionResult:
    """Run `action` on the case as `actor`; the same key again answers with the first outcome.
    The answer is the case's view after it, or when `minimal` the Update's small result."""
    hook = HOOKS.get(action, ActionHook())
    if hook.check is not None:
        await run_in_threadpool(hook.check, services, args)
    # The key names this caller's one request: reused for another action, dispute or
    # body, it is refused rather than answered with the earlier action's result.
    fingerprint = key and idempotency.fingerprint(f"{action.value}:{dispute_id}", args.model_dump(mode="json"))
    request = ActionRequest(services, dispute_id, actor, key, fingerprint)
    argument = args if hook.argument is None else await hook.argument(request, args)
    update_id = None
    if fingerprint:
        update_id = await run_in_threadpool(idempotency.claim_action, services.engine, actor, key, fingerprint,
                                            dispute_id)
    result = await dispute_calls.act(services.temporal, dispute_id, action, Call(actor=actor, args=argument),
                                     update_id)
    return result if minimal else await view_after_action(services, dispute_id)


async def _stored_evidence(request: ActionRequest, args: PartySubmitEvidence) -> SubmittedEvidence:
    """The case records the body's id; the body itself lives in the evidence store, written
    only once the case said it would take it. A retried keyed request was asked about
    already, and gets its first answer whatever the case would say now."""
    services = request.services
    evidence = EvidenceBody.model_validate(args.model_dump())
    if not await request.retried():
        await dispute_calls.check_evidence(services.temporal, request.dispute_id, Call(
            actor=request.actor, args=SubmittedEvidence(stored=describe(evidence))))
    return SubmittedEvidence(stored=await run_in_threadpool(store, services.engine, evidence))


def _check_fund_covers(services: Services, args: MediatorOrderAdvance) -> None:
    """Refuse up front, leaving no trace, an advance the fund cannot pay; the ledger checks again."""
    try:
        get_fund(services).check_covers(args.amount)
    except FUND_CANNOT_PAY as error:
        raise Problem(409, "Advance refused", str(error), type=problem_type(rules.ADVANCE_REFUSED)) from None


def _check_known_mediator(services: Services, args: MediatorHandOver) -> None:
    mediators = {g.party_id for g in services.settings.tokens.values() if g.role == Role.MEDIATOR}
    if args.to_mediator_id not in mediators:
        raise Problem(422, "Unknown mediator", f"There is no mediator {args.to_mediator_id}.",
                      type=problem_type("unknown-mediator"))


# The actions that need more than the case's own checks; every other one is sent as it came.
HOOKS: dict[Action, ActionHook] = {
    Action.MEDIATOR_HAND_OVER: ActionHook(check=_check_known_mediator),
    Action.MEDIATOR_ORDER_ADVANCE: ActionHook(check=_check_fund_covers),
    Action.PARTY_SUBMIT_EVIDENCE: ActionHook(argument=_stored_evidence),
}

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentActor, OrderId, ServicesDep, require_roles
from api.problems import PROBLEM_RESPONSES, Problem, problem_type
from api.schemas import OrderCreate, OrderPublic
from api.services import Services
from identity import Actor, Role
from ledger import AmountOverflow, accounts
from money import Money
from orders import DisputeAlreadyOpen, Order, OrderConflict, OrderNotFound, PaidOrder

router = APIRouter(prefix="/orders", tags=["orders"], responses=PROBLEM_RESPONSES)

PlatformActor = Annotated[Actor, Depends(require_roles(Role.PLATFORM))]


@router.post("", status_code=201, operation_id="register_order", response_model=OrderPublic,
             responses={200: {"model": OrderPublic, "description": "Already registered with the same details"}})
async def register_order(body: OrderCreate, actor: PlatformActor, services: ServicesDep,
                         response: Response) -> OrderPublic:
    """Register a paid order; its payment is recorded as held in the order's escrow."""
    try:
        order, created = await run_in_threadpool(services.orders.register, PaidOrder(**body.model_dump()))
    except OrderConflict as error:
        raise Problem(409, "Order conflict", str(error), type=problem_type(error.code)) from error
    except AmountOverflow as error:
        raise Problem(422, "Amount too large", str(error), type=problem_type("amount-too-large")) from error
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/orders/{order.id}"
    return await run_in_threadpool(_public, services, order)


@router.get("/{order_id}", operation_id="get_order", response_model=OrderPublic)
async def get_order(order_id: OrderId, actor: CurrentActor, services: ServicesDep) -> OrderPublic:
    order = await run_in_threadpool(_get, services, order_id)
    if actor.role in (Role.BUYER, Role.SELLER) and actor.party_id not in (order.buyer_id, order.seller_id):
        raise Problem(403, "Forbidden", f"Order {order_id} is not one of {actor.party_id}'s orders.",
                      type=problem_type("forbidden"))
    return await run_in_threadpool(_public, services, order)


@router.post("/{order_id}/complete", operation_id="complete_order", response_model=OrderPublic)
async def complete_order(order_id: OrderId, actor: PlatformActor, services: ServicesDep) -> OrderPublic:
    """The buyer confirmed receipt: pay the escrow out to the seller. Refused while a dispute is open."""
    await run_in_threadpool(_get, services, order_id)
    try:
        order = await run_in_threadpool(services.orders.complete, order_id)
    except DisputeAlreadyOpen as error:
        raise Problem(409, "Dispute open", str(error), type=problem_type(error.code),
                      dispute_id=error.dispute_id) from error
    return await run_in_threadpool(_public, services, order)


def _get(services: Services, order_id: str) -> Order:
    try:
        return services.orders.get(order_id)
    except OrderNotFound as error:
        raise Problem(404, "Not found", str(error), type=problem_type(error.code)) from error


def _public(services: Services, order: Order) -> OrderPublic:
    escrow = services.ledger.account(accounts.escrow(order.id, order.currency))
    return OrderPublic(
        order_id=order.id, buyer_id=order.buyer_id, seller_id=order.seller_id,
        paid=Money(amount=order.amount, currency=order.currency), shipped=order.shipped,
        escrow=Money(amount=escrow.balance, currency=order.currency),
        open_dispute_id=order.open_dispute_id, completed_at=order.completed_at, created_at=order.created_at,
    )

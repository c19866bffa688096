"""The rules of negotiation: who may do what in which state, and the windows that apply.

Pure functions, shared by the workflow's validators and the views it returns, so the
actions a client is offered are exactly the ones it will be allowed to take.
"""

from temporalio.exceptions import ApplicationError

from identity import Actor, Role
from workflows.models import Action, DisputeKind, DisputeState, OrderSnapshot, RefundRequest

S = DisputeState

# Failure types the API maps to HTTP statuses (api/problems.py).
FORBIDDEN = "Forbidden"
NOT_ALLOWED_NOW = "ActionNotAllowed"
INVALID = "InvalidAction"

_BUYER_ACTIONS = {a for a in Action if a.value.startswith("buyer_")}
_SELLER_ACTIONS = {a for a in Action if a.value.startswith("seller_")}


def allowed_actions(state: DisputeState, kind: DisputeKind, shipped: bool) -> dict[Role, list[Action]]:
    seller: list[Action] = []
    buyer: list[Action] = []
    if state == S.WAIT_SELLER_AGREE:
        seller = [Action.SELLER_AGREE_REFUND, Action.SELLER_REFUSE, Action.SELLER_OFFER_PARTIAL]
        if kind == DisputeKind.RETURN_AND_REFUND and shipped:
            seller.insert(1, Action.SELLER_AGREE_RETURN)
        buyer = [Action.BUYER_REVISE, Action.BUYER_WITHDRAW]
    elif state == S.SELLER_REFUSED:
        buyer = [Action.BUYER_REVISE, Action.BUYER_WITHDRAW]
    elif state == S.WAIT_BUYER_ANSWER_OFFER:
        buyer = [Action.BUYER_ACCEPT_OFFER, Action.BUYER_REFUSE_OFFER, Action.BUYER_WITHDRAW]
    elif state == S.WAIT_BUYER_RETURN_GOODS:
        buyer = [Action.BUYER_SHIP_RETURN, Action.BUYER_WITHDRAW]
    elif state == S.WAIT_SELLER_CONFIRM_GOODS:
        seller = [Action.SELLER_CONFIRM_RETURN]
    return {role: actions for role, actions in ((Role.BUYER, buyer), (Role.SELLER, seller)) if actions}


def check_party(action: Action, actor: Actor, order: OrderSnapshot) -> None:
    if action in _BUYER_ACTIONS and not (actor.role == Role.BUYER and actor.party_id == order.buyer_id):
        raise forbidden(f"only the buyer of order {order.order_id} may {action.value}")
    if action in _SELLER_ACTIONS and not (actor.role == Role.SELLER and actor.party_id == order.seller_id):
        raise forbidden(f"only the seller of order {order.order_id} may {action.value}")


def check_request_fits_order(request: RefundRequest, order: OrderSnapshot) -> None:
    if request.amount.currency != order.paid.currency:
        raise invalid(f"the order was paid in {order.paid.currency}; a refund request must use it too")
    if request.amount.amount <= 0:
        raise invalid("the requested amount must be more than 0")
    if request.amount.amount > order.paid.amount:
        raise invalid(f"the requested amount may not exceed the {order.paid} paid for the order")
    if request.kind == DisputeKind.RETURN_AND_REFUND and not order.shipped:
        raise invalid("nothing was shipped, so there is nothing to return: request a refund only")


def forbidden(message: str) -> ApplicationError:
    return ApplicationError(message, type=FORBIDDEN, non_retryable=True)


def not_allowed(message: str, state: DisputeState) -> ApplicationError:
    return ApplicationError(message, {"state": state.value}, type=NOT_ALLOWED_NOW, non_retryable=True)


def invalid(message: str) -> ApplicationError:
    return ApplicationError(message, type=INVALID, non_retryable=True)

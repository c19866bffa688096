from orders.models import ClosedDispute, Order
from orders.service import (
    DisputeAlreadyOpen,
    DisputeLimitReached,
    OrderConflict,
    OrderError,
    OrderNotFound,
    OrderRuledOn,
    OrderService,
    PaidOrder,
    ReopenWindowClosed,
    claim_dispute,
    locked,
)

__all__ = ["ClosedDispute", "DisputeAlreadyOpen", "DisputeLimitReached", "Order", "OrderConflict", "OrderError",
           "OrderNotFound", "OrderRuledOn", "OrderService", "PaidOrder", "ReopenWindowClosed", "claim_dispute",
           "locked"]

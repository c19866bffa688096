from orders.models import Order
from orders.service import (
    DisputeAlreadyOpen,
    OrderConflict,
    OrderError,
    OrderNotFound,
    OrderService,
    PaidOrder,
)

__all__ = ["DisputeAlreadyOpen", "Order", "OrderConflict", "OrderError", "OrderNotFound", "OrderService", "PaidOrder"]

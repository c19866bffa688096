from activities.definition import uninterrupted
from orders import OrderService
from workflows.models import ReleaseOrder


class OrderActivities:
    def __init__(self, orders: OrderService):
        self._orders = orders

    @uninterrupted
    def release_order(self, request: ReleaseOrder) -> None:
        self._orders.release_dispute(request.order_id, request.dispute_id, ruled=request.ruled)

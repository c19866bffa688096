"""Retries and crashes: money moves exactly once."""

import time
from datetime import datetime

from temporalio.api.enums.v1 import EventType

from ledger import Ledger, TransferRequest
from policy import Window
from tests.support import ACTING_ROOM, SELLER, Stack, eventually


class LedgerThatLosesTheFirstReply(Ledger):
    """Commits every batch, but the first reply for each batch is lost on the way back,
    as when a connection drops after COMMIT: the activity fails and Temporal retries it."""

    def __init__(self, engine):
        super().__init__(engine)
        self.answered: set[tuple[str, ...]] = set()

    def create_transfers(self, requests: list[TransferRequest]):
        results = super().create_transfers(requests)
        batch = tuple(r.id for r in requests)
        if batch not in self.answered:
            self.answered.add(batch)
            raise ConnectionError("connection lost after commit")
        return results


async def test_a_retried_ledger_activity_does_not_pay_twice(stack: Stack) -> None:
    await stack.stop_worker()
    await stack.start_worker(ledger=LedgerThatLosesTheFirstReply(stack.services.engine))
    order_id = await stack.register_order(amount=10_000)
    opened = await stack.open_dispute(order_id, amount=6_000)
    dispute_id = opened["dispute_id"]
    assert opened["escrow_frozen"]["amount"] == 10_000, "the retried freeze reports the hold it made"
    closed = await stack.act(dispute_id, "seller-agree-refund", SELLER)
    assert closed["state"] == "SUCCESS"
    assert stack.money(order_id) == {"escrow": 0, "escrow_pending": 0, "buyer_refunds": 6_000,
                                     "seller_released": 4_000}
    assert [t.id for t in stack.services.ledger.transfers(dispute_id=dispute_id)] == [
        f"{dispute_id}-freeze", f"{dispute_id}-release", f"{dispute_id}-refund"]
    assert stack.services.ledger.check_invariants() == []
    history = await stack.services.temporal.get_workflow_handle(dispute_id).fetch_history()
    attempts = [e.activity_task_started_event_attributes.attempt for e in history.events
                if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED]
    assert max(attempts) >= 2, "the failure after commit was retried"


async def test_a_timer_that_fires_while_no_worker_runs_is_honoured_once(stack: Stack) -> None:
    stack.set_windows(seller_response_shipped_refund_only=Window.seconds(ACTING_ROOM))
    order_id = await stack.register_order(amount=8_000)
    opened = await stack.open_dispute(order_id, amount=8_000)
    dispute_id = opened["dispute_id"]
    due = datetime.fromisoformat(opened["deadlines"][0]["due_at"]).timestamp()
    await stack.stop_worker()

    async def deadline_passed() -> bool:
        return time.time() > due + 1

    await eventually(deadline_passed, what="the seller's deadline to pass with no worker running")
    assert stack.money(order_id)["buyer_refunds"] == 0, "nothing runs without a worker"
    await stack.start_worker()
    closed = await stack.wait_for_state(dispute_id, "SUCCESS")
    assert closed["resolution"]["timer"] == "seller_response"
    assert stack.money(order_id) == {"escrow": 0, "escrow_pending": 0, "buyer_refunds": 8_000,
                                     "seller_released": 0}

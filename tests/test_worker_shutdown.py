"""A worker told to stop lets its in-flight activities finish within the shutdown grace: the
case's money step completes on the worker that started it, not on the next one."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.worker import Worker

from config.settings import Settings
from ledger import Ledger
from tests.support import Stack, eventually
from worker import build_worker, tuning_options


class HeldLedger(Ledger):
    """Holds every batch of transfers until released, as a slow database would."""

    def __init__(self, engine: Engine):
        super().__init__(engine)
        self.entered = threading.Event()
        self.release = threading.Event()

    def create_transfers(self, requests, **kwargs):
        self.entered.set()
        assert self.release.wait(timeout=60)
        return super().create_transfers(requests, **kwargs)


class LedgerHeldUntilCancelled(Ledger):
    """Holds a batch until the stopping worker cancels the activity posting it, then posts it."""

    def __init__(self, engine: Engine):
        super().__init__(engine)
        self.entered = threading.Event()

    def create_transfers(self, requests, **kwargs):
        self.entered.set()
        deadline = time.monotonic() + 60
        while not activity.is_cancelled():
            assert time.monotonic() < deadline, "the stopping worker never cancelled the activity"
            time.sleep(0.01)
        return super().create_transfers(requests, **kwargs)


async def _freeze_in_flight(stack: Stack, executor: ThreadPoolExecutor, ledger: HeldLedger | LedgerHeldUntilCancelled,
                            grace: int) -> tuple[str, Worker, asyncio.Task, asyncio.Task]:
    """A dispute opening on a worker of its own over `ledger`, once its escrow freeze is in flight:
    the order, the worker, the worker's run and the opening."""
    order_id = await stack.register_order()  # the API's ledger: not held
    await stack.stop_worker()
    worker = build_worker(stack.services.temporal, stack.task_queue, stack.services.engine, executor, ledger=ledger,
                          **tuning_options(Settings(worker_shutdown_grace=grace)))
    running = asyncio.create_task(worker.run())
    opening = asyncio.create_task(stack.open_dispute(order_id))
    await asyncio.to_thread(ledger.entered.wait, 60)
    return order_id, worker, running, opening


async def test_in_flight_activities_finish_within_the_shutdown_grace(
        stack: Stack, app_engine: Engine, activity_executor: ThreadPoolExecutor) -> None:
    ledger = HeldLedger(app_engine)
    order_id, worker, running, opening = await _freeze_in_flight(stack, activity_executor, ledger, grace=30)

    stopping = asyncio.create_task(worker.shutdown())
    await asyncio.sleep(1)  # the worker is shutting down while the activity still runs
    assert not stopping.done()
    ledger.release.set()
    await asyncio.wait_for(stopping, timeout=30)
    await running

    history = await stack.services.temporal.get_workflow_handle(f"dsp-{order_id}-1").fetch_history()
    completed = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED]
    assert len(completed) == 1, "the freeze completed on the worker that ran it"
    assert not [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED]

    await stack.start_worker()
    opened = await asyncio.wait_for(opening, timeout=60)
    assert opened["state"] == "WAIT_SELLER_AGREE"
    assert await eventually(lambda: _frozen(stack, order_id), what="the escrow frozen")


async def test_a_worker_stopped_past_its_grace_lets_a_started_posting_finish(
        any_stack: Stack, activity_executor: ThreadPoolExecutor) -> None:
    """Past the grace the SDK cancels a thread's activity by raising inside the thread, wherever it
    is; inside the database driver that left a pooled PostgreSQL connection mid-command, and the
    next request to check it out answered 500. An activity runs to its end instead."""
    stack = any_stack
    engine = stack.services.engine
    order_id, worker, running, opening = await _freeze_in_flight(
        stack, activity_executor, LedgerHeldUntilCancelled(engine), grace=0)

    await asyncio.wait_for(worker.shutdown(), timeout=60)
    await running
    # The stopped worker's freeze committed: nothing else could have posted it.
    assert stack.money(order_id)["escrow_pending"] > 0
    # Every pooled connection passes its check-out (PostgreSQL's pre-ping is where it failed).
    connections = [engine.raw_connection() for _ in range(engine.pool.size())]
    for connection in connections:
        connection.close()

    await stack.start_worker()
    opened = await asyncio.wait_for(opening, timeout=60)
    assert opened["state"] == "WAIT_SELLER_AGREE"


async def _frozen(stack: Stack, order_id: str) -> bool:
    return stack.money(order_id)["escrow_pending"] > 0

"""A worker told to stop lets its in-flight activities finish within the shutdown grace: the
case's money step completes on the worker that started it, not on the next one."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine
from temporalio.api.enums.v1 import EventType

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


async def test_in_flight_activities_finish_within_the_shutdown_grace(
        stack: Stack, app_engine: Engine, activity_executor: ThreadPoolExecutor) -> None:
    order_id = await stack.register_order()  # the API's ledger: not held
    await stack.stop_worker()
    ledger = HeldLedger(app_engine)
    worker = build_worker(stack.services.temporal, stack.task_queue, app_engine, activity_executor, ledger=ledger,
                          **tuning_options(Settings(worker_shutdown_grace=30)))
    running = asyncio.create_task(worker.run())
    opening = asyncio.create_task(stack.open_dispute(order_id))
    await asyncio.to_thread(ledger.entered.wait, 60)  # the escrow freeze is in flight

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


async def _frozen(stack: Stack, order_id: str) -> bool:
    return stack.money(order_id)["escrow_pending"] > 0

"""A worker killed (SIGKILL) right after committing a settlement: the next worker finishes
the case, and the money moves exactly once.

The settlement runs in a worker subprocess (tests/crashing_worker.py) whose ledger commits
the settlement batch and then hangs; the test kills it, starts an in-process worker, and the
activity's retry (after its 30 s start-to-close timeout) finds every transfer already made.
This test takes about 35 s, most of it that timeout.
"""

import asyncio
import json
import signal
import sys
from pathlib import Path

from sqlalchemy import Engine
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from ledger import accounts
from policy import Window
from tests.support import BUYER, MEDIATOR, PLATFORM, SELLER, Stack, eventually

CURRENCY = "ZAR"  # no other test uses it: the balances below are absolute
PROJECT = Path(__file__).resolve().parents[1]


async def test_a_worker_killed_after_committing_a_settlement_settles_exactly_once(
        stack: Stack, app_engine: Engine, temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    ledger = stack.services.ledger
    # The settlement comes from the seller's confirmation window lapsing: no API call waits
    # on the worker that dies.
    stack.set_windows(seller_confirm_return=Window.seconds(2))
    await stack.ok("POST", "/guarantee-fund/top-ups", PLATFORM,
                   {"amount": {"amount": 50_000, "currency": CURRENCY}, "reference": "zar-crash-1"}, status=201)
    order_id = await stack.register_order(amount=10_000, currency=CURRENCY)
    dispute_id = (await stack.open_dispute(order_id, kind="return_and_refund", amount=8_000,
                                           currency=CURRENCY))["dispute_id"]
    await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "It left us intact"})
    await stack.act(dispute_id, "buyer-escalate", BUYER, {"reason": "It arrived broken"})
    await stack.act(dispute_id, "mediator-take", MEDIATOR)
    await stack.act(dispute_id, "mediator-order-advance", MEDIATOR, {
        "amount": {"amount": 5_000, "currency": CURRENCY}, "rationale": "Photos show the damage",
        "buyer_in_good_faith": True, "return_goods": True, "return_address": "Returns desk, 1 Harbour Rd"})

    # From here on only the crashing worker serves the task queue.
    await stack.stop_worker()
    marker = tmp_path / "settled.json"
    log = (tmp_path / "crashing_worker.log").open("wb")
    client = temporal_env.client
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(PROJECT / "tests" / "crashing_worker.py"), client.service_client.config.target_host,
        client.namespace, stack.task_queue, str(app_engine.url), dispute_id, str(marker),
        cwd=PROJECT, stdout=log, stderr=log)
    try:
        shipped = await stack.act(dispute_id, "buyer-ship-return", BUYER,
                                  {"carrier": "DHL", "tracking_number": "DHL4455667"})
        assert shipped["state"] == "WAIT_SELLER_CONFIRM_GOODS"

        async def settlement_committed() -> bool:
            assert process.returncode is None, (tmp_path / "crashing_worker.log").read_text()
            return marker.exists()

        await eventually(settlement_committed, timeout=60, what="the crashing worker to commit the settlement")
        committed = json.loads(marker.read_text())
        assert committed == [f"{dispute_id}-release", f"{dispute_id}-advance-settlement",
                             f"{dispute_id}-advance-recovery", f"{dispute_id}-refund"]
        before_crash = ledger.transfers(dispute_id=dispute_id)
        assert [t.id for t in before_crash][-4:] == committed, "the batch is committed"
        view = await stack.dispute(dispute_id)
        assert view["state"] == "SUCCESS" and view["resolution"]["settled"] is False, \
            "the workflow has not heard back from the settlement"
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
        returncode = await process.wait()
        log.close()
    assert returncode == -signal.SIGKILL

    await stack.start_worker()
    closed = await stack.wait_for_state(dispute_id, "SUCCESS", timeout=90)
    assert closed["resolution"]["timer"] == "seller_confirm_return"
    assert closed["refunded"] == {"amount": 8_000, "currency": CURRENCY}
    assert closed["resolution"]["released_to_seller"] == {"amount": 2_000, "currency": CURRENCY}
    assert closed["advance"]["status"] == "final"

    # Exactly once: the retried settlement found every transfer made and added none.
    transfers = ledger.transfers(dispute_id=dispute_id)
    assert transfers == before_crash
    ids = [t.id for t in transfers]
    assert len(ids) == len(set(ids))
    assert [(t.code, t.phase, t.amount) for t in transfers] == [
        ("freeze", "pending", 10_000),
        ("advance", "pending", 5_000),
        ("release", "post_pending", 2_000),
        ("advance_settlement", "post_pending", 5_000),
        ("advance_recovery", "single", 5_000),
        ("refund", "single", 3_000),
    ]
    fund = ledger.account(accounts.guarantee_fund(CURRENCY))
    assert (fund.balance, fund.debits_pending) == (50_000, 0), "the fund recovered its advance once"
    buyer = ledger.account(accounts.buyer("alice", CURRENCY))
    assert (buyer.balance, buyer.credits_pending) == (8_000, 0), "advance 解冻 plus the rest of the refund, once"
    seller = ledger.account(accounts.seller("acme", CURRENCY))
    assert (seller.balance, seller.credits_pending) == (2_000, 0)
    escrow = ledger.account(accounts.escrow(order_id, CURRENCY))
    assert (escrow.balance, escrow.debits_pending) == (0, 0)
    assert ledger.check_invariants() == []

    # The settlement did run twice: the killed attempt and the retry that found it done.
    handle = stack.services.temporal.get_workflow_handle(dispute_id)
    await asyncio.wait_for(handle.result(), timeout=30)
    history = await handle.fetch_history()
    scheduled = {e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
                 for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED}
    settle_attempts = [e.activity_task_started_event_attributes.attempt for e in history.events
                       if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
                       and scheduled[e.activity_task_started_event_attributes.scheduled_event_id]
                       == "settle_dispute"]
    assert settle_attempts == [2]
    assert (await stack.ok("GET", f"/orders/{order_id}", PLATFORM))["open_dispute_id"] is None

"""A closed case (a dispute or a complaint) outlives its Temporal history: archived by the
case and the sweeper, then deleted from Temporal as retention would, and still read,
trailed, exported, replayed and reconciled from the archive."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from archive.bundle import FinalComplaint
from archive.records import Part
from archive.service import Archive
from archive.stores import ArchiveStore
from archive.sweeper import SWEEP_SCHEDULE_ID, archive_closed_runs, ensure_sweep_schedule
from audit import history as histories
from config.temporal import Visibility
from database import make_engine, migrate
from policy import versions
from tests.complaint_support import SENIOR, act, complaint, complaint_policy, file, new_seller, wait_final
from tests.support import AUDITOR, BUYER, OTHER_BUYER, SELLER, Stack, eventually
from workflows.dispute import DisputeWorkflow


@pytest_asyncio.fixture
async def own_stack(stack_factory, tmp_path: Path) -> AsyncIterator[Stack]:  # noqa: ANN001
    """A stack on a database of its own: these tests delete cases from Temporal, which must
    not leave the session's shared ledger naming disputes the other tests cannot find."""
    engine = make_engine(f"sqlite:///{tmp_path}/app.db")
    migrate(engine)
    async with stack_factory(engine) as stack:
        yield stack


async def _close_refunded_case(stack: Stack) -> tuple[str, str]:
    order_id = await stack.register_order(amount=10_000)
    dispute_id = (await stack.open_dispute(order_id, amount=6_000))["dispute_id"]
    await stack.act(dispute_id, "seller-agree-refund", SELLER)
    handle = stack.services.temporal.get_workflow_handle(dispute_id)
    await asyncio.wait_for(handle.result(), timeout=60)
    return dispute_id, (await handle.describe()).run_id


async def _sweep(stack: Stack, dispute_id: str, run_id: str) -> None:
    """Run the sweeper's Schedule now, and wait for it to have archived the run."""
    client = stack.services.temporal
    await ensure_sweep_schedule(client, stack.task_queue, timedelta(hours=1))
    schedule = client.get_schedule_handle(f"{SWEEP_SCHEDULE_ID}-{stack.task_queue}")
    try:
        await schedule.trigger()
        archive = stack.services.archive

        async def archived() -> bool:
            return await asyncio.to_thread(archive.has_history, dispute_id, run_id)

        await eventually(archived, timeout=60, what=f"{dispute_id}'s history in the archive")
    finally:
        await schedule.delete()


async def _delete_from_temporal(client: Client, dispute_id: str) -> None:
    """What the namespace's retention does to a closed execution, now rather than in 14 days."""
    await client.workflow_service.delete_workflow_execution(DeleteWorkflowExecutionRequest(
        namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=dispute_id)))

    async def gone() -> bool:
        try:
            await client.get_workflow_handle(dispute_id).describe()
        except RPCError as error:
            return error.status == RPCStatusCode.NOT_FOUND
        return False

    await eventually(gone, timeout=60, what=f"{dispute_id} deleted from Temporal")


async def test_a_deleted_case_is_read_trailed_exported_replayed_and_reconciled_from_the_archive(
        own_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = own_stack
    dispute_id, run_id = await _close_refunded_case(stack)
    archive = stack.services.archive
    live_view = await stack.dispute(dispute_id)
    live_history = await stack.ok("GET", f"/audit/disputes/{dispute_id}/history", AUDITOR)
    live_trail = await stack.ok("GET", f"/audit/disputes/{dispute_id}/trail", AUDITOR)

    # The case archived its final part itself, before its run completed.
    case = archive.case(dispute_id)
    assert case.final is not None and case.histories == []
    assert case.final.view.state == "SUCCESS" and case.final.view.refunded.amount == 6_000
    assert case.final.policy.version == live_view["policy_version"]
    assert {t.code for t in case.final.transfers} >= {"refund"}
    await _sweep(stack, dispute_id, run_id)
    await _delete_from_temporal(stack.services.temporal, dispute_id)

    # Everything an auditor or a party reads is still there, and the same.
    assert await stack.dispute(dispute_id) == live_view
    assert await stack.dispute(dispute_id, token=BUYER) == live_view
    assert (await stack.call("GET", f"/disputes/{dispute_id}", OTHER_BUYER)).status_code == 403
    transfers = await stack.ok("GET", f"/disputes/{dispute_id}/transfers", BUYER)
    assert sum(t["amount"] for t in transfers if t["code"] == "refund") == 6_000
    assert await stack.ok("GET", f"/audit/disputes/{dispute_id}/history", AUDITOR) == live_history
    assert await stack.ok("GET", f"/audit/disputes/{dispute_id}/trail", AUDITOR) == live_trail
    replayed = await stack.ok("POST", "/audit/replay", AUDITOR, {"dispute_ids": [dispute_id]})
    assert replayed["ok"] and replayed["replayed"] == 1, replayed
    # Its input names a shipped policy version by ref; on code that lacks that version, the
    # archive record's policy body stands for it.
    [ref] = histories.policy_refs(archive.case(dispute_id).histories)
    assert ref == versions.ref_or_body(stack.services.policy)
    monkeypatch.setattr(versions, "_BODIES", {sha: held for sha, held in versions._BODIES.items() if sha != ref.sha256})
    replayed = await stack.ok("POST", "/audit/replay", AUDITOR, {"dispute_ids": [dispute_id]})
    assert replayed["ok"] and replayed["replayed"] == 1, replayed
    trail = await stack.ok("GET", f"/reconciliation/disputes/{dispute_id}", AUDITOR)
    assert trail["state"] == "SUCCESS" and trail["report"]["ok"], trail["report"]["findings"]
    report = await stack.ok("GET", "/reconciliation", AUDITOR)
    assert report["ok"] and report["findings"] == [], report["findings"]
    assert report["archived_disputes"] == 1
    assert report["archive_head"]["hash"] == archive.head().hash
    assert archive.verify().ok


async def _close_overturned_complaint(stack: Stack) -> tuple[str, str]:
    """Upheld by the seller's silence (compensation paid), appealed, the appeal upheld (repaid)."""
    stack.services.complaint_policy = complaint_policy(seller_response=1)
    seller = new_seller(stack)
    order_id = await stack.register_order(amount=20_000, seller=seller.party_id)
    complaint_id = (await file(stack, order_id, "fake_shipment"))["complaint_id"]

    async def appealable() -> bool:
        return (await complaint(stack, complaint_id))["deadline_kind"] == "appeal"

    await eventually(appealable, what="the appeal window")
    await act(stack, complaint_id, "seller-appeal", seller.token, {"reason": "Shipped", "new_information": "Receipt"})
    await act(stack, complaint_id, "senior-decide-appeal", SENIOR, {"decision": "uphold_appeal",
                                                                     "rationale": "The receipt holds"})
    await wait_final(stack, complaint_id)
    return complaint_id, (await stack.services.temporal.get_workflow_handle(complaint_id).describe()).run_id


async def test_a_deleted_complaint_is_trailed_exported_replayed_and_reconciled_from_the_archive(
        own_stack: Stack) -> None:
    stack = own_stack
    complaint_id, run_id = await _close_overturned_complaint(stack)
    archive = stack.services.archive
    audit = f"/audit/complaints/{complaint_id}"
    live_view = await complaint(stack, complaint_id)
    live_history = await stack.ok("GET", f"{audit}/history", AUDITOR)
    live_trail = await stack.ok("GET", f"{audit}/trail", AUDITOR)

    # The complaint archived its final part itself, before its run completed.
    case = archive.case(complaint_id)
    assert isinstance(case.final, FinalComplaint) and case.histories == []
    assert case.final.view.state == "OVERTURNED" and case.final.view.final
    assert case.final.view.compensation.reversed_by == f"{complaint_id}-compensation-reversal"
    assert case.final.policy.version == live_view["policy_version"]
    assert [(t.code, t.amount) for t in case.final.transfers] == [
        ("complaint_compensation", 2_000), ("complaint_compensation_reversal", 2_000)]
    await _sweep(stack, complaint_id, run_id)
    assert [r.part for r in archive.store.find(complaint_id)] == [Part.FINAL, Part.HISTORY]
    await _delete_from_temporal(stack.services.temporal, complaint_id)

    assert await stack.ok("GET", f"{audit}/history", AUDITOR) == live_history
    assert await stack.ok("GET", f"{audit}/trail", AUDITOR) == live_trail
    replayed = await stack.ok("POST", f"{audit}/replay", AUDITOR)
    assert replayed["ok"] and replayed["replayed"] == 1, replayed
    report = await stack.ok("GET", "/reconciliation", AUDITOR)
    assert report["ok"] and report["findings"] == [], report["findings"]
    assert report["archived_complaints"] == 1
    assert archive.verify().ok

    # A legal hold keeps a complaint past its keeping period as it keeps a dispute; released, it goes.
    later = datetime.now(UTC) + archive.keep_for + timedelta(days=1)
    archive.hold(complaint_id, "court order 7/2026", "legal")
    assert complaint_id in archive.purge_expired(now=later).held
    assert await stack.ok("GET", f"{audit}/trail", AUDITOR) == live_trail
    archive.release(complaint_id)
    assert {r.dispute_id for r in archive.purge_expired(now=later).purged} == {complaint_id}
    assert (await stack.call("GET", f"{audit}/trail", AUDITOR)).status_code == 404


class _Unwritable:
    """A store whose disk is full: reads work, writes fail."""

    def __init__(self, store: ArchiveStore):
        self._store = store

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._store, name)

    def add(self, record) -> None:  # noqa: ANN001
        raise OSError(28, "No space left on device")


async def test_a_case_whose_archive_write_failed_is_archived_by_the_sweeper(own_stack: Stack) -> None:
    stack = own_stack
    archive = stack.services.archive
    await stack.stop_worker()
    await stack.start_worker(archive=Archive(_Unwritable(archive.store), stack.services.engine, archive.keep_for))
    # The case closes anyway once its own write has failed a few times.
    dispute_id, run_id = await _close_refunded_case(stack)
    assert archive.case(dispute_id) is None

    await stack.stop_worker()
    await stack.start_worker()
    # Temporal still has the closed case (its retention has 14 days to go): the sweeper archives it.
    await _sweep(stack, dispute_id, run_id)
    case = archive.case(dispute_id)
    assert case.final.view.state == "SUCCESS" and case.final.view.refunded.amount == 6_000
    assert case.final.view.resolution.settled
    assert sum(t.amount for t in case.final.transfers if t.code == "refund") == 6_000
    assert [r.part for r in archive.store.find(dispute_id)] == [Part.FINAL, Part.HISTORY]
    await _delete_from_temporal(stack.services.temporal, dispute_id)
    assert (await stack.dispute(dispute_id))["refunded"]["amount"] == 6_000


class _UnwritableFor(_Unwritable):
    """A store that refuses one case's records (say, one too large for it) and takes the others'."""

    def __init__(self, store: ArchiveStore, dispute_id: str):
        super().__init__(store)
        self._dispute_id = dispute_id

    def add(self, record) -> None:  # noqa: ANN001
        if record.dispute_id == self._dispute_id:
            super().add(record)
        self._store.add(record)


async def test_a_run_the_sweeper_cannot_archive_keeps_no_other_from_the_archive(own_stack: Stack) -> None:
    stack = own_stack
    archive, client = stack.services.archive, stack.services.temporal
    await stack.stop_worker()
    await stack.start_worker(archive=Archive(_Unwritable(archive.store), stack.services.engine, archive.keep_for))
    # Two cases close without archiving themselves.
    (stuck, _), (other, other_run) = [await _close_refunded_case(stack) for _ in range(2)]
    query = str(Visibility.of(DisputeWorkflow.__name__).closed().on_task_queue(stack.task_queue))

    async def both_listed() -> bool:
        return {execution.id async for execution in client.list_workflows(query)} >= {stuck, other}

    await eventually(both_listed, what="both closed cases in visibility")

    refusing = Archive(_UnwritableFor(archive.store, stuck), stack.services.engine, archive.keep_for)
    swept = await archive_closed_runs(client, refusing, stack.services.ledger, stack.task_queue,
                                      DisputeWorkflow.__name__)
    assert (swept.archived, swept.failed) == ([other], [stuck])
    assert archive.has_history(other, other_run) and archive.case(stuck) is None
    # The next sweep, on a store that takes it, archives it.
    again = await archive_closed_runs(client, archive, stack.services.ledger, stack.task_queue,
                                      DisputeWorkflow.__name__)
    assert (again.archived, again.failed) == ([stuck], [])
    assert [r.part for r in archive.store.find(stuck)] == [Part.FINAL, Part.HISTORY]


async def test_retrying_an_opening_after_the_case_left_temporal_does_not_open_it_again(own_stack: Stack) -> None:
    stack = own_stack
    order_id = await stack.register_order(amount=10_000)
    body = {"order_id": order_id, "kind": "refund_only", "reason": "quality",
            "amount": {"amount": 6_000, "currency": "CNY"}, "description": "The kettle leaks from the base."}
    key = {"Idempotency-Key": f"open-{order_id}"}
    opened = await stack.ok("POST", "/disputes", BUYER, body, headers=key, status=201)
    dispute_id = opened["dispute_id"]
    await stack.act(dispute_id, "seller-agree-refund", SELLER)
    handle = stack.services.temporal.get_workflow_handle(dispute_id)
    await asyncio.wait_for(handle.result(), timeout=60)
    await _sweep(stack, dispute_id, (await handle.describe()).run_id)
    await _delete_from_temporal(stack.services.temporal, dispute_id)

    again = await stack.ok("POST", "/disputes", BUYER, body, headers=key, status=201)
    assert again["dispute_id"] == dispute_id and again["state"] == "SUCCESS"
    with pytest.raises(RPCError) as missing:
        await handle.describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND
    assert stack.money(order_id)["buyer_refunds"] == 6_000

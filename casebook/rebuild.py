"""Bring the casebook level with the running cases: `disputeflow casebook rebuild`.

Notifications keep the casebook current; this is for what they cannot tell it: cases opened
before the casebook existed (until their next event), and workflows ended from outside
(terminated, timed out), whose rows would otherwise wait in the queue for ever. Safe to run
at any time and any number of times: a row only ever moves to a newer event."""

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from casebook.service import Casebook
from config.temporal import Visibility
from workflows.dispute import DisputeWorkflow

# A worker answers a query in milliseconds; a case whose task queue nobody polls is skipped.
QUERY_TIMEOUT = timedelta(seconds=5)
CONCURRENT_QUERIES = 16


@dataclass
class RebuildReport:
    recorded: int = 0
    ended: list[str] = field(default_factory=list)
    # Running cases no worker answered for: their rows are as the last notification left them.
    unanswered: list[str] = field(default_factory=list)


async def rebuild(client: Client, casebook: Casebook, *, visibility_filter: str | None = None) -> RebuildReport:
    """`visibility_filter` (a Temporal visibility query, e.g. "TaskQueue = 'disputes'") narrows
    which running cases are asked."""
    report = RebuildReport()
    running = str(Visibility.of(DisputeWorkflow.__name__).running().matching(visibility_filter))
    gate = asyncio.Semaphore(CONCURRENT_QUERIES)

    async def refresh(dispute_id: str) -> None:
        async with gate:
            try:
                case = await client.get_workflow_handle(dispute_id).query(DisputeWorkflow.case,
                                                                           rpc_timeout=QUERY_TIMEOUT)
            except (RPCError, WorkflowQueryFailedError):
                report.unanswered.append(dispute_id)
                return
        await asyncio.to_thread(casebook.record, dispute_id, case)
        report.recorded += 1

    await asyncio.gather(*[refresh(execution.id) async for execution in client.list_workflows(running)])
    for dispute_id in sorted(casebook.open_dispute_ids()):
        if not await _running(client, dispute_id):
            casebook.mark_ended(dispute_id)
            report.ended.append(dispute_id)
    return report


async def _running(client: Client, dispute_id: str) -> bool:
    try:
        description = await client.get_workflow_handle(dispute_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False  # Temporal's retention already removed the ended workflow
        raise
    return description.status == WorkflowExecutionStatus.RUNNING

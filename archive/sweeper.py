"""The sweeper: archives every closed run Temporal still holds and the archive does not,
so a case whose own archive write failed (or that predates it) is caught before the
namespace's retention deletes it. A Temporal Schedule runs it (`ensure_sweep_schedule`)."""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    SchedulePolicy,
    ScheduleOverlapPolicy,
    ScheduleSpec,
    WorkflowHistory,
)

from archive import bundle
from archive.service import Archive
from config.temporal import Visibility
from ledger import Ledger

log = logging.getLogger("disputeflow.archive")

SWEEP_SCHEDULE_ID = "archive-sweep"


def archive_run(archive: Archive, ledger: Ledger, history: WorkflowHistory, run_id: str) -> None:
    """One closed run: its final part first if the case did not write it, then its history."""
    dispute_id = history.workflow_id
    if not archive.has_final(dispute_id):
        final = bundle.final_from_history(history, ledger.transfers(dispute_id=dispute_id))
        if final is not None:
            archive.archive_final(final)
            log.warning("archived the final part of %s from its history: the case did not", dispute_id)
    archive.archive_history(history, run_id)


@dataclass
class Swept:
    """The dispute ids of the runs a sweep archived, and of those it could not."""

    archived: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


async def archive_closed_runs(client: Client, archive: Archive, ledger: Ledger, task_queue: str,
                              workflow_type: str, heartbeat: Callable[[str], None] = lambda _: None) -> Swept:
    """Every closed run on `task_queue` not yet archived, archived. A run that cannot be is
    logged and left for the next sweep: one case must not keep every other from the archive
    until retention deletes them."""
    swept = Swept()
    query = str(Visibility.of(workflow_type).closed().on_task_queue(task_queue))
    async for execution in client.list_workflows(query):
        heartbeat(execution.id)
        if await asyncio.to_thread(archive.has_history, execution.id, execution.run_id):
            continue
        try:
            history = await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
            await asyncio.to_thread(archive_run, archive, ledger, history, execution.run_id)
        except Exception:
            log.exception("cannot archive run %s of %s; the next sweep tries again", execution.run_id, execution.id)
            swept.failed.append(execution.id)
        else:
            swept.archived.append(execution.id)
    return swept


async def ensure_sweep_schedule(client: Client, task_queue: str, every: timedelta) -> None:
    """Create the sweeper's Schedule unless it exists (worker start-up and namespace setup
    both call this; the first one creates it)."""
    from workflows.archive_sweep import ArchiveSweepWorkflow

    schedule = Schedule(
        action=ScheduleActionStartWorkflow(ArchiveSweepWorkflow.run, id=f"{SWEEP_SCHEDULE_ID}-{task_queue}",
                                           task_queue=task_queue),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        # A sweep still running when the next is due makes the next unnecessary.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(f"{SWEEP_SCHEDULE_ID}-{task_queue}", schedule)
    except ScheduleAlreadyRunningError:
        pass

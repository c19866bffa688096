"""The archive sweeper, run by a Temporal Schedule (archive.sweeper.ensure_sweep_schedule)."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.archive import ArchiveActivities, SweepResult


@workflow.defn
class ArchiveSweepWorkflow:
    @workflow.run
    async def run(self) -> SweepResult:
        return await workflow.execute_activity_method(
            ArchiveActivities.sweep,
            start_to_close_timeout=timedelta(hours=1),
            # The activity heartbeats per case: a worker that dies mid-sweep is noticed soon.
            heartbeat_timeout=timedelta(minutes=2),
            # The next scheduled sweep tries again anyway.
            retry_policy=RetryPolicy(maximum_attempts=3),
        )

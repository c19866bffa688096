"""Workflow variants for the audit tests: one change to the dispute workflow (acknowledge
the buyer's request before freezing the escrow), shipped carelessly and shipped behind
`workflow.patched`, each registered under the workflow's own name as a deployment would.

They live in their own module (not the test file) because the replayer's sandbox
re-imports a workflow's module, and this one imports only workflow-safe code.
"""

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.notifications import NotificationActivities
    from identity import Role
    from workflows.dispute import DisputeWorkflow
    from workflows.models import DisputeInput, DisputeView, Notification

PATCH_ID = "acknowledge-before-freeze"


async def _acknowledge(input: DisputeInput) -> None:
    await workflow.execute_activity_method(
        NotificationActivities.notify,
        Notification(id=f"{input.dispute_id}-ack", dispute_id=input.dispute_id, recipient_role=Role.BUYER,
                     recipient_id=input.order.buyer_id, kind="request_received",
                     subject=f"We received your request {input.dispute_id}"),
        start_to_close_timeout=timedelta(seconds=30),
    )


@workflow.defn(name="DisputeWorkflow")
class AcknowledgesFirst(DisputeWorkflow):
    """Schedules a notification before freezing the escrow, for every case: each recorded
    history starts with the freeze, so none of them can replay on this code."""

    @workflow.run
    async def run(self, input: DisputeInput) -> DisputeView:
        await _acknowledge(input)
        return await super().run(input)


@workflow.defn(name="DisputeWorkflow")
class AcknowledgesFirstPatched(DisputeWorkflow):
    """The same change behind `workflow.patched`: a case recorded before it replays on the
    old path (no marker in its history), a case started after it takes the new one."""

    @workflow.run
    async def run(self, input: DisputeInput) -> DisputeView:
        if workflow.patched(PATCH_ID):
            await _acknowledge(input)
        return await super().run(input)


@workflow.defn(name="DisputeWorkflow")
class BeforeSettlementAttribute(DisputeWorkflow):
    """The workflow as it was before the `settlement-search-attribute` patch."""

    @workflow.run
    async def run(self, input: DisputeInput) -> DisputeView:
        return await super().run(input)

    def _mark_settled(self) -> None:
        pass


INCOMPATIBLE = [AcknowledgesFirst]
PATCHED = [AcknowledgesFirstPatched]
BEFORE_SETTLEMENT_ATTRIBUTE = [BeforeSettlementAttribute]

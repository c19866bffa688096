"""Workflow variants for the audit tests: deliberately incompatible changes to the dispute
workflow, registered under its name, as a careless deployment would ship them.

They live in their own module (not the test file) because the replayer's sandbox
re-imports a workflow's module, and this one imports only workflow-safe code.
"""

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.orders import OrderActivities
    from workflows.dispute import DisputeWorkflow
    from workflows.models import DisputeInput, DisputeView, ReleaseOrder


@workflow.defn(name="DisputeWorkflow")
class ChecksTheOrderFirst(DisputeWorkflow):
    """Schedules a different activity before freezing the escrow: every recorded history
    starts with the freeze, so none of them can replay on this code."""

    @workflow.run
    async def run(self, input: DisputeInput) -> DisputeView:
        await workflow.execute_activity_method(
            OrderActivities.release_order,
            ReleaseOrder(order_id=input.order.order_id, dispute_id=input.dispute_id),
            start_to_close_timeout=timedelta(seconds=30),
        )
        return await super().run(input)


INCOMPATIBLE = [ChecksTheOrderFirst]

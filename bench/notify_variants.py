"""The dispute workflow as it notified before `notify-all-after-answer`, for
`bench.notify_per_change` to run beside the current one. Its own module, importing only
workflow-safe code, because the workflow sandbox re-imports a workflow's module."""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.dispute import DisputeWorkflow
    from workflows.models import DisputeInput, DisputeView, Notifications


@workflow.defn(name="DisputeWorkflow")
class NotifiesPerRecipient(DisputeWorkflow):
    """One notify activity per recipient, in line with the money and before the answer."""

    @workflow.run
    async def run(self, input: DisputeInput) -> DisputeView:
        return await super().run(input)

    async def _send(self, change: Notifications) -> None:
        await self._send_each(change)

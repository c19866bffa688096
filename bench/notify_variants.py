"""The dispute workflow as it notifies now and as it notified before `notify-all-after-answer`,
for `bench.notify_per_change` to run side by side. Both are subclasses here, so both load
alike: the sandbox re-imports a workflow's module (this small one) for every new workflow,
and `workflows/dispute.py` passes through for both. Its own module, importing only
workflow-safe code, for that reason."""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.dispute import DisputeWorkflow
    from workflows.models import DisputeInput, DisputeView, Notifications


@workflow.defn(name="DisputeWorkflow")
class NotifiesPerChange(DisputeWorkflow):
    """One notify_all activity per change, after the answer and the money (the current code)."""

    @workflow.run
    async def run(self, input: DisputeInput) -> DisputeView:
        return await super().run(input)


@workflow.defn(name="DisputeWorkflow")
class NotifiesPerRecipient(DisputeWorkflow):
    """One notify activity per recipient, in line with the money and before the answer."""

    @workflow.run
    async def run(self, input: DisputeInput) -> DisputeView:
        return await super().run(input)

    async def _send(self, change: Notifications) -> None:
        await self._send_each(change)

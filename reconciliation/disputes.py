"""Which disputes exist and which are closed with their money settled, from Temporal."""

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from config.temporal import SearchAttributes, cases_of
from reconciliation.checks import DisputeStatus
from workflows.dispute import DisputeWorkflow
from workflows.models import DisputeState

_CLOSED = (DisputeState.SUCCESS.value, DisputeState.CLOSED.value)
# A live worker answers in milliseconds; one that stopped may still count as a recent poller.
QUERY_TIMEOUT = timedelta(seconds=2)


async def load_dispute_statuses(client: Client,
                                on_listed: Callable[[], None] = lambda: None) -> dict[str, DisputeStatus]:
    """Every dispute, `settled` when it is closed and its settlement has run.

    Completed cases are settled; so is any case whose `Settlement` search attribute says
    so. A closed case from before that attribute existed, still within its appeal window,
    is asked (a Query); one that cannot answer, because no worker polls its task queue,
    is marked `verified=False`. `on_listed` is called for each dispute listed.
    """
    statuses: dict[str, DisputeStatus] = {}
    in_appeal_window: list[tuple[str, str]] = []
    async for execution in client.list_workflows(cases_of(DisputeWorkflow.__name__)):
        attrs = execution.typed_search_attributes
        settled = (execution.status == WorkflowExecutionStatus.COMPLETED
                   or attrs.get(SearchAttributes.SETTLEMENT) == "settled")
        statuses[execution.id] = DisputeStatus(dispute_id=execution.id, settled=settled,
                                               order_id=attrs.get(SearchAttributes.ORDER) or "")
        # Cases opened before the workflow recorded its settlement in visibility are asked.
        if not settled and execution.status == WorkflowExecutionStatus.RUNNING \
                and attrs.get(SearchAttributes.STATE) in _CLOSED:
            in_appeal_window.append((execution.id, execution.task_queue))
        on_listed()
    # A query to a task queue nobody polls waits out its timeout: do not ask those.
    polled = {queue for queue in {q for _, q in in_appeal_window} if await _has_pollers(client, queue)}
    answered = await asyncio.gather(*(_ask_if_settled(client, statuses[dispute_id], queue in polled)
                                      for dispute_id, queue in in_appeal_window))
    statuses.update({status.dispute_id: status for status in answered})
    return statuses


async def _ask_if_settled(client: Client, status: DisputeStatus, polled: bool) -> DisputeStatus:
    if not polled:
        return status.model_copy(update={"verified": False})
    try:
        view = await client.get_workflow_handle(status.dispute_id).query(DisputeWorkflow.view,
                                                                         rpc_timeout=QUERY_TIMEOUT)
    except RPCError:
        return status.model_copy(update={"verified": False})
    return status.model_copy(update={"settled": view.resolution is not None and view.resolution.settled})


async def count_disputes(client: Client) -> int:
    return (await client.count_workflows(cases_of(DisputeWorkflow.__name__))).count


async def _has_pollers(client: Client, task_queue: str) -> bool:
    response = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace=client.namespace, task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    ))
    return bool(response.pollers)

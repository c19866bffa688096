"""Talking to complaint and standing workflows, with Temporal's failures as problem responses."""

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.dispute_calls import WORKER_ANSWER_TIMEOUT, CaseKind
from api.problems import Problem, problem_type, workflow_service_problem
from complaints.models import ActionResult, ComplaintInput, ComplaintState, ComplaintView
from complaints.models import StandingView
from complaints.standing import standing_id
from complaints.workflows import ComplaintWorkflow, SellerStandingWorkflow
from config.temporal import SearchAttributes, cases_of

# How the API words the failures of calls on complaints (`dispute_calls.act`, `exists`).
COMPLAINT = CaseKind("complaint", "final", ActionResult)
# The memo key naming the request that filed a complaint: a retry finds its own complaint.
_FILING = "filing_request"


def complaint_attributes(complaint: ComplaintInput, state: ComplaintState) -> TypedSearchAttributes:
    """The dispute search attributes a complaint keeps too (the state attribute holds its state)."""
    order = complaint.order
    return TypedSearchAttributes([
        SearchAttributePair(SearchAttributes.STATE, state.value),
        SearchAttributePair(SearchAttributes.BUYER, order.buyer_id),
        SearchAttributePair(SearchAttributes.SELLER, order.seller_id),
        SearchAttributePair(SearchAttributes.ORDER, order.order_id),
        SearchAttributePair(SearchAttributes.CATEGORY, complaint.complaint_type),
    ])


async def file_complaint(client: Client, task_queue: str, complaint: ComplaintInput, filing: str) -> ComplaintView:
    start = WithStartWorkflowOperation(
        ComplaintWorkflow.run, complaint, id=complaint.complaint_id, task_queue=task_queue,
        search_attributes=complaint_attributes(complaint, ComplaintState.WAIT_SELLER_RESPONSE),
        memo={_FILING: filing}, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
    try:
        await client.execute_update_with_start_workflow(ComplaintWorkflow.opened, start_workflow_operation=start,
                                                        rpc_timeout=WORKER_ANSWER_TIMEOUT)
    except WorkflowAlreadyStartedError:
        pass
    except WorkflowUpdateRPCTimeoutOrCancelledError as error:
        raise COMPLAINT.no_answer() from error
    description = await client.get_workflow_handle(complaint.complaint_id).describe(rpc_timeout=WORKER_ANSWER_TIMEOUT)
    if await description.memo_value(_FILING, None) != filing:
        raise Problem(409, "Complaint already open", f"Complaint {complaint.complaint_id} is open on this order.",
                      type=problem_type("complaint-already-open"), complaint_id=complaint.complaint_id)
    return await view(client, complaint.complaint_id)


async def view(client: Client, complaint_id: str) -> ComplaintView:
    try:
        return await client.get_workflow_handle(complaint_id).query(ComplaintWorkflow.view,
                                                                    rpc_timeout=WORKER_ANSWER_TIMEOUT)
    except RPCError as error:
        raise COMPLAINT.rpc_problem(error, complaint_id) from error


async def standing(client: Client, seller_id: str) -> StandingView | None:
    """The seller's standing, or None for a seller with no violation ever recorded."""
    try:
        return await client.get_workflow_handle(standing_id(seller_id)).query(
            SellerStandingWorkflow.standing, rpc_timeout=WORKER_ANSWER_TIMEOUT)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise workflow_service_problem(error) from error


async def complaint_ids(client: Client) -> list[str]:
    """Every complaint Temporal knows (what reconciliation traces complaint transfers to)."""
    return [execution.id async for execution in client.list_workflows(cases_of(ComplaintWorkflow.__name__))]

"""The bare workflow's two calls, as a client makes them straight to Temporal (the HTTP variant
makes the same): open by update-with-start, then the seller's agreement."""

from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy

from bench.bare.workflow import Answer, BareDispute, BareDisputeWorkflow
from config.temporal import SearchAttributes


async def open_dispute(client: Client, task_queue: str, dispute: BareDispute) -> Answer:
    """Start the case with the search attributes the product's API sets, answered once the escrow is frozen."""
    start = WithStartWorkflowOperation(
        BareDisputeWorkflow.run, dispute, id=dispute.dispute_id, task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=TypedSearchAttributes([
            SearchAttributePair(SearchAttributes.STATE, "WAIT_SELLER_AGREE"),
            SearchAttributePair(SearchAttributes.BUYER, dispute.buyer_id),
            SearchAttributePair(SearchAttributes.SELLER, dispute.seller_id),
            SearchAttributePair(SearchAttributes.ORDER, dispute.order_id),
            SearchAttributePair(SearchAttributes.CATEGORY, "quality"),
        ]))
    return await client.execute_update_with_start_workflow(BareDisputeWorkflow.opened, start_workflow_operation=start)


async def agree_refund(client: Client, dispute_id: str) -> Answer:
    return await client.get_workflow_handle(dispute_id).execute_update(BareDisputeWorkflow.seller_agree_refund)

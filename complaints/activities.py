"""Activities of the complaint and standing workflows: thin wrappers over the ledger, the
complaint service and Temporal. Each is idempotent, so a retry never acts twice."""

from temporalio import activity
from temporalio.client import Client

from activities.definition import uninterrupted
from activities.ledger import as_application_error
from complaints.models import (
    DeliverViolation,
    PayCompensation,
    ReleaseFiling,
    ReverseCompensation,
    StandingInput,
    StandingSummary,
    WithdrawViolation,
)
from complaints.service import ComplaintService
from complaints.standing import standing_id
from complaints.workflows import SellerStandingWorkflow
from ledger import Ledger, TransferRequest
from money import plans


class ComplaintActivities:
    def __init__(self, ledger: Ledger, complaints: ComplaintService, client: Client):
        self._ledger = ledger
        self._complaints = complaints
        self._client = client

    @uninterrupted
    def pay_complaint_compensation(self, request: PayCompensation) -> str:
        return self._post(plans.compensation(request.complaint_id, request.buyer_id, request.seller_id,
                                             request.amount.amount, request.amount.currency))

    @uninterrupted
    def reverse_complaint_compensation(self, request: ReverseCompensation) -> str:
        return self._post(plans.compensation_reversal(request.complaint_id, request.buyer_id, request.seller_id,
                                                      request.amount.amount, request.amount.currency))

    def _post(self, transfer: TransferRequest) -> str:
        with as_application_error():
            self._ledger.create_transfers([transfer])
        return transfer.id

    @activity.defn
    async def deliver_violation(self, request: DeliverViolation) -> None:
        """Signal the seller's standing, starting it if the seller has none (signal-with-start)."""
        await self._signal(request.seller_id, request.policy, "deliver_violation", request.violation)

    @activity.defn
    async def withdraw_violation(self, request: WithdrawViolation) -> None:
        await self._signal(request.seller_id, request.policy, "withdraw_violation", request.violation_id)

    async def _signal(self, seller_id: str, policy, signal: str, argument: object) -> None:
        await self._client.start_workflow(
            SellerStandingWorkflow.run, StandingInput(seller_id=seller_id, policy=policy),
            id=standing_id(seller_id), task_queue=activity.info().task_queue,
            start_signal=signal, start_signal_args=[argument])

    @uninterrupted
    def release_complaint_filing(self, request: ReleaseFiling) -> None:
        self._complaints.release(request.order_id, request.complaint_type, request.complaint_id)

    @uninterrupted
    def publish_standing(self, summary: StandingSummary) -> None:
        self._complaints.publish_standing(summary)

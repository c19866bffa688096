"""Activities of the complaint and standing workflows: thin wrappers over the ledger, the
complaint service and Temporal. Each is idempotent, so a retry never acts twice."""

from temporalio import activity
from temporalio.client import Client

from activities.ledger import _as_application_error
from complaints.models import (
    DeliverViolation,
    PayCompensation,
    ReleaseFiling,
    ReverseCompensation,
    StandingInput,
    StandingSummary,
    WithdrawViolation,
)
from complaints.money import ComplaintTransfer
from complaints.service import ComplaintService
from complaints.standing import standing_id
from complaints.workflows import SellerStandingWorkflow
from ledger import Ledger, TransferRequest, accounts


class ComplaintActivities:
    def __init__(self, ledger: Ledger, complaints: ComplaintService, client: Client):
        self._ledger = ledger
        self._complaints = complaints
        self._client = client

    @activity.defn
    def pay_complaint_compensation(self, request: PayCompensation) -> str:
        """The seller pays the buyer; the seller's balance may go negative (a debt the platform holds)."""
        return self._post(ComplaintTransfer.COMPENSATION, request.complaint_id, request.amount.amount,
                          request.amount.currency, debit=accounts.seller(request.seller_id, request.amount.currency),
                          credit=accounts.buyer(request.buyer_id, request.amount.currency))

    @activity.defn
    def reverse_complaint_compensation(self, request: ReverseCompensation) -> str:
        """An upheld appeal: the buyer gives the compensation back (a buyer's balance may go negative)."""
        return self._post(ComplaintTransfer.COMPENSATION_REVERSAL, request.complaint_id, request.amount.amount,
                          request.amount.currency, debit=accounts.buyer(request.buyer_id, request.amount.currency),
                          credit=accounts.seller(request.seller_id, request.amount.currency))

    def _post(self, kind: ComplaintTransfer, complaint_id: str, amount: int, currency: str, *,
              debit: str, credit: str) -> str:
        transfer_id = kind.transfer_id(complaint_id)
        with _as_application_error():
            # No order_id: compensation is not a refund and stays outside the order's refund cap.
            self._ledger.create_transfers([TransferRequest(
                id=transfer_id, debit_account_id=debit, credit_account_id=credit, amount=amount, currency=currency,
                code=kind.value, dispute_id=complaint_id, step=kind.step)])
        return transfer_id

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

    @activity.defn
    def release_complaint_filing(self, request: ReleaseFiling) -> None:
        self._complaints.release(request.order_id, request.complaint_type, request.complaint_id)

    @activity.defn
    def publish_standing(self, summary: StandingSummary) -> None:
        self._complaints.publish_standing(summary)

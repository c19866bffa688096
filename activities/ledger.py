"""Ledger postings for disputes. Every transfer id is derived from the dispute and the
step, so a retry after a commit is answered "exists" and moves nothing twice."""

from collections.abc import Iterator
from contextlib import contextmanager

from temporalio import activity
from temporalio.exceptions import ApplicationError

from ledger import Ledger, LedgerError, TransferRequest, accounts
from workflows.models import AdjustAfterAppeal, DisputeSettled, EscrowFrozen, FreezeEscrow, SettleDispute


def freeze_id(dispute_id: str) -> str:
    return f"{dispute_id}-freeze"


class LedgerActivities:
    def __init__(self, ledger: Ledger):
        self._ledger = ledger

    @activity.defn
    def freeze_escrow(self, request: FreezeEscrow) -> EscrowFrozen:
        """Hold the order's escrow as a pending payout to the seller while the dispute is open.

        An order whose escrow was already paid out has nothing to freeze; a refund then
        comes from the seller's balance.
        """
        transfer_id = freeze_id(request.dispute_id)
        with _as_application_error():
            existing = self._ledger.find_transfer(transfer_id)
            if existing is not None:
                return EscrowFrozen(transfer_id=transfer_id, amount=existing.amount)
            escrow = self._ledger.account(accounts.escrow(request.order_id, request.currency))
            if escrow.available <= 0:
                return EscrowFrozen(transfer_id=None, amount=0)
            self._ledger.create_transfers([TransferRequest(
                id=transfer_id,
                debit_account_id=escrow.id,
                credit_account_id=accounts.seller(request.seller_id, request.currency),
                amount=escrow.available,
                currency=request.currency,
                code="freeze",
                phase="pending",
                dispute_id=request.dispute_id,
                order_id=request.order_id,
                step="opened",
            )])
            return EscrowFrozen(transfer_id=transfer_id, amount=escrow.available)

    @activity.defn
    def settle_dispute(self, request: SettleDispute) -> DisputeSettled:
        """Refund the buyer and pay the rest of the frozen escrow to the seller, atomically."""
        currency = request.currency
        dispute = request.dispute_id
        with _as_application_error():
            freeze = self._ledger.find_transfer(freeze_id(dispute))
            frozen = freeze.amount if freeze is not None else 0
            from_escrow = min(request.refund, frozen)
            from_seller = request.refund - from_escrow
            release = frozen - from_escrow
            common = {"currency": currency, "dispute_id": dispute, "order_id": request.order_id, "step": request.step}
            batch: list[TransferRequest] = []
            if freeze is not None:
                # Posting less than the hold returns the rest to escrow for the refund below.
                if release > 0:
                    batch.append(TransferRequest(
                        id=f"{dispute}-release", amount=release, code="release", phase="post_pending",
                        pending_id=freeze.id, **common,
                    ))
                else:
                    batch.append(TransferRequest(
                        id=f"{dispute}-release", code="release", phase="void_pending", pending_id=freeze.id, **common,
                    ))
                if from_escrow > 0:
                    batch.append(TransferRequest(
                        id=f"{dispute}-refund", debit_account_id=freeze.debit_account_id,
                        credit_account_id=accounts.buyer(request.buyer_id, currency),
                        amount=from_escrow, code="refund", **common,
                    ))
            if from_seller > 0:
                batch.append(TransferRequest(
                    id=f"{dispute}-refund-from-seller",
                    debit_account_id=accounts.seller(request.seller_id, currency),
                    credit_account_id=accounts.buyer(request.buyer_id, currency),
                    amount=from_seller, code="refund", **common,
                ))
            if batch:
                self._ledger.create_transfers(batch)
            return DisputeSettled(
                refunded_from_escrow=from_escrow,
                refunded_from_seller=from_seller,
                released_to_seller=release,
                transfer_ids=[t.id for t in batch],
            )


    @activity.defn
    def adjust_after_appeal(self, request: AdjustAfterAppeal) -> str:
        """Move the difference between the appealed ruling and the final one.

        The escrow was settled at the first ruling, so the difference moves between the
        parties' balances; either may go negative, a debt the platform collects.
        """
        currency = request.currency
        buyer, seller = accounts.buyer(request.buyer_id, currency), accounts.seller(request.seller_id, currency)
        debit, credit = (seller, buyer) if request.delta > 0 else (buyer, seller)
        transfer_id = f"{request.dispute_id}-appeal-adjustment"
        with _as_application_error():
            self._ledger.create_transfers([TransferRequest(
                id=transfer_id, debit_account_id=debit, credit_account_id=credit, amount=abs(request.delta),
                currency=currency, code="appeal_adjustment", dispute_id=request.dispute_id,
                order_id=request.order_id, step="mediator_ruled_on_appeal",
            )])
        return transfer_id


@contextmanager
def _as_application_error() -> Iterator[None]:
    """Ledger refusals become Temporal failures that name the ledger's error code."""
    try:
        yield
    except LedgerError as error:
        raise ApplicationError(str(error), type=error.code) from error

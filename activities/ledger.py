"""Ledger postings for disputes. Every transfer id is derived from the dispute and the
step, so a retry after a commit is answered "exists" and moves nothing twice."""

from collections.abc import Iterator
from contextlib import contextmanager

from temporalio import activity
from temporalio.exceptions import ApplicationError

from ledger import Ledger, LedgerError, TransferRequest, accounts
from workflows.models import (
    AdjustAfterAppeal,
    DisputeSettled,
    EscrowFrozen,
    FreezeEscrow,
    PayAdvance,
    SettleDispute,
)


def freeze_id(dispute_id: str) -> str:
    return f"{dispute_id}-freeze"


def advance_id(dispute_id: str) -> str:
    return f"{dispute_id}-advance"


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
    def pay_advance(self, request: PayAdvance) -> str:
        """先行垫付: pay the buyer from the guarantee fund, held pending (冻结) or available at once."""
        transfer_id = advance_id(request.dispute_id)
        currency = request.currency
        # A fund that cannot cover the advance is a refusal, not something a retry fixes.
        with _as_application_error(non_retryable=("insufficient_funds", "unknown_account")):
            self._ledger.create_transfers([TransferRequest(
                id=transfer_id,
                debit_account_id=accounts.guarantee_fund(currency),
                credit_account_id=accounts.buyer(request.buyer_id, currency),
                amount=request.amount, currency=currency, code="advance",
                phase="pending" if request.two_phase else "single",
                dispute_id=request.dispute_id, order_id=request.order_id, step="advance_ordered",
            )])
        return transfer_id

    @activity.defn
    def settle_dispute(self, request: SettleDispute) -> DisputeSettled:
        """Close the dispute's money in one atomic batch.

        The buyer ends up with `refund`. Any advance the fund paid counts towards it: the
        buyer keeps up to `refund` of it and the rest goes back to the fund; the fund
        recovers what the buyer keeps from the frozen escrow, or from the seller when the
        escrow was already paid out. What the escrow does not owe goes to the seller.
        """
        currency = request.currency
        dispute = request.dispute_id
        buyer = accounts.buyer(request.buyer_id, currency)
        seller = accounts.seller(request.seller_id, currency)
        fund = accounts.guarantee_fund(currency)
        with _as_application_error():
            freeze = self._ledger.find_transfer(freeze_id(dispute))
            escrow = freeze.debit_account_id if freeze is not None else None
            advance = self._ledger.find_transfer(advance_id(dispute))
            frozen = freeze.amount if freeze is not None else 0
            advanced = advance.amount if advance is not None else 0
            kept = min(advanced, request.refund)
            from_escrow = min(request.refund, frozen)
            recovered_from_escrow = min(kept, from_escrow)
            refund_from_escrow = from_escrow - recovered_from_escrow
            recovered_from_seller = kept - recovered_from_escrow
            refund_from_seller = request.refund - kept - refund_from_escrow
            release = frozen - from_escrow

            common = {"currency": currency, "dispute_id": dispute, "order_id": request.order_id, "step": request.step}
            batch: list[TransferRequest] = []
            if freeze is not None:
                # Posting less than the hold returns the rest to escrow for the transfers below.
                batch.append(_resolve(f"{dispute}-release", freeze.id, release, code="release", **common))
            if advance is not None:
                if advance.phase == "pending":
                    # 解冻 what the buyer keeps; the rest of the hold returns to the fund.
                    batch.append(_resolve(f"{dispute}-advance-settlement", advance.id, kept,
                                          code="advance_settlement", **common))
                elif advanced > kept:
                    # 调帐: an advance paid out at once is clawed back from the buyer's balance.
                    batch.append(TransferRequest(id=f"{dispute}-advance-clawback", debit_account_id=buyer,
                                                 credit_account_id=fund, amount=advanced - kept,
                                                 code="advance_clawback", **common))
            for transfer_id, debit, credit, amount, code in (
                (f"{dispute}-advance-recovery", escrow, fund,
                 recovered_from_escrow, "advance_recovery"),
                (f"{dispute}-advance-recovery-from-seller", seller, fund, recovered_from_seller, "advance_recovery"),
                (f"{dispute}-refund", escrow, buyer, refund_from_escrow, "refund"),
                (f"{dispute}-refund-from-seller", seller, buyer, refund_from_seller, "refund"),
            ):
                if amount > 0:
                    batch.append(TransferRequest(id=transfer_id, debit_account_id=debit, credit_account_id=credit,
                                                 amount=amount, code=code, **common))
            if batch:
                self._ledger.create_transfers(batch)
            activity.logger.info("settled at %s: %d transfers, refund %d %s", request.step, len(batch),
                                 request.refund, currency)
            return DisputeSettled(
                refunded_from_escrow=refund_from_escrow,
                refunded_from_seller=refund_from_seller,
                released_to_seller=release,
                transfer_ids=[t.id for t in batch],
                advance_kept=kept,
                advance_returned=advanced - kept,
                recovered_from_escrow=recovered_from_escrow,
                recovered_from_seller=recovered_from_seller,
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


def _resolve(transfer_id: str, pending_id: str, amount: int, **fields: object) -> TransferRequest:
    """Post `amount` of a pending transfer, or void it when nothing is to be posted."""
    if amount > 0:
        return TransferRequest(id=transfer_id, phase="post_pending", pending_id=pending_id, amount=amount, **fields)
    return TransferRequest(id=transfer_id, phase="void_pending", pending_id=pending_id, **fields)


@contextmanager
def _as_application_error(non_retryable: tuple[str, ...] = ()) -> Iterator[None]:
    """Ledger refusals become Temporal failures that name the ledger's error code."""
    try:
        yield
    except LedgerError as error:
        raise ApplicationError(str(error), error.details, type=error.code,
                               non_retryable=error.code in non_retryable) from error

"""Ledger postings for disputes: each activity reads the facts, asks `money.plans` for the
batch and writes it. The plan derives every transfer id from the dispute and the step, so a
retry after a commit is answered "exists" and moves nothing twice."""

from collections.abc import Iterator
from contextlib import contextmanager

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.definition import uninterrupted
from fund import FUND_CANNOT_PAY
from ledger import Ledger, LedgerError, accounts
from money import plans
from money.plans import DisputeSettled, Hold, Leg
from workflows.models import (
    AdjustAfterAppeal,
    EscrowFrozen,
    FreezeEscrow,
    PayAdvance,
    SettleDispute,
)


class LedgerActivities:
    def __init__(self, ledger: Ledger):
        self._ledger = ledger

    @uninterrupted
    def freeze_escrow(self, request: FreezeEscrow) -> EscrowFrozen:
        """Hold the order's escrow as a pending payout to the seller while the dispute is open."""
        with as_application_error():
            existing = self._ledger.find_transfer(Leg.FREEZE.id(request.dispute_id))
            if existing is not None:
                return EscrowFrozen(transfer_id=existing.id, amount=existing.amount)
            escrow = self._ledger.account(accounts.escrow(request.order_id, request.currency))
            hold = plans.freeze(request.dispute_id, request.order_id, request.seller_id, request.currency,
                                escrow.available)
            if hold is None:
                return EscrowFrozen(transfer_id=None, amount=0)
            self._ledger.create_transfers([hold])
            return EscrowFrozen(transfer_id=hold.id, amount=escrow.available)

    @uninterrupted
    def pay_advance(self, request: PayAdvance) -> str:
        """先行垫付: pay the buyer from the guarantee fund."""
        # A fund that cannot cover the advance is a refusal, not something a retry fixes.
        with as_application_error(non_retryable=FUND_CANNOT_PAY):
            advance = plans.advance(request.dispute_id, request.order_id, request.buyer_id, request.currency,
                                    request.amount, request.two_phase)
            self._ledger.create_transfers([advance])
        return advance.id

    @uninterrupted
    def settle_dispute(self, request: SettleDispute) -> DisputeSettled:
        """Close the dispute's money in one atomic batch (see `plans.settlement`)."""
        with as_application_error():
            frozen = Hold.of(self._ledger.find_transfer(Leg.FREEZE.id(request.dispute_id)))
            advanced = Hold.of(self._ledger.find_transfer(Leg.ADVANCE.id(request.dispute_id)))
            plan = plans.settlement(request, request.refund, request.step, frozen, advanced)
            self._ledger.create_transfers(plan.transfers)
            activity.logger.info("settled at %s: %d transfers, refund %d", request.step, len(plan.transfers),
                                 request.refund)
            return plan.figures

    @uninterrupted
    def adjust_after_appeal(self, request: AdjustAfterAppeal) -> str:
        """Move the difference between the appealed ruling and the final one."""
        with as_application_error():
            [adjustment] = plans.appeal_adjustment(request, request.delta)
            self._ledger.create_transfers([adjustment])
        return adjustment.id


@contextmanager
def as_application_error(non_retryable: tuple[type[LedgerError], ...] = ()) -> Iterator[None]:
    """Ledger refusals become Temporal failures that name the ledger's error code."""
    try:
        yield
    except LedgerError as error:
        raise ApplicationError(str(error), error.details, type=error.code,
                               non_retryable=isinstance(error, non_retryable)) from error

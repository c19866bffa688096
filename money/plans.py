"""Money plans: what a case's (an order's, the fund's) facts mean for the ledger.

Pure functions, no I/O: each turns facts (what was paid, frozen, advanced, ruled) into the
batch of transfers that carries them out, and the figures that result. The activities and
services write the batch; the workflow stores the figures and never recomputes them.

Every transfer is a `Leg`: its code, its id derived from its subject (a dispute, an order,
a top-up reference) and, for most, its step. A retried activity derives the same ids, so
the ledger answers "exists" and nothing moves twice. The ids are on the wire (committed
histories and ledgers hold them): a new leg may be added, an existing one never changed.
"""

from collections import defaultdict
from collections.abc import Iterable
from enum import Enum, StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ledger import TransferPhase, TransferRequest, TransferView, accounts
from money import CurrencyCode


class TransferCode(StrEnum):
    """What a transfer is for, as the ledger stores it."""

    payment = "payment"  # a buyer's payment into the order's escrow
    release = "release"  # escrow paid out to the seller
    topup = "topup"  # the platform's own money into the guarantee fund
    freeze = "freeze"  # the escrow held as a pending payout while a dispute is open
    advance = "advance"  # 先行垫付: the fund pays the buyer first
    advance_settlement = "advance_settlement"  # 解冻 what the buyer keeps of a held advance
    advance_clawback = "advance_clawback"  # 调帐: an advance paid at once comes back from the buyer
    advance_recovery = "advance_recovery"  # the fund recovers what the buyer keeps
    refund = "refund"
    appeal_adjustment = "appeal_adjustment"  # the difference an appeal's final ruling makes
    complaint_compensation = "complaint_compensation"  # seller → buyer, once a complaint is upheld
    complaint_compensation_reversal = "complaint_compensation_reversal"  # buyer → seller, after an upheld appeal


class Leg(Enum):
    """One transfer an order, the fund or a case makes: id template, code, and its step when
    the leg always has the same one (a settlement's step is the event that closed the case)."""

    PAYMENT = ("{}-payment", TransferCode.payment, "order_registered")
    COMPLETION = ("{}-completion", TransferCode.release, "order_completed")
    TOP_UP = ("topup-{}", TransferCode.topup, "guarantee_fund_topped_up")
    FREEZE = ("{}-freeze", TransferCode.freeze, "opened")
    ADVANCE = ("{}-advance", TransferCode.advance, "advance_ordered")
    RELEASE = ("{}-release", TransferCode.release, None)
    ADVANCE_SETTLEMENT = ("{}-advance-settlement", TransferCode.advance_settlement, None)
    ADVANCE_CLAWBACK = ("{}-advance-clawback", TransferCode.advance_clawback, None)
    ADVANCE_RECOVERY = ("{}-advance-recovery", TransferCode.advance_recovery, None)
    ADVANCE_RECOVERY_FROM_SELLER = ("{}-advance-recovery-from-seller", TransferCode.advance_recovery, None)
    REFUND = ("{}-refund", TransferCode.refund, None)
    REFUND_FROM_SELLER = ("{}-refund-from-seller", TransferCode.refund, None)
    APPEAL_ADJUSTMENT = ("{}-appeal-adjustment", TransferCode.appeal_adjustment, "mediator_ruled_on_appeal")
    COMPENSATION = ("{}-compensation", TransferCode.complaint_compensation, "compensation")
    COMPENSATION_REVERSAL = ("{}-compensation-reversal", TransferCode.complaint_compensation_reversal,
                             "compensation-reversal")

    def __init__(self, template: str, code: TransferCode, step: str | None) -> None:
        self.template, self.code, self.step = template, code, step

    def id(self, subject: str) -> str:
        return self.template.format(subject)


def transfer(leg: Leg, subject: str, debit: str | None, credit: str | None, amount: int | None, currency: str, *,
             phase: TransferPhase = TransferPhase.single, pending_id: str | None = None,
             dispute_id: str | None = None, order_id: str | None = None, step: str | None = None) -> TransferRequest:
    """The leg's transfer for `subject`: its id, code and (unless given) step come from the leg."""
    return TransferRequest(id=leg.id(subject), debit_account_id=debit, credit_account_id=credit, amount=amount,
                           currency=currency, code=leg.code, phase=phase, pending_id=pending_id,
                           dispute_id=dispute_id, order_id=order_id, step=step or leg.step)


# ------------------------------------------------------------------ orders and the fund


def payment(order_id: str, amount: int, currency: str) -> TransferRequest:
    """A registered order's payment, from outside into its escrow."""
    return transfer(Leg.PAYMENT, order_id, accounts.payments_clearing(currency), accounts.escrow(order_id, currency),
                    amount, currency, order_id=order_id)


def completion(order_id: str, seller_id: str, escrow_available: int, currency: str) -> list[TransferRequest]:
    """A completed order pays what its escrow still holds to the seller."""
    if escrow_available <= 0:
        return []
    return [transfer(Leg.COMPLETION, order_id, accounts.escrow(order_id, currency),
                     accounts.seller(seller_id, currency), escrow_available, currency, order_id=order_id)]


def top_up(reference: str, amount: int, currency: str) -> TransferRequest:
    """The platform's own money into the guarantee fund; the reference funds once."""
    return transfer(Leg.TOP_UP, reference, accounts.platform_funding(currency), accounts.guarantee_fund(currency),
                    amount, currency)


def funded(transfers: Iterable[TransferView]) -> int:
    """What the guarantee fund was topped up with."""
    return sum(t.amount for t in transfers if t.code == TransferCode.topup)


def outstanding_advances(transfers: Iterable[TransferView]) -> dict[str, int]:
    """Per dispute: what the fund advanced and has not got back, by recovery, clawback or the
    part of a held advance its settlement released. `transfers` must include each settlement's
    advance. The one formula the fund's statement and reconciliation both use."""
    transfers = list(transfers)
    advances = {t.id: t for t in transfers if t.code == TransferCode.advance}
    outstanding: dict[str, int] = defaultdict(int)
    for t in transfers:
        dispute = t.dispute_id or ""
        if t.code == TransferCode.advance:
            outstanding[dispute] += t.amount
        elif t.code in (TransferCode.advance_recovery, TransferCode.advance_clawback):
            outstanding[dispute] -= t.amount
        elif t.code == TransferCode.advance_settlement:
            # A void returns the whole hold to the fund; a post returns what it did not post.
            kept = t.amount if t.phase == TransferPhase.post_pending else 0
            outstanding[dispute] -= advances[t.pending_id].amount - kept
    return dict(outstanding)


# ------------------------------------------------------------------------------ cases


class CaseParties(BaseModel):
    """Whose accounts a case's money moves between."""

    dispute_id: str
    order_id: str
    buyer_id: str
    seller_id: str
    currency: CurrencyCode

    @property
    def buyer(self) -> str:
        return accounts.buyer(self.buyer_id, self.currency)

    @property
    def seller(self) -> str:
        return accounts.seller(self.seller_id, self.currency)

    def transfer(self, leg: Leg, debit: str | None, credit: str | None, amount: int | None, **fields) -> TransferRequest:
        return transfer(leg, self.dispute_id, debit, credit, amount, self.currency, dispute_id=self.dispute_id,
                        order_id=self.order_id, **fields)


def freeze(dispute_id: str, order_id: str, seller_id: str, currency: str, escrow_available: int) -> TransferRequest | None:
    """Hold what the order's escrow holds as a pending payout to the seller; nothing when the
    escrow was already paid out (a refund then comes from the seller's balance)."""
    if escrow_available <= 0:
        return None
    return transfer(Leg.FREEZE, dispute_id, accounts.escrow(order_id, currency), accounts.seller(seller_id, currency),
                    escrow_available, currency, phase=TransferPhase.pending, dispute_id=dispute_id, order_id=order_id)


def advance(dispute_id: str, order_id: str, buyer_id: str, currency: str, amount: int,
            two_phase: bool) -> TransferRequest:
    """先行垫付: the fund pays the buyer, held pending (冻结) or available at once."""
    return transfer(Leg.ADVANCE, dispute_id, accounts.guarantee_fund(currency), accounts.buyer(buyer_id, currency),
                    amount, currency, phase=TransferPhase.pending if two_phase else TransferPhase.single,
                    dispute_id=dispute_id, order_id=order_id)


AdvanceStatus = Literal["final", "clawed_back", "partly_final"]


class Hold(BaseModel):
    """A transfer a settlement resolves or takes into account: the freeze, the advance."""

    model_config = ConfigDict(frozen=True)

    id: str
    amount: int
    debit_account_id: str
    pending: bool

    @classmethod
    def of(cls, view: TransferView | None) -> "Hold | None":
        if view is None:
            return None
        return cls(id=view.id, amount=view.amount, debit_account_id=view.debit_account_id,
                   pending=view.phase == TransferPhase.pending)


class DisputeSettled(BaseModel):
    """A settlement's figures (the settle activity's result, so its fields are on the wire)."""

    refunded_from_escrow: int
    refunded_from_seller: int
    released_to_seller: int
    transfer_ids: list[str]
    # Of an advance payment: what the buyer keeps, what went back to the fund, and what
    # the fund recovered from escrow and from the seller.
    advance_kept: int = 0
    advance_returned: int = 0
    recovered_from_escrow: int = 0
    recovered_from_seller: int = 0

    @property
    def refunded(self) -> int:
        """What the buyer ends up with: the refund, part of it perhaps as the kept advance."""
        return self.refunded_from_escrow + self.refunded_from_seller + self.advance_kept

    @property
    def advance_status(self) -> AdvanceStatus:
        """What became of the case's advance, if it had one."""
        if self.advance_returned == 0:
            return "final"
        return "clawed_back" if self.advance_kept == 0 else "partly_final"


class SettlementPlan(BaseModel):
    transfers: list[TransferRequest]
    figures: DisputeSettled


def settlement(case: CaseParties, refund: int, step: str, frozen: Hold | None,
               advanced: Hold | None) -> SettlementPlan:
    """Close the case's money in one batch: the buyer ends up with `refund`.

    An advance counts towards it: the buyer keeps up to `refund` of it and the rest goes back
    to the fund; the fund recovers what the buyer keeps from the frozen escrow, or from the
    seller when the escrow was already paid out. What the escrow does not owe goes to the seller.
    """
    frozen_amount = frozen.amount if frozen is not None else 0
    advanced_amount = advanced.amount if advanced is not None else 0
    kept = min(advanced_amount, refund)
    from_escrow = min(refund, frozen_amount)
    recovered_from_escrow = min(kept, from_escrow)
    refund_from_escrow = from_escrow - recovered_from_escrow
    recovered_from_seller = kept - recovered_from_escrow
    refund_from_seller = refund - kept - refund_from_escrow
    release = frozen_amount - from_escrow

    escrow = frozen.debit_account_id if frozen is not None else None
    fund = accounts.guarantee_fund(case.currency)
    batch: list[TransferRequest] = []
    if frozen is not None:
        # Posting less than the hold returns the rest to escrow for the transfers below.
        batch.append(_resolve(case, Leg.RELEASE, frozen, release, step))
    if advanced is not None:
        if advanced.pending:
            # 解冻 what the buyer keeps; the rest of the hold returns to the fund.
            batch.append(_resolve(case, Leg.ADVANCE_SETTLEMENT, advanced, kept, step))
        elif advanced_amount > kept:
            # 调帐: an advance paid out at once is clawed back from the buyer's balance.
            batch.append(case.transfer(Leg.ADVANCE_CLAWBACK, case.buyer, fund, advanced_amount - kept, step=step))
    for leg, debit, credit, amount in (
        (Leg.ADVANCE_RECOVERY, escrow, fund, recovered_from_escrow),
        (Leg.ADVANCE_RECOVERY_FROM_SELLER, case.seller, fund, recovered_from_seller),
        (Leg.REFUND, escrow, case.buyer, refund_from_escrow),
        (Leg.REFUND_FROM_SELLER, case.seller, case.buyer, refund_from_seller),
    ):
        if amount > 0:
            batch.append(case.transfer(leg, debit, credit, amount, step=step))
    return SettlementPlan(transfers=batch, figures=DisputeSettled(
        refunded_from_escrow=refund_from_escrow, refunded_from_seller=refund_from_seller,
        released_to_seller=release, transfer_ids=[t.id for t in batch], advance_kept=kept,
        advance_returned=advanced_amount - kept, recovered_from_escrow=recovered_from_escrow,
        recovered_from_seller=recovered_from_seller,
    ))


def _resolve(case: CaseParties, leg: Leg, hold: Hold, amount: int, step: str) -> TransferRequest:
    """Post `amount` of a pending transfer, or void it when nothing is to be posted."""
    if amount > 0:
        return case.transfer(leg, None, None, amount, phase=TransferPhase.post_pending, pending_id=hold.id, step=step)
    return case.transfer(leg, None, None, None, phase=TransferPhase.void_pending, pending_id=hold.id, step=step)


class AppealFigures(BaseModel):
    """The case's money once an appeal's final ruling moved its difference."""

    refunded: int
    released_to_seller: int


def appeal_adjustment(case: CaseParties, delta: int) -> list[TransferRequest]:
    """Move the difference between the appealed ruling and the final one (`delta`: positive,
    the buyer gets more). The escrow was settled at the first ruling, so the difference moves
    between the parties' balances; either may go negative, a debt the platform collects."""
    if delta == 0:
        return []
    debit, credit = (case.seller, case.buyer) if delta > 0 else (case.buyer, case.seller)
    return [case.transfer(Leg.APPEAL_ADJUSTMENT, debit, credit, abs(delta))]


def after_appeal(refunded: int, delta: int, escrow_frozen: int) -> AppealFigures:
    """The figures `appeal_adjustment(case, delta)` leaves, for a case that had refunded `refunded`
    of `escrow_frozen`: the seller is counted as released what the escrow did not refund."""
    refunded += delta
    return AppealFigures(refunded=refunded, released_to_seller=max(escrow_frozen - refunded, 0))


# ------------------------------------------------------------------------- complaints
# A complaint's compensation is a penalty the seller pays, not a refund: its transfers name the
# complaint (in the ledger's case column) and no order, so they never count toward the order's
# refund cap; the complaint policy's own cap bounds them.

COMPLAINT_LEGS = (Leg.COMPENSATION, Leg.COMPENSATION_REVERSAL)
COMPLAINT_CODES = frozenset(leg.code for leg in COMPLAINT_LEGS)


def compensation(complaint_id: str, buyer_id: str, seller_id: str, amount: int, currency: str) -> TransferRequest:
    """An upheld complaint: the seller pays the buyer (the seller's balance may go negative, a
    debt the platform holds)."""
    return transfer(Leg.COMPENSATION, complaint_id, accounts.seller(seller_id, currency),
                    accounts.buyer(buyer_id, currency), amount, currency, dispute_id=complaint_id)


def compensation_reversal(complaint_id: str, buyer_id: str, seller_id: str, amount: int,
                          currency: str) -> TransferRequest:
    """An upheld appeal: the buyer gives the compensation back (its balance may go negative)."""
    return transfer(Leg.COMPENSATION_REVERSAL, complaint_id, accounts.buyer(buyer_id, currency),
                    accounts.seller(seller_id, currency), amount, currency, dispute_id=complaint_id)


def untraced_complaint_transfer(transfer_id: str, code: str, case_id: str | None, step: str | None,
                                complaints: set[str] | None) -> str | None:
    """Why a complaint transfer does not trace to its complaint and step, or None if it does.
    `complaints`: the complaints Temporal knows; None when the caller did not load them (the
    transfer is then checked against its own complaint id and step only)."""
    leg = next(leg for leg in COMPLAINT_LEGS if leg.code == code)
    if case_id is None or complaints is not None and case_id not in complaints:
        return f"names unknown complaint {case_id}"
    if step != leg.step or transfer_id != leg.id(case_id):
        return f"is not the {leg.step} step of complaint {case_id}"
    return None

"""The reconciliation checks, over the ledger and orders tables and the disputes' states.

1. Double entry balances, and every account's counters equal its transfers (ledger).
2. No closed dispute holds escrow or a pending transfer.
3. Every transfer traces to a dispute step (or to an order or fund operation that has one);
   a complaint's transfers to their complaint and step (money.plans).
4. The guarantee fund equals its funding minus the advances still outstanding, and no
   closed dispute has an advance outstanding.

A dispute or complaint Temporal no longer has (its retention ran out) is known from the archive; the
report publishes the archive's chain head, so a later rewrite of the archive shows.
"""

from collections import defaultdict
from datetime import UTC, datetime

from pydantic import BaseModel, Field
from sqlalchemy import Engine
from sqlmodel import select

from archive.bundle import FinalCase, FinalComplaint
from archive.records import ChainHead
from archive.service import Archive
from database import reading
from ledger import Ledger, TransferView, accounts
from money import plans
from money.plans import COMPLAINT_CODES, TransferCode, untraced_complaint_transfer
from orders import Order

# Transfers a dispute makes, by their code; order- and fund-level ones carry no dispute.
_ORDER_CODES = {TransferCode.payment, TransferCode.release}
_FUND_CODES = {TransferCode.topup}


class DisputeStatus(BaseModel):
    dispute_id: str
    order_id: str
    # Closed, and its money settled: nothing of it may still be held.
    settled: bool
    # False when the case could not say whether its settlement ran (no worker answered).
    verified: bool = True


class Finding(BaseModel):
    check: str
    message: str
    dispute_ids: list[str] = Field(default_factory=list)
    transfer_ids: list[str] = Field(default_factory=list)


class ReconciliationReport(BaseModel):
    ok: bool
    checked_at: datetime
    disputes: int
    transfers: int
    findings: list[Finding]
    # Closed cases in their appeal window whose settlement could not be confirmed.
    unverified_disputes: list[str] = Field(default_factory=list)
    # Of `disputes`, those read from the archive because Temporal no longer has them.
    archived_disputes: int = 0
    # The complaints transfers name that were known from the archive, not Temporal.
    archived_complaints: int = 0
    # The archive's newest record: compare with an earlier report's to see nothing was rewritten.
    archive_head: ChainHead | None = None


def reconcile(engine: Engine, disputes: dict[str, DisputeStatus],
              archive: Archive | None = None, complaints: set[str] | None = None) -> ReconciliationReport:
    ledger = Ledger(engine)
    every_transfer = ledger.transfers()
    transfers = [t for t in every_transfer if t.code not in COMPLAINT_CODES]
    complaint_transfers = [t for t in every_transfer if t.code in COMPLAINT_CODES]
    archived_complaints = _archived_complaints(archive, complaint_transfers, complaints)
    known_complaints = None if complaints is None else complaints | archived_complaints
    archived = _archived_statuses(archive, transfers, disputes)
    disputes = disputes | archived
    with reading(engine) as session:
        orders = {o.id: o for o in session.exec(select(Order))}
    findings = [Finding(check="double_entry", message=problem) for problem in ledger.check_invariants()]
    findings += _closed_disputes_hold_nothing(ledger, transfers, disputes, orders)
    findings += _every_transfer_traces(transfers, disputes, orders)
    findings += _guarantee_fund(ledger, transfers, disputes)
    findings += [Finding(check="untraceable_transfer", message=f"transfer {t.id} {problem}",
                         dispute_ids=[t.dispute_id] if t.dispute_id else [], transfer_ids=[t.id])
                 for t in complaint_transfers
                 if (problem := untraced_complaint_transfer(t.id, t.code, t.dispute_id, t.step, known_complaints))]
    return ReconciliationReport(ok=not findings, checked_at=datetime.now(UTC), disputes=len(disputes),
                                transfers=len(every_transfer), findings=findings,
                                unverified_disputes=sorted(d for d, s in disputes.items() if not s.verified),
                                archived_disputes=len(archived), archived_complaints=len(archived_complaints),
                                archive_head=archive.head() if archive else None)


def _archived_statuses(archive: Archive | None, transfers: list[TransferView],
                       known: dict[str, DisputeStatus]) -> dict[str, DisputeStatus]:
    """The disputes transfers name that Temporal does not know, as their final records say."""
    statuses = {}
    for dispute_id in sorted({t.dispute_id for t in transfers if t.dispute_id and t.dispute_id not in known}):
        case = archive.case(dispute_id) if archive is not None else None
        if case is not None and isinstance(case.final, FinalCase):
            view = case.final.view
            statuses[dispute_id] = DisputeStatus(dispute_id=dispute_id, order_id=view.order.order_id,
                                                 settled=view.resolution is not None and view.resolution.settled)
    return statuses


def _archived_complaints(archive: Archive | None, transfers: list[TransferView],
                         known: set[str] | None) -> set[str]:
    """The complaints transfers name that Temporal does not know and the archive holds as final."""
    if archive is None or known is None:
        return set()
    unknown = {t.dispute_id for t in transfers if t.dispute_id and t.dispute_id not in known}
    return {complaint_id for complaint_id in unknown
            if (case := archive.case(complaint_id)) is not None and isinstance(case.final, FinalComplaint)}


def _closed_disputes_hold_nothing(ledger: Ledger, transfers: list[TransferView],
                                  disputes: dict[str, DisputeStatus], orders: dict[str, Order]) -> list[Finding]:
    findings = []
    for transfer in transfers:
        status = disputes.get(transfer.dispute_id or "")
        if status and status.settled and transfer.pending_status == "pending":
            findings.append(Finding(check="closed_dispute_holds_money",
                                    message=f"closed dispute {status.dispute_id} still holds pending transfer "
                                            f"{transfer.id} ({transfer.code}, {transfer.amount} {transfer.currency})",
                                    dispute_ids=[status.dispute_id], transfer_ids=[transfer.id]))
    for status in disputes.values():
        order = orders.get(status.order_id)
        if not status.settled or order is None or order.open_dispute_id not in (None, status.dispute_id):
            continue
        escrow = ledger.account(accounts.escrow(order.id, order.currency))
        if escrow.balance != 0 or escrow.debits_pending != 0:
            findings.append(Finding(check="closed_dispute_holds_money",
                                    message=f"closed dispute {status.dispute_id} leaves {escrow.balance} "
                                            f"{order.currency} in escrow ({escrow.debits_pending} pending)",
                                    dispute_ids=[status.dispute_id]))
    return findings


def _every_transfer_traces(transfers: list[TransferView], disputes: dict[str, DisputeStatus],
                           orders: dict[str, Order]) -> list[Finding]:
    findings = []
    for transfer in transfers:
        if not transfer.step:
            problem = "records no step"
        elif transfer.dispute_id is not None:
            problem = None if transfer.dispute_id in disputes else f"names unknown dispute {transfer.dispute_id}"
        elif transfer.code in _ORDER_CODES:
            problem = None if transfer.order_id in orders else "is an order transfer of no known order"
        elif transfer.code in _FUND_CODES:
            problem = None
        else:
            problem = f"({transfer.code}) names no dispute"
        if problem:
            findings.append(Finding(check="untraceable_transfer", message=f"transfer {transfer.id} {problem}",
                                    dispute_ids=[transfer.dispute_id] if transfer.dispute_id else [],
                                    transfer_ids=[transfer.id]))
    return findings


def _guarantee_fund(ledger: Ledger, transfers: list[TransferView],
                    disputes: dict[str, DisputeStatus]) -> list[Finding]:
    """Each fund holds its funding less the advances still outstanding (`plans.outstanding_advances`)."""
    by_currency: dict[str, list[TransferView]] = defaultdict(list)
    for transfer in transfers:
        by_currency[transfer.currency].append(transfer)
    findings = []
    for fund in ledger.accounts(kind="guarantee_fund"):
        owed = plans.outstanding_advances(by_currency[fund.currency])
        funded = plans.funded(by_currency[fund.currency])
        expected = funded - sum(owed.values())
        if fund.available != expected:
            findings.append(Finding(
                check="guarantee_fund", message=f"the {fund.currency} guarantee fund has {fund.available} available; "
                f"funding {funded} less outstanding advances {sum(owed.values())} is {expected}",
                dispute_ids=sorted(d for d, amount in owed.items() if amount)))
        for dispute, amount in owed.items():
            status = disputes.get(dispute)
            if amount and status and status.settled:
                findings.append(Finding(check="guarantee_fund",
                                        message=f"closed dispute {dispute} leaves an advance of {amount} "
                                                f"{fund.currency} outstanding", dispute_ids=[dispute]))
    return findings

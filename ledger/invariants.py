"""The rules the ledger keeps: double entry, counters equal to their transfers, pending
transfers resolved once, floors, and no order's buyer refunded more than was paid. The batch
engine enforces them as it writes; `audit` checks a whole ledger against them as it reads."""

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import Connection
from sqlmodel import Session, select

from ledger.accounts import AccountKind
from ledger.models import LedgerAccount, LedgerTransfer
from ledger.types import POSTING, OrderRefunds, PendingStatus, TransferPhase, formatted


def order_refunds(db: Session | Connection, order_id: str) -> OrderRefunds:
    """What the order's transfers paid in and refunded, read in the caller's transaction (the
    ledger's own guard, and the orders service while it holds the order's row)."""
    transfers = select(LedgerTransfer.__table__).where(LedgerTransfer.order_id == order_id)
    rows = list(db.execute(transfers))
    sides = {a for t in rows for a in (t.debit_account_id, t.credit_account_id)}
    kinds = dict(db.execute(select(LedgerAccount.id, LedgerAccount.kind).where(LedgerAccount.id.in_(sides))).all())
    return refunds_of(rows, kinds)


def refunds_of(transfers: Sequence[LedgerTransfer], kinds: dict[str, str]) -> OrderRefunds:
    """One order's OrderRefunds from its transfers and the kinds of the accounts they name."""
    paid = refunded = 0
    for t in transfers:
        posted = t.phase in POSTING
        held = t.phase == TransferPhase.pending and t.pending_status == PendingStatus.pending
        if posted and kinds[t.credit_account_id] == AccountKind.escrow:
            paid += t.amount
        if (posted or held) and kinds[t.credit_account_id] == AccountKind.buyer:
            refunded += t.amount
        if posted and kinds[t.debit_account_id] == AccountKind.buyer:
            refunded -= t.amount
    return OrderRefunds(paid=paid, refunded=refunded)


def audit(accounts: dict[str, LedgerAccount], transfers: list[LedgerTransfer]) -> list[str]:
    """Everything wrong with these accounts and transfers, as sentences; empty when healthy."""
    problems: list[str] = []
    expected: dict[str, dict[str, int]] = defaultdict(
        lambda: {"debits_pending": 0, "debits_posted": 0, "credits_pending": 0, "credits_posted": 0}
    )
    resolvers: dict[str, list[LedgerTransfer]] = defaultdict(list)
    by_id = {t.id: t for t in transfers}
    debited: set[str] = set()
    for t in transfers:
        for side in (t.debit_account_id, t.credit_account_id):
            account = accounts.get(side)
            if account is None:
                problems.append(f"transfer {t.id} refers to missing account {side}")
            elif account.currency != t.currency:
                problems.append(f"transfer {t.id} is in {t.currency} but account {side} holds {account.currency}")
        if t.amount <= 0:
            problems.append(f"transfer {t.id} has non-positive amount {t.amount}")
        if t.phase in POSTING:
            expected[t.debit_account_id]["debits_posted"] += t.amount
            expected[t.credit_account_id]["credits_posted"] += t.amount
        elif t.phase == TransferPhase.pending and t.pending_status == PendingStatus.pending:
            expected[t.debit_account_id]["debits_pending"] += t.amount
            expected[t.credit_account_id]["credits_pending"] += t.amount
        if t.pending_id is not None:
            resolvers[t.pending_id].append(t)
        else:
            debited.add(t.debit_account_id)

    for t in transfers:
        if t.phase != TransferPhase.pending:
            continue
        resolved_by = resolvers.get(t.id, [])
        wanted = {
            PendingStatus.pending: None,
            PendingStatus.posted: TransferPhase.post_pending,
            PendingStatus.voided: TransferPhase.void_pending,
        }.get(t.pending_status)  # type: ignore[call-overload]
        phases = [r.phase for r in resolved_by]
        if (wanted is None and phases) or (wanted is not None and phases != [wanted]):
            problems.append(
                f"pending transfer {t.id} is {t.pending_status} but is resolved by"
                f" {[r.id for r in resolved_by] or 'nothing'}"
            )
        for r in resolved_by:
            if (r.debit_account_id, r.credit_account_id, r.currency) != (
                t.debit_account_id,
                t.credit_account_id,
                t.currency,
            ):
                problems.append(f"transfer {r.id} resolves {t.id} but names other accounts or currency")
            if r.amount > t.amount:
                problems.append(f"transfer {r.id} moves {r.amount}, more than pending {t.id} held ({t.amount})")
    for pending_id, resolved_by in resolvers.items():
        target = by_id.get(pending_id)
        if target is None or target.phase != TransferPhase.pending:
            problems.append(f"transfers {[r.id for r in resolved_by]} resolve {pending_id}, which is not pending")

    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for account in accounts.values():
        counters = {
            "debits_pending": account.debits_pending,
            "debits_posted": account.debits_posted,
            "credits_pending": account.credits_pending,
            "credits_posted": account.credits_posted,
        }
        for name, value in counters.items():
            totals[account.currency][name] += value
            if value < 0:
                problems.append(f"account {account.id} has negative {name} {value}")
        recomputed = expected.get(account.id, dict.fromkeys(counters, 0))
        for name, value in counters.items():
            if value != recomputed[name]:
                problems.append(
                    f"account {account.id} has {name} {value} but its transfers add up to {recomputed[name]}"
                )
        available = account.credits_posted - account.debits_posted - account.debits_pending
        # An account opened with a floor starts below it until funded; what must never
        # happen is a debit taking it (or leaving it) below the floor.
        if not account.allow_negative and available < account.floor and (
            account.id in debited or available < 0
        ):
            problems.append(
                f"account {account.id} has {formatted(available, account.currency)} available,"
                f" below its floor of {formatted(account.floor, account.currency)}"
            )
    by_order: dict[str, list[LedgerTransfer]] = defaultdict(list)
    for t in transfers:
        if t.order_id is not None:
            by_order[t.order_id].append(t)
    kinds = {account.id: account.kind for account in accounts.values()}
    for order_id, order_transfers in sorted(by_order.items()):
        if all(t.debit_account_id in kinds and t.credit_account_id in kinds for t in order_transfers):
            refunds = refunds_of(order_transfers, kinds)
            if refunds.refunded > refunds.paid:
                problems.append(f"order {order_id} refunded {refunds.refunded}, more than the {refunds.paid} paid")
    for currency, sums in sorted(totals.items()):
        if sums["debits_posted"] != sums["credits_posted"]:
            problems.append(
                f"{currency}: posted debits {sums['debits_posted']} != posted credits {sums['credits_posted']}"
            )
        if sums["debits_pending"] != sums["credits_pending"]:
            problems.append(
                f"{currency}: pending debits {sums['debits_pending']} != pending credits {sums['credits_pending']}"
            )
    return problems

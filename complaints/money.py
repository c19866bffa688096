"""Every ledger transfer a complaint makes, in one place: its code, the step that causes it and
its id, derived from the complaint and the step, so a retried activity never pays twice and
reconciliation can trace each transfer back to its complaint and step.

A complaint's compensation is a penalty the seller pays, not a refund: its transfers name the
complaint (in the ledger's case column) and no order, so they never count toward the order's
refund cap; the complaint policy's own cap bounds them.
"""

from enum import StrEnum


class ComplaintTransfer(StrEnum):
    """The transfer codes; each value is also the code recorded in the ledger."""

    COMPENSATION = "complaint_compensation"  # seller → buyer, once the complaint is upheld
    COMPENSATION_REVERSAL = "complaint_compensation_reversal"  # buyer → seller, after an upheld appeal

    @property
    def step(self) -> str:
        return _STEPS[self]

    def transfer_id(self, complaint_id: str) -> str:
        return f"{complaint_id}-{self.step}"


_STEPS = {
    ComplaintTransfer.COMPENSATION: "compensation",
    ComplaintTransfer.COMPENSATION_REVERSAL: "compensation-reversal",
}

COMPLAINT_CODES = frozenset(code.value for code in ComplaintTransfer)


def untraced(transfer_id: str, code: str, case_id: str | None, step: str | None,
             complaints: set[str] | None) -> str | None:
    """Why a complaint transfer does not trace to its complaint and step, or None if it does.
    `complaints`: the complaints Temporal knows; None when the caller did not load them (the
    transfer is then checked against its own complaint id and step only)."""
    kind = ComplaintTransfer(code)
    if case_id is None or complaints is not None and case_id not in complaints:
        return f"names unknown complaint {case_id}"
    if step != kind.step or transfer_id != kind.transfer_id(case_id):
        return f"is not the {kind.step} step of complaint {case_id}"
    return None

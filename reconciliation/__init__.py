"""Reconciliation for auditors: does the ledger agree with itself and with the disputes?"""

from reconciliation.checks import DisputeStatus, Finding, ReconciliationReport, reconcile
from reconciliation.disputes import load_dispute_statuses

__all__ = ["DisputeStatus", "Finding", "ReconciliationReport", "load_dispute_statuses", "reconcile"]

"""Reconciliation for auditors: does the ledger agree with itself and with the disputes?

Modules import what they need (`reconciliation.checks.reconcile`); this package root stays empty
so `disputeflow` reaches `reconciliation.cli`'s parser without loading the checks."""

"""The casebook: a read model of disputes, one row per case, behind the mediators' queue.

Every notification a case sends carries a snapshot of the case (`CaseSnapshot`) as of the
event that caused it; the notification activity records it here, keeping a row only if its
event is newer than the row's, so retried, replayed and out-of-order deliveries are harmless.

Modules import what they need (`casebook.service.Casebook`); this package root stays empty so
`disputeflow` reaches `casebook.cli`'s parser without loading the read model.
"""

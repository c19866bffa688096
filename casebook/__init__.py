"""The casebook: a read model of disputes, one row per case, behind the mediators' queue.

Every notification a case sends carries a snapshot of the case (`CaseSnapshot`) as of the
event that caused it; the notification activity records it here, keeping a row only if its
event is newer than the row's, so retried, replayed and out-of-order deliveries are harmless.
"""

from casebook.models import OpenCase
from casebook.service import Casebook, InvalidCursor, QueueFilter, QueuePage

__all__ = ["Casebook", "InvalidCursor", "OpenCase", "QueueFilter", "QueuePage"]

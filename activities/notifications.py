from temporalio import activity

from casebook import Casebook
from notifications import NotificationService
from workflows.models import Notification


class NotificationActivities:
    def __init__(self, service: NotificationService, casebook: Casebook):
        self._service = service
        self._casebook = casebook

    @activity.defn
    def notify(self, notification: Notification) -> None:
        """Only writes the outbox (and the case's casebook row): the dispatcher delivers to external
        channels, so a dead channel never holds up the workflow (or its money) behind this activity."""
        # Before the outbox: a message in the outbox means its case's row is at least that new.
        if notification.case is not None:
            self._casebook.record(notification.dispute_id, notification.case)
        self._service.enqueue(notification)

from temporalio import activity

from casebook import Casebook
from notifications import NotificationService, OutboxMessage
from observability.domain import count_case_event
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
        written = self._service.enqueue(OutboxMessage(
            id=notification.id,
            dispute_id=notification.dispute_id,
            recipient_role=notification.recipient_role.value,
            recipient_id=notification.recipient_id,
            kind=notification.kind,
            subject=notification.subject,
            data=notification.data,
        ))
        # The notification carrying the case is its one per event: counted the once it is written.
        if written and notification.kind == "state_changed" and notification.case is not None:
            count_case_event(notification.data["event"], notification.case)

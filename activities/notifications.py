from temporalio import activity

from notifications import NotificationService, OutboxMessage
from workflows.models import Notification


class NotificationActivities:
    def __init__(self, service: NotificationService):
        self._service = service

    @activity.defn
    def notify(self, notification: Notification) -> None:
        """Only writes the outbox: the dispatcher delivers to external channels, so a dead
        channel never holds up the workflow (or its money) behind this activity."""
        self._service.enqueue(OutboxMessage(
            id=notification.id,
            dispute_id=notification.dispute_id,
            recipient_role=notification.recipient_role.value,
            recipient_id=notification.recipient_id,
            kind=notification.kind,
            subject=notification.subject,
            data=notification.data,
        ))

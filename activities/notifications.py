from sqlmodel import Session
from temporalio import activity

from casebook import Casebook
from notifications import NotificationService
from observability.domain import count_case_event
from reporting.projection import project
from workflows.models import Notification


class NotificationActivities:
    def __init__(self, service: NotificationService, casebook: Casebook):
        self._service = service
        self._casebook = casebook

    @activity.defn
    def notify(self, notification: Notification) -> None:
        """Only writes the outbox (and the case's read-model rows): the dispatcher delivers to external
        channels, so a dead channel never holds up the workflow (or its money) behind this activity."""
        def read_models(db: Session) -> None:
            # In the outbox's transaction: a message in the outbox means its case's rows are
            # at least that new, and a retry writes none of them twice.
            if notification.case is not None:
                self._casebook.apply(db, notification.dispute_id, notification.case)
            if notification.report is not None:
                project(db, notification.dispute_id, notification.report)

        written = self._service.enqueue(notification, alongside=read_models)
        # The notification carrying the case is its one per event: counted the once it is written.
        if written and notification.kind == "state_changed" and notification.case is not None:
            count_case_event(notification.data["event"], notification.case)

from sqlmodel import Session

from activities.definition import uninterrupted
from casebook.service import Casebook
from notifications.models import NotificationMessage
from notifications.service import NotificationService
from observability.domain import count_case_event
from reporting.facts import CaseFacts
from reporting.projection import project
from workflows.models import CaseSnapshot, Notification, Notifications


class NotificationActivities:
    """Only write the outbox (and the case's read-model rows): the dispatcher delivers to external
    channels, so a dead channel never holds up the workflow (or its money) behind these activities."""

    def __init__(self, service: NotificationService, casebook: Casebook):
        self._service = service
        self._casebook = casebook

    @uninterrupted
    def notify_all(self, change: Notifications) -> None:
        """Every message of one change of a case, and its read-model rows, in one transaction."""
        self._write(change.dispute_id, change.messages, change.case, change.report)

    @uninterrupted
    def notify(self, notification: Notification) -> None:
        """One message; cases started before `notify_all` send one per recipient, the first of
        each change carrying the case."""
        self._write(notification.dispute_id, [notification], notification.case, notification.report)

    def _write(self, dispute_id: str, messages: list[NotificationMessage], case: CaseSnapshot | None,
               report: CaseFacts | None) -> None:
        def read_models(db: Session) -> None:
            # In the outbox's transaction: a message in the outbox means its case's rows are
            # at least that new, and a retry writes none of them twice.
            if case is not None:
                self._casebook.apply(db, dispute_id, case)
            if report is not None:
                project(db, dispute_id, report)

        written = self._service.enqueue(messages, alongside=read_models)
        # The case travels once per event: counted the once it is written.
        first = messages[0]
        if written and first.kind == "state_changed" and case is not None:
            count_case_event(first.data["event"], case)

from collections.abc import Callable, Sequence

from sqlalchemy import Engine, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from database import fetch, reading, session
from notifications.models import DeliveryStatus, NotificationMessage, OutboxMessage, utcnow


class UnknownNotification(LookupError):
    pass


class NotDeadLettered(Exception):
    def __init__(self, message: OutboxMessage):
        super().__init__(f"notification {message.id} is {message.status}, not dead-lettered: nothing to re-send")
        self.status = message.status


class NotificationService:
    """The outbox: written by the notify activities, read by parties and operators. Delivery to
    external channels is the dispatcher's (notifications.dispatcher)."""

    def __init__(self, engine: Engine):
        self._engine = engine

    def enqueue(self, messages: Sequence[NotificationMessage], *,
                alongside: Callable[[Session], None] | None = None) -> bool:
        """Write the messages (one change of a case, to each of its recipients) to the outbox in
        one transaction, once; the dispatcher delivers them from there. `alongside` writes what
        must commit with them (the read models of the same change). True for the call that wrote them."""
        # They commit together, so the first one written means all of them (and what goes alongside).
        first = messages[0].id
        try:
            with session(self._engine) as db:
                if db.get(OutboxMessage, first) is not None:
                    return False  # a retried activity: the messages and their rows are written
                if alongside is not None:
                    alongside(db)
                db.add_all([OutboxMessage.model_validate(message, from_attributes=True) for message in messages])
            return True
        except IntegrityError:
            with reading(self._engine) as db:
                if db.get(OutboxMessage, first) is None:
                    raise
            return False  # a concurrent retry wrote them first, and what goes alongside them

    @staticmethod
    def add(db: Session, message: NotificationMessage) -> None:
        """Write the message in `db`'s transaction unless a retried write already did."""
        if db.get(OutboxMessage, message.id) is None:
            db.add(OutboxMessage.model_validate(message, from_attributes=True))

    def get(self, message_id: str) -> OutboxMessage:
        return fetch(self._engine, OutboxMessage, message_id,
                     lambda: UnknownNotification(f"there is no notification {message_id}"))

    def for_party(self, recipient_id: str, dispute_id: str | None = None) -> list[OutboxMessage]:
        with reading(self._engine) as session:
            query = select(OutboxMessage).where(OutboxMessage.recipient_id == recipient_id)
            if dispute_id is not None:
                query = query.where(OutboxMessage.dispute_id == dispute_id)
            return list(session.exec(query.order_by(OutboxMessage.created_at)))

    def for_dispute(self, dispute_id: str) -> list[OutboxMessage]:
        with reading(self._engine) as session:
            query = select(OutboxMessage).where(OutboxMessage.dispute_id == dispute_id)
            return list(session.exec(query.order_by(OutboxMessage.created_at, OutboxMessage.id)))

    def dead_letters(self, *, limit: int, offset: int = 0) -> tuple[list[OutboxMessage], int]:
        """One page of the dead-lettered messages, oldest first, and how many there are in all."""
        dead = OutboxMessage.status == DeliveryStatus.DEAD
        with reading(self._engine) as session:
            page = session.exec(select(OutboxMessage).where(dead)
                                .order_by(OutboxMessage.created_at, OutboxMessage.id).offset(offset).limit(limit))
            total = session.exec(select(func.count()).select_from(OutboxMessage).where(dead)).one()
            return list(page), total

    def resend(self, message_id: str) -> OutboxMessage:
        """Give a dead-lettered message a fresh set of attempts, due now. Only dead messages:
        a pending one is already being retried and a delivered one was received."""
        with Session(self._engine) as session:
            requeued = session.exec(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id, OutboxMessage.status == DeliveryStatus.DEAD)
                .values(status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=utcnow(),
                        lease_owner=None, lease_until=None)
            )
            session.commit()
        message = self.get(message_id)
        if requeued.rowcount != 1:
            raise NotDeadLettered(message)
        return message

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from notifications.channels import Channel
from notifications.models import OutboxMessage


class NotificationService:
    def __init__(self, engine: Engine, channels: list[Channel]):
        self._engine = engine
        self._channels = channels

    def send(self, message: OutboxMessage) -> OutboxMessage:
        """Write the message to the outbox once, then deliver it to every channel not yet done."""
        with Session(self._engine) as session:
            stored = session.get(OutboxMessage, message.id)
            if stored is None:
                session.add(message)
                try:
                    session.commit()
                except IntegrityError:  # a concurrent retry wrote it first
                    session.rollback()
                stored = session.get(OutboxMessage, message.id)
            assert stored is not None
            delivered = list(stored.delivered)
            for channel in self._channels:
                if channel.name not in delivered:
                    channel.deliver(stored)
                    delivered.append(channel.name)
                    stored.delivered = delivered
                    session.add(stored)
                    session.commit()
            session.refresh(stored)
            return stored

    def for_party(self, recipient_id: str, dispute_id: str | None = None) -> list[OutboxMessage]:
        with Session(self._engine) as session:
            query = select(OutboxMessage).where(OutboxMessage.recipient_id == recipient_id)
            if dispute_id is not None:
                query = query.where(OutboxMessage.dispute_id == dispute_id)
            return list(session.exec(query.order_by(OutboxMessage.created_at)))

    def for_dispute(self, dispute_id: str) -> list[OutboxMessage]:
        with Session(self._engine) as session:
            query = select(OutboxMessage).where(OutboxMessage.dispute_id == dispute_id)
            return list(session.exec(query.order_by(OutboxMessage.created_at, OutboxMessage.id)))

"""The notification dispatcher: delivers outbox messages to the external channels.

The notify activity only writes the outbox, so a dead channel never holds up a case or its
money. This process polls for due messages and delivers each to every configured channel
that has not confirmed it yet. A failed attempt is retried with exponential backoff; after
`notification_max_attempts` the message is dead-lettered until an operator re-sends it
(`GET /notifications/dead-letters`, `POST /notifications/{id}/resend`, or the CLI).

Any number of dispatchers may run. A dispatcher claims a message with a conditional UPDATE
that sets a lease (owner and expiry) only if nobody holds one, on SQLite and PostgreSQL
alike, so two never deliver the same message at once; it records the outcome only while it
still holds the lease. If it dies mid-delivery, the message is retried once the lease runs
out, and the receiver drops a repeat by its `Idempotency-Key` (the message id). Leases
compare the dispatchers' clocks, which are assumed to agree to well within the lease.

Run it with `python -m notifications.dispatcher` (or `disputeflow dispatch`).
"""

import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from config.settings import Settings, get_settings
from database import SchemaNotReady, open_database, reading
from notifications.channels import Channel, DeliveryFailed, channels_from_names
from notifications.models import DeliveryStatus, OutboxMessage, utcnow
from observability.processes import setup_dispatcher

log = logging.getLogger("disputeflow.dispatcher")

LAST_ERROR_MAX = 500


@dataclass(frozen=True)
class RetrySchedule:
    max_attempts: int
    first_delay: timedelta
    max_delay: timedelta
    lease: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> "RetrySchedule":
        return cls(max_attempts=settings.notification_max_attempts,
                   first_delay=timedelta(seconds=settings.notification_retry_first_seconds),
                   max_delay=timedelta(seconds=settings.notification_retry_max_seconds),
                   lease=timedelta(seconds=settings.notification_lease_seconds))

    def delay_after(self, attempts: int) -> timedelta:
        """The wait before the next attempt, after `attempts` failed ones: doubling, capped."""
        return min(self.max_delay, self.first_delay * 2 ** (attempts - 1))


class Dispatcher:
    def __init__(self, engine: Engine, channels: list[Channel], schedule: RetrySchedule, *,
                 clock: Callable[[], datetime] = utcnow, batch_size: int = 100):
        self._engine = engine
        self._channels = channels
        self._schedule = schedule
        self._clock = clock
        self._batch_size = batch_size
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._stopping = threading.Event()

    def dispatch_due(self) -> int:
        """Deliver every message due now that no other dispatcher holds; how many were attempted."""
        now = self._clock()
        with reading(self._engine) as session:
            due = list(session.exec(
                select(OutboxMessage.id).where(_claimable(now))
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(self._batch_size)
            ))
        attempted = 0
        for message_id in due:
            if self._stopping.is_set():
                break  # what is left stays due for the next dispatcher
            message = self._claim(message_id)
            if message is not None:
                self._deliver(message)
                attempted += 1
        return attempted

    def _claim(self, message_id: str) -> OutboxMessage | None:
        now = self._clock()
        with Session(self._engine, expire_on_commit=False) as session:
            claimed = session.exec(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id, _claimable(now))
                .values(lease_owner=self.owner, lease_until=now + self._schedule.lease,
                        attempts=OutboxMessage.attempts + 1, last_attempt_at=now)
            )
            session.commit()
            if claimed.rowcount != 1:
                return None  # another dispatcher got there first
            return session.get(OutboxMessage, message_id)

    def _deliver(self, message: OutboxMessage) -> None:
        delivered = list(message.delivered)
        remaining = [channel for channel in self._channels if channel.name not in delivered]
        for channel in remaining:
            try:
                channel.deliver(message)
            except DeliveryFailed as error:
                self._failed(message, channel.name, str(error))
                return
            except Exception as error:  # a channel's bug is a failed attempt, not a dead dispatcher
                log.exception("channel %s failed on notification %s", channel.name, message.id)
                self._failed(message, channel.name, type(error).__name__)
                return
            delivered.append(channel.name)
            if channel is not remaining[-1]:  # so a retry after a crash skips it
                self._record(message.id, delivered=delivered)
        self._record(message.id, delivered=delivered, status=DeliveryStatus.DELIVERED,
                     lease_owner=None, lease_until=None)

    def _failed(self, message: OutboxMessage, channel: str, error: str) -> None:
        error = f"{channel}: {error}"[:LAST_ERROR_MAX]
        if message.attempts >= self._schedule.max_attempts:
            log.warning("notification %s dead-lettered after %d attempts: %s", message.id, message.attempts, error)
            self._record(message.id, status=DeliveryStatus.DEAD, last_error=error, lease_owner=None, lease_until=None)
            return
        retry_at = self._clock() + self._schedule.delay_after(message.attempts)
        log.info("notification %s attempt %d failed (%s); next at %s", message.id, message.attempts, error,
                 retry_at.isoformat())
        self._record(message.id, next_attempt_at=retry_at, last_error=error, lease_owner=None, lease_until=None)

    def _record(self, message_id: str, **values: object) -> None:
        """Write an outcome, only while this dispatcher still holds the message's lease."""
        with Session(self._engine) as session:
            session.exec(update(OutboxMessage)
                         .where(OutboxMessage.id == message_id, OutboxMessage.lease_owner == self.owner)
                         .values(**values))
            session.commit()

    def run(self, poll_interval: float) -> None:
        """Dispatch until `stop()`; an unreachable database is waited out, not fatal."""
        log.info("dispatcher %s delivering to %s", self.owner, ", ".join(c.name for c in self._channels) or "no channel")
        while not self._stopping.is_set():
            try:
                attempted = self.dispatch_due()
            except SQLAlchemyError as error:
                log.warning("outbox unreachable (%s); retrying in %.1fs", type(error).__name__, poll_interval)
                attempted = 0
            if not attempted:
                self._stopping.wait(poll_interval)

    def stop(self) -> None:
        """Finish the message in hand, then return from `run`."""
        self._stopping.set()


def _claimable(now: datetime):
    return (OutboxMessage.status == DeliveryStatus.PENDING) & (OutboxMessage.next_attempt_at <= now) & or_(
        OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now)


def build_dispatcher(settings: Settings, engine: Engine) -> Dispatcher:
    channels = channels_from_names(
        settings.notification_channels, webhook_url=settings.notification_webhook_url,
        webhook_secrets=[secret.get_secret_value() for secret in settings.notification_webhook_secrets])
    return Dispatcher(engine, channels, RetrySchedule.from_settings(settings))


def main() -> int:
    settings = get_settings()
    setup_dispatcher(settings)
    # httpx logs every request's URL at INFO, and a webhook URL often carries a secret.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    engine = open_database(settings.database_url)
    dispatcher = build_dispatcher(settings, engine)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: dispatcher.stop())
    dispatcher.run(settings.notification_poll_seconds)
    log.info("dispatcher %s stopped", dispatcher.owner)
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except SchemaNotReady as error:
        raise SystemExit(f"dispatcher: {error}") from None

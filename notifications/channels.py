"""Delivery channels. The outbox row is the in-app channel; others are pluggable."""

import logging
from typing import Protocol

from notifications.models import OutboxMessage

log = logging.getLogger("disputeflow.notifications")


class Channel(Protocol):
    name: str

    def deliver(self, message: OutboxMessage) -> None:
        """Deliver or raise; the activity retries, and `message.id` lets a gateway dedupe."""


class LogChannel:
    """Logs that a message went out, by ids only: names, phones and addresses stay out of logs."""

    name = "log"

    def deliver(self, message: OutboxMessage) -> None:
        log.info(
            "notification %s to %s %s: %s (dispute %s)",
            message.id, message.recipient_role, message.recipient_id, message.kind, message.dispute_id,
        )


_KNOWN: dict[str, type] = {LogChannel.name: LogChannel}


def channels_from_names(names: list[str]) -> list[Channel]:
    unknown = set(names) - set(_KNOWN)
    if unknown:
        raise ValueError(f"unknown notification channels: {', '.join(sorted(unknown))}; known: {', '.join(_KNOWN)}")
    return [_KNOWN[name]() for name in names]

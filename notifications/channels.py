"""External delivery channels, used by the dispatcher. The outbox row is the in-app channel."""

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

import httpx

from notifications.models import OutboxMessage
from security.webhooks import WebhookSigner

log = logging.getLogger("disputeflow.notifications")


class DeliveryFailed(Exception):
    """A channel could not deliver; the text is kept as the message's `last_error`, so it
    names what failed (status, error type) and never the message's content or the URL."""


class Channel(Protocol):
    name: str

    def deliver(self, message: OutboxMessage) -> None:
        """Deliver or raise DeliveryFailed; the dispatcher retries, and `message.id` lets a gateway dedupe."""


class LogChannel:
    """Logs that a message went out, by ids only: names, phones and addresses stay out of logs."""

    name = "log"

    def deliver(self, message: OutboxMessage) -> None:
        log.info(
            "notification %s to %s %s: %s (dispute %s)",
            message.id, message.recipient_role, message.recipient_id, message.kind, message.dispute_id,
        )


class WebhookChannel:
    """POSTs each message as JSON to the marketplace's endpoint, which fans out to e-mail,
    SMS or app push. The `Idempotency-Key` header is the message id: a redelivery after a
    lost reply carries the same key, so the receiver can drop the duplicate. Every request
    is signed the Standard Webhooks way (security.webhooks), `webhook-id` being the message id."""

    name = "webhook"

    def __init__(self, url: str, secrets: Sequence[str], timeout: float = 10.0):
        self._url = url
        self._signer = WebhookSigner(secrets)
        # One client for the dispatcher's life: kept-alive connections, one TLS context.
        self._client = httpx.Client(timeout=timeout)

    def deliver(self, message: OutboxMessage) -> None:
        body = message.model_dump(mode="json", include={
            "id", "dispute_id", "recipient_role", "recipient_id", "kind", "subject", "data", "created_at"})
        # Signed as sent: the receiver verifies these exact bytes.
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        headers = {"Content-Type": "application/json", "Idempotency-Key": message.id,
                   **self._signer.headers(message.id, content, datetime.now(UTC))}
        try:
            response = self._client.post(self._url, content=content.encode("utf-8"), headers=headers)
        except httpx.TransportError as error:
            raise DeliveryFailed(f"unreachable: {type(error).__name__}: {error}") from error
        if not response.is_success:
            raise DeliveryFailed(f"answered HTTP {response.status_code}")


def channels_from_names(names: list[str], *, webhook_url: str | None = None,
                        webhook_secrets: Sequence[str] = ()) -> list[Channel]:
    factories = {LogChannel.name: LogChannel,
                 WebhookChannel.name: lambda: WebhookChannel(_require(webhook_url), webhook_secrets)}
    unknown = set(names) - set(factories)
    if unknown:
        raise ValueError(f"unknown notification channels: {', '.join(sorted(unknown))}; known: {', '.join(factories)}")
    return [factories[name]() for name in names]


def _require(webhook_url: str | None) -> str:
    if not webhook_url:
        raise ValueError("the webhook channel needs DISPUTEFLOW_NOTIFICATION_WEBHOOK_URL")
    return webhook_url

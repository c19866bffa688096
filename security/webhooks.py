"""Webhook signatures as the Standard Webhooks specification describes them.

Each request carries `webhook-id` (the message id: the same on every retry, so a receiver
drops duplicates), `webhook-timestamp` (seconds since the epoch, of this attempt: a
receiver refuses old ones, so a captured request cannot be replayed later) and
`webhook-signature`: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per active
secret, space-separated. During a rotation both secrets are active, so a receiver holding
either the old or the new one verifies every message.
"""

from collections.abc import Sequence
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"


class WebhookSigner:
    def __init__(self, secrets: Sequence[str]):
        if not secrets:
            raise ValueError("webhooks are signed: set DISPUTEFLOW_NOTIFICATION_WEBHOOK_SECRETS (whsec_...)")
        if not all(secret.startswith(SECRET_PREFIX) for secret in secrets):
            raise ValueError(f"webhook secrets are {SECRET_PREFIX}<base64>, as the Standard Webhooks tools make them")
        self._signers = [Webhook(secret) for secret in secrets]

    def headers(self, message_id: str, body: str, at: datetime) -> dict[str, str]:
        """The signature headers of one delivery attempt of `body` (the exact text sent)."""
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": " ".join(signer.sign(message_id, at, body) for signer in self._signers),
        }

"""A marketplace's receiver can trust our webhooks: it verifies them with the Standard
Webhooks reference library, as the README shows, and refuses what was altered, signed
with another secret, or replayed later; during a rotation either secret verifies."""

import base64
import hashlib
import hmac
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from notifications.channels import channels_from_names
from notifications.models import OutboxMessage
from security.webhooks import WebhookSigner

OLD_SECRET = "whsec_" + base64.b64encode(b"the secret being retired, 32 b!").decode()
NEW_SECRET = "whsec_" + base64.b64encode(b"the secret taking over, 32 bytes").decode()


class Receiver:
    """The marketplace's endpoint: keeps each request's raw body and headers."""

    def __init__(self) -> None:
        self.requests: list[tuple[bytes, dict[str, str]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((body, dict(self.headers.items())))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks/disputeflow"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self._thread.join()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


def _message() -> OutboxMessage:
    return OutboxMessage(id="dsp-ORD-1001-1-e7-seller", dispute_id="dsp-ORD-1001-1", recipient_role="seller",
                         recipient_id="acme", kind="state_changed", subject="Dispute dsp-ORD-1001-1: escalated",
                         data={"state": "PLATFORM_INTERVENING"})


def test_a_delivered_webhook_verifies_with_either_secret_of_a_rotation(receiver: Receiver) -> None:
    [webhook] = channels_from_names(["webhook"], webhook_url=receiver.url, webhook_secrets=[NEW_SECRET, OLD_SECRET])
    webhook.deliver(_message())
    [(body, headers)] = receiver.requests

    # Receivers still on the old secret and those already on the new one both accept it.
    for secret in (OLD_SECRET, NEW_SECRET):
        payload = Webhook(secret).verify(body, headers)
        assert payload["id"] == headers["webhook-id"] == headers["Idempotency-Key"] == "dsp-ORD-1001-1-e7-seller"
        assert payload["data"] == {"state": "PLATFORM_INTERVENING"}
    # The signature is the specification's, computed by hand: v1,base64(HMAC-SHA256(id.timestamp.body)).
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = {f"v1,{base64.b64encode(hmac.digest(base64.b64decode(s.removeprefix('whsec_')), signed, hashlib.sha256)).decode()}"
                for s in (OLD_SECRET, NEW_SECRET)}
    assert set(headers["webhook-signature"].split(" ")) == expected
    assert abs(int(headers["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 60


def test_tampered_wrongly_signed_and_replayed_messages_are_refused(receiver: Receiver) -> None:
    [webhook] = channels_from_names(["webhook"], webhook_url=receiver.url, webhook_secrets=[NEW_SECRET])
    webhook.deliver(_message())
    [(body, headers)] = receiver.requests
    verifier = Webhook(NEW_SECRET)

    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        verifier.verify(body.replace(b"PLATFORM_INTERVENING", b"CLOSED"), headers)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(OLD_SECRET).verify(body, headers)
    # A message captured and sent again later: its signature is valid, its timestamp too old.
    later = WebhookSigner([NEW_SECRET]).headers(headers["webhook-id"], body.decode(),
                                               datetime.now(UTC) - timedelta(minutes=6))
    with pytest.raises(WebhookVerificationError, match="too old"):
        verifier.verify(body, later)
    # Moving the timestamp forward breaks the signature.
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        verifier.verify(body, {**later, "webhook-timestamp": headers["webhook-timestamp"]})
    assert verifier.verify(body, headers)["kind"] == "state_changed"

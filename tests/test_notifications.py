"""Notification delivery: the outbox once, each channel once, retried until delivered.

The webhook receiver stands in for the marketplace's gateway (outside the system)."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import Engine

from activities.notifications import NotificationActivities
from casebook import Casebook
from identity import Role
from notifications import NotificationService, channels_from_names
from workflows.models import Notification


class Gateway:
    """A webhook receiver that fails its first `failures` requests with 503."""

    def __init__(self, failures: int):
        self.failures = failures
        self.received: list[tuple[str, dict]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                gateway.received.append((self.headers["Idempotency-Key"], body))
                failing = len(gateway.received) <= gateway.failures
                self.send_response(503 if failing else 204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/disputeflow"


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    gateway = Gateway(failures=1)
    thread = threading.Thread(target=gateway.server.serve_forever, daemon=True)
    thread.start()
    yield gateway
    gateway.server.shutdown()


def test_a_failed_webhook_is_retried_without_notifying_twice(app_engine: Engine, gateway: Gateway) -> None:
    service = NotificationService(app_engine, channels_from_names(["log", "webhook"], webhook_url=gateway.url))
    notify = NotificationActivities(service, Casebook(app_engine)).notify
    notification = Notification(id="dsp-N-1-e2-seller", dispute_id="dsp-N-1", recipient_role=Role.SELLER,
                                recipient_id="acme", kind="state_changed", subject="Dispute dsp-N-1: buyer escalated",
                                data={"state": "PLATFORM_INTERVENING"})
    with pytest.raises(Exception, match="503"):
        notify(notification)  # the activity fails; Temporal retries it
    [stored] = service.for_dispute("dsp-N-1")
    assert stored.delivered == ["log"], "the log channel delivered, the webhook did not"
    notify(notification)  # the retry
    notify(notification)  # a retry after a lost reply
    [stored] = service.for_dispute("dsp-N-1")
    assert stored.delivered == ["log", "webhook"]
    assert [key for key, _ in gateway.received] == ["dsp-N-1-e2-seller"] * 2, "one failure, one delivery"
    body = gateway.received[-1][1]
    assert body["recipient_id"] == "acme" and body["data"] == {"state": "PLATFORM_INTERVENING"}


def test_channels_are_checked_at_start_up() -> None:
    with pytest.raises(ValueError, match="unknown notification channels: sms"):
        channels_from_names(["log", "sms"])
    with pytest.raises(ValueError, match="NOTIFICATION_WEBHOOK_URL"):
        channels_from_names(["webhook"])

"""Notification delivery: the notify activity only writes the outbox, and the dispatcher
delivers it to the external channels, retrying, dead-lettering, never twice at once.

The webhook receiver stands in for the marketplace's gateway (outside the system); it runs on
127.0.0.1 and is "down" while its port is bound but not listening (connections refused)."""

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import Engine

from activities.notifications import NotificationActivities
from casebook.service import Casebook
from database import make_engine, migrate
from identity import Role
from notifications.channels import channels_from_names
from notifications.dispatcher import Dispatcher, RetrySchedule
from notifications.models import DeliveryStatus
from notifications.service import NotificationService
from tests.conftest import StackFactory
from tests.postgres import fresh_schema_engine, new_schema_name
from tests.support import BUYER, PLATFORM, SELLER, eventually
from workflows.models import Notification

# The gateway's URL carries a secret, as real ones do: it must never reach a log or last_error.
GATEWAY_SECRET = "s3cret-gateway-token"
# What the webhooks are signed with (tests/security/test_webhook_signatures.py checks how).
SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Gateway:
    """A webhook receiver: down until `start()`, then it answers its first `failures`
    requests with 503 and accepts the rest with 204."""

    def __init__(self, failures: int = 0):
        self.failures = failures
        self.received: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with gateway._lock:
                    gateway.received.append((self.headers["Idempotency-Key"], body))
                    failing = len(gateway.received) <= gateway.failures
                self.send_response(503 if failing else 204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.server.server_bind()  # holds the port, so nobody else takes it while we are down
        self.url = f"http://127.0.0.1:{self.server.server_port}/disputeflow?token={GATEWAY_SECRET}"

    def start(self) -> None:
        self.server.server_activate()
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join()
        self.server.server_close()

    def keys(self) -> list[str]:
        with self._lock:
            return [key for key, _ in self.received]


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    gateway = Gateway()
    yield gateway
    gateway.close()


@pytest.fixture
def outbox_engine(tmp_path: Path) -> Engine:
    """A database of the test's own, so no other test's messages are in its outbox."""
    engine = make_engine(f"sqlite:///{tmp_path}/disputeflow.db")
    migrate(engine)
    return engine


class Clock:
    """The dispatcher's clock, moved by the test instead of waited for."""

    def __init__(self) -> None:
        # Ahead of the real clock, so whatever the activity or an operator made due is due.
        self.now = datetime.now(UTC) + timedelta(hours=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delay: timedelta) -> None:
        self.now += delay


SCHEDULE = RetrySchedule(max_attempts=3, first_delay=timedelta(seconds=5), max_delay=timedelta(seconds=20),
                         lease=timedelta(seconds=60))


def dispatcher_for(engine: Engine, gateway: Gateway, schedule: RetrySchedule = SCHEDULE,
                   clock: Clock | None = None) -> Dispatcher:
    channels = channels_from_names(["log", "webhook"], webhook_url=gateway.url, webhook_secrets=[SIGNING_SECRET])
    return Dispatcher(engine, channels, schedule, **({"clock": clock} if clock else {}))


def notification(number: int = 1, **fields) -> Notification:
    return Notification(**{
        "id": f"dsp-N-1-e{number}-seller", "dispute_id": "dsp-N-1", "recipient_role": Role.SELLER,
        "recipient_id": "acme", "kind": "state_changed", "subject": "Dispute dsp-N-1: buyer escalated",
        "data": {"state": "PLATFORM_INTERVENING"}} | fields)


@pytest.fixture
def running_dispatcher(outbox_engine: Engine, gateway: Gateway) -> Iterator[Dispatcher]:
    """A dispatcher polling the test's database in the background, retrying quickly."""
    quick = RetrySchedule(max_attempts=1000, first_delay=timedelta(seconds=0.1), max_delay=timedelta(seconds=0.5),
                          lease=timedelta(seconds=60))
    dispatcher = dispatcher_for(outbox_engine, gateway, quick)
    thread = threading.Thread(target=dispatcher.run, args=(0.1,), daemon=True)
    thread.start()
    yield dispatcher
    dispatcher.stop()
    thread.join()


async def test_money_settles_while_the_webhook_is_down(
        stack_factory: StackFactory, outbox_engine: Engine, gateway: Gateway, running_dispatcher: Dispatcher) -> None:
    """Issue 9 item 4: a dead webhook made seller-agree-refund answer 503 and left the escrow
    frozen. Now the case settles regardless, and every message arrives once the webhook is back."""
    async with stack_factory(outbox_engine) as stack:
        order_id = await stack.register_order(amount=10_000)
        dispute_id = (await stack.open_dispute(order_id, amount=10_000))["dispute_id"]
        await stack.act(dispute_id, "seller-agree-refund", SELLER)
        view = await stack.wait_for_state(dispute_id, "SUCCESS")
        assert view["resolution"]["settled"] is True and view["refunded"] == {"amount": 10_000, "currency": "CNY"}
        assert stack.money(order_id) == {"escrow": 0, "escrow_pending": 0, "buyer_refunds": 10_000,
                                         "seller_released": 0}
        assert stack.balance("buyer:alice:CNY") == 10_000
        # Final, so the closing's messages and its survey invitations are in the outbox too: the
        # messages checked below are every message the case sends.
        await stack.services.temporal.get_workflow_handle(dispute_id).result()
        outbox = stack.services.notifications

        async def every_message_failed_at_least_once() -> bool:
            messages = outbox.for_dispute(dispute_id)
            return bool(messages) and all(m.attempts >= 1 and m.status == DeliveryStatus.PENDING for m in messages)

        await eventually(every_message_failed_at_least_once, what="the dispatcher to try and fail every message")
        [message, *_] = outbox.for_dispute(dispute_id)
        assert message.delivered == ["log"] and message.last_error.startswith("webhook: unreachable: ConnectError")

        gateway.start()

        async def all_delivered() -> list | None:
            messages = outbox.for_dispute(dispute_id)
            return messages if all(m.status == DeliveryStatus.DELIVERED for m in messages) else None

        messages = await eventually(all_delivered, timeout=60, what="every message delivered after recovery")
        assert sorted(gateway.keys()) == sorted(m.id for m in messages), "each message delivered exactly once"
        assert {m.delivered == ["log", "webhook"] for m in messages} == {True}


def test_the_activity_only_writes_the_outbox_once(outbox_engine: Engine) -> None:
    service = NotificationService(outbox_engine)
    notify = NotificationActivities(service, Casebook(outbox_engine)).notify
    notify(notification())
    notify(notification(subject="a retried activity changes nothing"))
    [stored] = service.for_dispute("dsp-N-1")
    assert (stored.status, stored.attempts, stored.delivered) == (DeliveryStatus.PENDING, 0, [])
    assert stored.subject == "Dispute dsp-N-1: buyer escalated"


def test_a_failed_webhook_is_retried_with_backoff_then_dead_lettered(outbox_engine: Engine, gateway: Gateway) -> None:
    gateway.failures = 100
    gateway.start()
    clock = Clock()
    dispatcher = dispatcher_for(outbox_engine, gateway, clock=clock)
    service = NotificationService(outbox_engine)
    NotificationActivities(service, Casebook(outbox_engine)).notify(notification())

    def stored():
        [message] = service.for_dispute("dsp-N-1")
        return message

    assert dispatcher.dispatch_due() == 1
    assert (stored().attempts, stored().delivered, stored().last_error) == (1, ["log"], "webhook: answered HTTP 503")
    assert dispatcher.dispatch_due() == 0, "not due again before its backoff"
    clock.advance(timedelta(seconds=4.9))
    assert dispatcher.dispatch_due() == 0
    clock.advance(timedelta(seconds=0.1))
    assert dispatcher.dispatch_due() == 1, "due 5 s after the first failure"
    clock.advance(timedelta(seconds=9.9))
    assert dispatcher.dispatch_due() == 0, "the second wait is twice the first"
    clock.advance(timedelta(seconds=0.1))
    assert dispatcher.dispatch_due() == 1
    assert (stored().status, stored().attempts) == (DeliveryStatus.DEAD, 3), "dead after max_attempts"
    clock.advance(timedelta(days=1))
    assert dispatcher.dispatch_due() == 0, "a dead letter waits for an operator"
    assert gateway.keys() == ["dsp-N-1-e1-seller"] * 3, "one request per attempt, each with the message id as key"
    body = gateway.received[0][1]
    assert body["recipient_id"] == "acme" and body["data"] == {"state": "PLATFORM_INTERVENING"}


def test_a_message_held_by_a_dead_dispatcher_is_taken_over_after_its_lease(
        outbox_engine: Engine, gateway: Gateway) -> None:
    gateway.start()
    clock = Clock()
    crashed, survivor = dispatcher_for(outbox_engine, gateway, clock=clock), dispatcher_for(outbox_engine, gateway, clock=clock)
    service = NotificationService(outbox_engine)
    NotificationActivities(service, Casebook(outbox_engine)).notify(notification())
    assert crashed._claim("dsp-N-1-e1-seller") is not None  # ... and it dies before delivering
    assert survivor.dispatch_due() == 0, "held by the other dispatcher's lease"
    clock.advance(SCHEDULE.lease + timedelta(seconds=1))
    assert survivor.dispatch_due() == 1
    crashed._record("dsp-N-1-e1-seller", status=DeliveryStatus.DEAD)  # a late write of the lost lease
    [stored] = service.for_dispute("dsp-N-1")
    assert stored.status == DeliveryStatus.DELIVERED and gateway.keys() == ["dsp-N-1-e1-seller"]


@pytest.fixture(params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)])
def any_outbox_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        yield request.getfixturevalue("outbox_engine")
    else:
        with fresh_schema_engine(new_schema_name("df_outbox")) as engine:
            yield engine


def test_two_dispatchers_never_deliver_one_message_twice(any_outbox_engine: Engine, gateway: Gateway) -> None:
    gateway.start()
    service = NotificationService(any_outbox_engine)
    notify = NotificationActivities(service, Casebook(outbox_engine)).notify
    for number in range(150):
        notify(notification(number))
    dispatchers = [dispatcher_for(any_outbox_engine, gateway) for _ in range(2)]
    start = threading.Barrier(len(dispatchers))

    def drain(dispatcher: Dispatcher) -> None:
        start.wait()
        while dispatcher.dispatch_due():
            pass

    threads = [threading.Thread(target=drain, args=(d,)) for d in dispatchers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = Counter(gateway.keys())
    assert len(counts) == 150 and set(counts.values()) == {1}, [k for k, n in counts.items() if n > 1]
    assert {m.status for m in service.for_dispute("dsp-N-1")} == {DeliveryStatus.DELIVERED}


async def test_an_operator_lists_and_resends_dead_letters(
        stack_factory: StackFactory, outbox_engine: Engine, gateway: Gateway) -> None:
    clock = Clock()
    dispatcher = dispatcher_for(outbox_engine, gateway, clock=clock)
    async with stack_factory(outbox_engine) as stack:
        order_id = await stack.register_order()
        dispute_id = (await stack.open_dispute(order_id))["dispute_id"]
        await stack.act(dispute_id, "seller-agree-refund", SELLER)
        await stack.wait_for_state(dispute_id, "SUCCESS")
        # Final, so its survey invitations are in the outbox too: nothing arrives later.
        await stack.services.temporal.get_workflow_handle(dispute_id).result()
        outbox = stack.services.notifications
        expected = sorted(m.id for m in outbox.for_dispute(dispute_id))
        for _ in range(SCHEDULE.max_attempts):  # the webhook stays down through every attempt
            await asyncio.to_thread(dispatcher.dispatch_due)
            clock.advance(SCHEDULE.max_delay)
        assert {m.status for m in outbox.for_dispute(dispute_id)} == {DeliveryStatus.DEAD}

        dead = await stack.ok("GET", "/notifications/dead-letters", PLATFORM)
        assert dead["count"] == len(expected) and sorted(d["id"] for d in dead["items"]) == expected
        first = dead["items"][0]
        assert first["status"] == "dead" and first["attempts"] == 3 and first["delivered_to"] == ["log"]
        assert first["next_attempt_at"] is None, "a dead letter is not retried until re-sent"
        assert first["last_error"].startswith("webhook: unreachable: ConnectError") and GATEWAY_SECRET not in json.dumps(dead)
        page = await stack.ok("GET", "/notifications/dead-letters?limit=1&offset=1", PLATFORM)
        assert page["count"] == len(expected) and [d["id"] for d in page["items"]] == [dead["items"][1]["id"]]
        for token in (BUYER, SELLER):
            forbidden = await stack.call("GET", "/notifications/dead-letters", token)
            assert forbidden.status_code == 403 and forbidden.headers["content-type"] == "application/problem+json"
            assert (await stack.call("POST", f"/notifications/{first['id']}/resend", token)).status_code == 403

        unknown = await stack.call("POST", "/notifications/dsp-nope-1-e1-buyer/resend", PLATFORM)
        assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
        assert unknown.json()["type"] == "/problems/notification-not-found"

        gateway.start()
        resent = await stack.ok("POST", f"/notifications/{first['id']}/resend", PLATFORM)
        assert resent["status"] == "pending" and resent["attempts"] == 0 and resent["next_attempt_at"]
        again = await stack.call("POST", f"/notifications/{first['id']}/resend", PLATFORM)
        assert again.status_code == 409 and again.json()["delivery_status"] == "pending", again.text
        second = dead["items"][1]["id"]
        at_once = await asyncio.gather(*[stack.call("POST", f"/notifications/{second}/resend", PLATFORM)
                                         for _ in range(2)])
        assert sorted(r.status_code for r in at_once) == [200, 409], "two operators at once: one re-send"
        assert await asyncio.to_thread(dispatcher.dispatch_due) == 2, "only the re-sent messages are due"
        assert sorted(gateway.keys()) == sorted([first["id"], second]), \
            "each delivered once, to the channel that had not confirmed it"
        assert outbox.get(first["id"]).delivered == ["log", "webhook"]
        delivered = await stack.call("POST", f"/notifications/{first['id']}/resend", PLATFORM)
        assert delivered.status_code == 409 and delivered.json()["delivery_status"] == "delivered"
        assert (await stack.ok("GET", "/notifications/dead-letters", PLATFORM))["count"] == len(expected) - 2


def test_the_operators_cli_lists_and_resends_dead_letters(outbox_engine: Engine, gateway: Gateway) -> None:
    clock = Clock()
    dispatcher = dispatcher_for(outbox_engine, gateway, RetrySchedule(
        max_attempts=1, first_delay=timedelta(seconds=1), max_delay=timedelta(seconds=1), lease=timedelta(seconds=60)),
        clock=clock)
    NotificationActivities(NotificationService(outbox_engine), Casebook(outbox_engine)).notify(notification())
    assert dispatcher.dispatch_due() == 1

    def cli(*args: str) -> subprocess.CompletedProcess:
        env = os.environ | {"DISPUTEFLOW_DATABASE_URL": outbox_engine.url.render_as_string(hide_password=False)}
        return subprocess.run([sys.executable, "-m", "devstack.cli", "notifications", *args], env=env,
                              capture_output=True, text=True, timeout=120)

    listed = cli("dead-letters")
    assert listed.returncode == 0 and "dsp-N-1-e1-seller" in listed.stdout and "1 dead-lettered in all" in listed.stdout
    as_json = cli("dead-letters", "--json")
    assert json.loads(as_json.stdout)["attempts"] == 1
    assert cli("resend", "dsp-N-9-e1-seller").returncode == 3
    assert cli("resend", "dsp-N-1-e1-seller").returncode == 0
    not_dead = cli("resend", "dsp-N-1-e1-seller")
    assert not_dead.returncode == 4 and "is pending, not dead-lettered" in not_dead.stderr
    gateway.start()
    assert dispatcher.dispatch_due() == 1 and gateway.keys() == ["dsp-N-1-e1-seller"]
    assert cli("dead-letters").stdout.strip() == "0 dead-lettered in all"


def test_logs_never_carry_personal_data(outbox_engine: Engine, gateway: Gateway,
                                        caplog: pytest.LogCaptureFixture) -> None:
    """Subjects and data may hold names, phones and addresses; logs get ids only."""
    personal = ["Wang Xiaoming", "13800138000", "No. 8 Jianguo Road"]
    clock = Clock()
    dispatcher = dispatcher_for(outbox_engine, gateway, RetrySchedule(
        max_attempts=2, first_delay=timedelta(seconds=1), max_delay=timedelta(seconds=1), lease=timedelta(seconds=60)),
        clock=clock)
    NotificationActivities(NotificationService(outbox_engine), Casebook(outbox_engine)).notify(notification(
        subject=f"Parcel for {personal[0]}", data={"phone": personal[1], "address": personal[2]}))
    with caplog.at_level(logging.DEBUG):
        dispatcher.dispatch_due()  # fails: the webhook is down
        clock.advance(timedelta(seconds=1))
        dispatcher.dispatch_due()  # dead-lettered
        gateway.start()
        NotificationService(outbox_engine).resend("dsp-N-1-e1-seller")
        clock.advance(timedelta(seconds=1))
        dispatcher.dispatch_due()  # delivered
    # The dispatcher process turns httpx's request log (which names the URL) down to warnings.
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("disputeflow"))
    assert "notification dsp-N-1-e1-seller to seller acme: state_changed" in logged
    assert "dead-lettered" in logged
    for leak in [*personal, GATEWAY_SECRET]:
        assert leak not in logged


async def test_a_dispatcher_waits_out_an_unreachable_database(caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/nothing")  # nothing listens on port 1
    dispatcher = Dispatcher(engine, channels_from_names(["log"]), SCHEDULE)
    thread = threading.Thread(target=dispatcher.run, args=(0.05,), daemon=True)
    with caplog.at_level(logging.WARNING, logger="disputeflow.dispatcher"):
        thread.start()

        async def polled_twice() -> bool:
            return sum("outbox unreachable (OperationalError)" in r.getMessage() for r in caplog.records) >= 2

        await eventually(polled_twice, what="the dispatcher to keep polling a database that is down")
        assert thread.is_alive()
        dispatcher.stop()
        await asyncio.to_thread(thread.join, 30)
    assert not thread.is_alive(), "stop() ends run() even while the database is down"


def test_channels_are_checked_at_start_up() -> None:
    with pytest.raises(ValueError, match="unknown notification channels: sms"):
        channels_from_names(["log", "sms"])
    with pytest.raises(ValueError, match="NOTIFICATION_WEBHOOK_URL"):
        channels_from_names(["webhook"])
    with pytest.raises(ValueError, match="NOTIFICATION_WEBHOOK_SECRETS"):
        channels_from_names(["webhook"], webhook_url="http://127.0.0.1:9/hook")
    with pytest.raises(ValueError, match="whsec_"):
        channels_from_names(["webhook"], webhook_url="http://127.0.0.1:9/hook", webhook_secrets=["plain-secret"])

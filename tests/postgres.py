"""The test PostgreSQL (127.0.0.1:5432, database `test`, trust auth): a fresh schema per use."""

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from database import migrate, new_schema_name, throwaway_schema

__all__ = ["POSTGRES_URL", "fresh_schema_engine", "new_schema_name"]

POSTGRES_URL = os.environ.get(
    "DISPUTEFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def fresh_schema_engine(schema: str, *, migrated: bool = True) -> Iterator[Engine]:
    """An engine on a new schema, holding every table unless not `migrated`, dropped (CASCADE) afterwards."""
    with ExitStack() as scratch:
        try:
            engine = scratch.enter_context(throwaway_schema(POSTGRES_URL, schema))
        except OperationalError as error:
            pytest.fail(
                f"PostgreSQL at {POSTGRES_URL} is not reachable ({error.orig}). Start it, point "
                "DISPUTEFLOW_TEST_POSTGRES_URL elsewhere, or deselect these tests with -m 'not postgres'."
            )
        if migrated:
            migrate(engine)
        yield engine

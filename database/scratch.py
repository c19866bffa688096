"""Throwaway PostgreSQL schemas for the tests and the benchmarks: made fresh, dropped after."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

from database.engine import make_engine


def new_schema_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@contextmanager
def throwaway_schema(url: str, schema: str) -> Iterator[Engine]:
    """An engine on `schema`, created (empty) in the PostgreSQL at `url` and dropped (CASCADE) on exit."""
    admin = make_engine(url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except BaseException:
        admin.dispose()
        raise
    engine = make_engine(url, schema=schema)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

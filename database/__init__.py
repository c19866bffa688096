"""The SQLAlchemy engine (SQLite embedded default, PostgreSQL production) and the migrated schema."""

from database.engine import fetch, make_engine, reading, session
from database.schema import SchemaNotReady, migrate, open_database
from database.scratch import new_schema_name, throwaway_schema

__all__ = [
    "SchemaNotReady", "fetch", "make_engine", "migrate", "new_schema_name", "open_database", "reading", "session",
    "throwaway_schema",
]

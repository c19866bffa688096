"""The SQLAlchemy engine (SQLite embedded default, PostgreSQL production) and the migrated schema."""

from database.engine import fetch, make_engine, session
from database.schema import SchemaNotReady, migrate, open_database

__all__ = ["SchemaNotReady", "fetch", "make_engine", "migrate", "open_database", "session"]

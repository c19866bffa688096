"""The SQLAlchemy engine (SQLite embedded default, PostgreSQL production) and schema creation."""

from database.engine import DEFAULT_URL, create_schema, fetch, make_engine, session

__all__ = ["DEFAULT_URL", "create_schema", "fetch", "make_engine", "session"]

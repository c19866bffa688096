"""The SQLAlchemy engine: SQLite embedded by default, PostgreSQL in production.

SQLite notes. Python's sqlite3 driver (before 3.12's ``autocommit`` attribute) starts
transactions lazily and only for DML, so a read-then-write transaction begins as a
reader and has to upgrade its lock when it first writes; two such transactions then
wait on each other until one fails with "database is locked". We take transaction
control away from the driver (``isolation_level = None``) and emit ``BEGIN IMMEDIATE``
ourselves whenever SQLAlchemy begins a transaction, so every transaction takes the
write lock up front and writers queue behind each other (``busy_timeout``) instead of
deadlocking. This is the recipe in SQLAlchemy's SQLite dialect documentation ("Enabling
Non-Legacy SQLite Transactional Modes"). A session that only reads (``reading``) begins a
deferred transaction instead: under WAL it reads one snapshot beside the writers and never
queues for the write lock (it must not write: it could not take the lock it would need).

Writers of one engine also queue on a lock of their own (`_WriterQueue`) before asking SQLite:
SQLite's busy handler polls, sleeping up to 100 ms between tries, so with a dozen threads
queued for the write lock it lies idle between a commit and the next poll and a writer
can lose the race again and again (a burst of deadlines left 14 of 16 activity threads
asleep in ``BEGIN IMMEDIATE``, closings seconds late at p99). A Python lock hands over at the
release. Other processes still queue through ``busy_timeout``.
"""

import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel

SQLITE_BUSY_TIMEOUT_MS = 30_000

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


Row = TypeVar("Row", bound=SQLModel)

# The execution option `reading` sets: the SQLite engine then begins a deferred transaction.
_READ_ONLY = "disputeflow_read_only"


def make_engine(url: str, *, schema: str | None = None, echo: bool = False) -> Engine:
    """Create the engine for ``url``.

    ``sqlite:///path/to.db`` (the parent directory is created) or
    ``postgresql+psycopg://user@host/db`` (a bare ``postgresql://`` is taken to mean the
    psycopg 3 driver). ``schema`` is PostgreSQL only: it becomes the connection's
    ``search_path`` so every table lives in (and is looked up in) that schema; the
    schema itself must already exist.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if schema is not None:
            raise ValueError("schema= is only supported for PostgreSQL")
        return _sqlite_engine(url, parsed.database, echo=echo)
    if backend == "postgresql":
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        connect_args: dict[str, str] = {}
        if schema is not None:
            if not _SCHEMA_NAME.match(schema):
                raise ValueError(f"{schema!r} is not a plain PostgreSQL schema name")
            connect_args["options"] = f"-csearch_path={schema}"
        # As for SQLite below: no statement values in error text.
        return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args, echo=echo, hide_parameters=True)
    raise ValueError(f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: "
                     "use sqlite:///path or postgresql+psycopg://...")


class _WriterQueue:
    """The engine's writers, one at a time (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def connection_class(self) -> type[sqlite3.Connection]:
        queue = self._lock

        class QueuedConnection(sqlite3.Connection):
            """Holds the queue from its ``BEGIN IMMEDIATE`` until its transaction ends."""

            holds_queue = False

            def enter(self) -> None:
                # A writer that waits longer than SQLite would goes on without the queue, so a
                # thread that already holds it (a nested write) fails as it did before, not hangs.
                self.holds_queue = queue.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)

            def leave(self) -> None:
                if self.holds_queue:
                    self.holds_queue = False
                    queue.release()

            def commit(self) -> None:
                try:
                    super().commit()
                finally:
                    self.leave()

            def rollback(self) -> None:
                try:
                    super().rollback()
                finally:
                    self.leave()

            def close(self) -> None:
                try:
                    super().close()
                finally:
                    self.leave()

        return QueuedConnection


def _sqlite_engine(url: str, database: str | None, *, echo: bool) -> Engine:
    in_memory = not database or database == ":memory:" or database.startswith("file::memory:")
    if not in_memory and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        echo=echo,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                      "factory": _WriterQueue().connection_class()},
        # Database errors are logged (api/problems.py): their text must not carry the values
        # of the statement, which may be a party's personal data.
        hide_parameters=True,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _connection_record) -> None:  # noqa: ANN001
        # Stop the driver from emitting its own (deferred) BEGIN; see the module docstring.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # noqa: ANN001
        if connection.get_execution_options().get(_READ_ONLY):
            connection.exec_driver_sql("BEGIN")
            return
        writer = connection.connection.dbapi_connection
        writer.enter()
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            writer.leave()
            raise

    return engine


@contextmanager
def session(engine: Engine) -> Iterator[Session]:
    """One transaction: commits when the block ends, rolls back if it raises."""
    with Session(engine, expire_on_commit=False) as db, db.begin():
        yield db


@contextmanager
def reading(engine: Engine) -> Iterator[Session]:
    """A session that only reads, in one transaction rolled back at the end; on SQLite it takes
    no write lock (see the module docstring)."""
    with Session(engine) as db:
        db.connection(execution_options={_READ_ONLY: True})
        yield db


def fetch(engine: Engine, model: type[Row], key: str, missing: Callable[[], Exception]) -> Row:
    """The `model` row whose primary key is `key`; `missing()` is raised when there is none."""
    with reading(engine) as db:
        row = db.get(model, key)
    if row is None:
        raise missing()
    return row

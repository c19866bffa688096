"""The application's schema: Alembic migrations, run once by `disputeflow migrate`.

Nothing creates tables at start-up any more: the worker, the API, the dispatcher and the
commands open the database with `open_database`, which refuses one that is missing or not at
the code's revision, naming the command that fixes it. So processes never race to create
tables, and a deployment migrates in one step before it starts them.

A database an older (unversioned) install made with `create_all` has tables but no
`alembic_version`. `migrate` adopts it: it adds what that install lacked (tables added since,
the outbox's delivery columns), checks the result equals the baseline revision's tables,
stamps it with the baseline and upgrades as usual. Anything else it refuses unchanged.
"""

from functools import lru_cache
from pathlib import Path
from types import ModuleType

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Connection, DateTime, Engine, Integer, MetaData, String, inspect, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from database.engine import make_engine

BASELINE = "0001"
# Any constant: PostgreSQL holds this advisory lock while one `migrate` runs, so two never
# interleave (SQLite's BEGIN IMMEDIATE already serialises them).
_MIGRATION_LOCK = 0x6469_7370_7574_65  # "dispute"


class SchemaNotReady(Exception):
    """The database is missing or not at the code's revision; the message says what to run."""


def app_metadata() -> MetaData:
    """Every table of the application (the models' metadata, as migrations must leave it)."""
    # Importing a table module registers its tables on SQLModel.metadata.
    import api.idempotency  # noqa: F401
    import archive.models  # noqa: F401
    import casebook.models  # noqa: F401
    import complaints.service  # noqa: F401
    import console.models  # noqa: F401
    import evidence.store  # noqa: F401
    import ledger.models  # noqa: F401
    import notifications.models  # noqa: F401
    import orders.models  # noqa: F401
    import reporting.models  # noqa: F401

    return SQLModel.metadata


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    config.attributes["connection"] = connection
    return config


@lru_cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head() -> str:
    return _scripts().get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine) -> str:
    """Bring the database to the code's head revision (adopting an unversioned one first), in
    one transaction; say what was done."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        before = current_revision(connection)
        done = []
        if before is None and inspect(connection).get_table_names():
            done.append(f"{_adopt(connection)} as revision {BASELINE}")
            command.stamp(_config(connection), BASELINE)
            before = BASELINE
        command.upgrade(_config(connection), "head")
        target = head()
        if before != target:
            done.append(f"upgraded from {before or 'an empty database'} to {target}")
        elif not done:
            done.append(f"already at {target}")
    return "; ".join(done)


def schema_problem(engine: Engine) -> str | None:
    """Why the database cannot be used by this code as it is, or None when it is at head."""
    with engine.connect() as connection:
        current = current_revision(connection)
    if current == head():
        return None
    if current is None:
        return f"{_describe(engine)} has no schema revision"
    try:
        _scripts().get_revision(current)
    except Exception:  # noqa: BLE001 - alembic raises several kinds for an unknown id
        return f"{_describe(engine)} is at revision {current}, which this code does not know (a newer release?)"
    return f"{_describe(engine)} is at revision {current}; this code needs {head()}"


def open_database(url: str) -> Engine:
    """The engine on an existing database at the code's revision; raise SchemaNotReady otherwise.
    What the processes and the operators' commands use: only `migrate` creates a database."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not Path(parsed.database).exists():
            raise SchemaNotReady(f"no database at {parsed.database}: start the stack (`disputeflow up`) or "
                                 "create it with `disputeflow migrate` (paths resolve from DISPUTEFLOW_HOME)")
    engine = make_engine(url)
    problem = schema_problem(engine)
    if problem is not None:
        engine.dispose()
        raise SchemaNotReady(f"{problem}: run `disputeflow migrate`")
    return engine


def _describe(engine: Engine) -> str:
    return f"the database {engine.url.render_as_string(hide_password=True)}"


def _baseline() -> ModuleType:
    return _scripts().get_revision(BASELINE).module


def _adopt(connection: Connection) -> str:
    """Make a database an unversioned release's `create_all` left into the baseline's tables."""
    baseline: MetaData = _baseline().TABLES
    had = set(inspect(connection).get_table_names())
    unknown = had - set(baseline.tables) - {"alembic_version"}
    if unknown:
        raise SchemaNotReady(f"the database holds tables disputeflow never made ({', '.join(sorted(unknown))}); "
                             "point DISPUTEFLOW_DATABASE_URL at disputeflow's own database")
    baseline.create_all(connection)  # only the tables that are missing, with their indexes
    added = sorted(set(baseline.tables) - had)
    outbox_columns = {c["name"] for c in inspect(connection).get_columns("notification_outbox")}
    if "status" not in outbox_columns:
        _add_outbox_delivery_state(connection)
        added.append("the outbox's delivery columns")
    differences = compare_metadata(MigrationContext.configure(connection), baseline)
    if differences:
        raise SchemaNotReady("the database's tables differ from every disputeflow release, so it was left "
                             f"unchanged: {differences}")
    return f"adopted an unversioned database (added {', '.join(added) or 'nothing'})"


def _add_outbox_delivery_state(connection: Connection) -> None:
    """The outbox before the dispatcher: the notify activity itself delivered each message to
    every channel before it completed, so every row there is delivered and stays so."""
    operations = Operations(MigrationContext.configure(connection))
    with operations.batch_alter_table("notification_outbox") as batch:
        batch.add_column(Column("status", String(length=10), nullable=True))
        batch.add_column(Column("attempts", Integer(), nullable=True))
        batch.add_column(Column("next_attempt_at", DateTime(timezone=True), nullable=True))
        batch.add_column(Column("last_attempt_at", DateTime(timezone=True), nullable=True))
        batch.add_column(Column("last_error", String(length=500), nullable=True))
        batch.add_column(Column("lease_owner", String(length=100), nullable=True))
        batch.add_column(Column("lease_until", DateTime(timezone=True), nullable=True))
    connection.execute(text("UPDATE notification_outbox SET status = 'delivered', attempts = 0, "
                            "next_attempt_at = created_at"))
    with operations.batch_alter_table("notification_outbox") as batch:
        for name in ("status", "attempts", "next_attempt_at"):
            batch.alter_column(name, nullable=False)
        batch.create_index("ix_notification_outbox_due", ["status", "next_attempt_at"])

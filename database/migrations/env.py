"""Alembic's environment: `disputeflow migrate` hands it a connection inside its transaction;
the `alembic` command (developers, see DEVELOPERS.md) connects to the configured database."""

from alembic import context
from sqlalchemy import Connection, String, TypeDecorator

from database.schema import app_metadata


def render_item(kind: str, obj: object, autogen_context: object) -> str | bool:
    """Write columns in plain SQLAlchemy types, so a revision never imports the models (which
    change after it) nor sqlmodel: a type decorator as the type it stores, an AutoString as String."""
    if kind != "type":
        return False
    stored = obj.impl_instance if isinstance(obj, TypeDecorator) else obj
    if isinstance(stored, String) and not type(stored).__module__.startswith("sqlalchemy"):
        return f"sa.String(length={stored.length})"
    return f"sa.{stored!r}" if stored is not obj else False


def run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=app_metadata(), render_item=render_item,
                      render_as_batch=True)  # batch operations: SQLite cannot alter a column in place
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("disputeflow's migrations run online only: `disputeflow migrate`")
given = context.config.attributes.get("connection")
if given is not None:
    run(given)
else:
    from config.settings import get_settings
    from database.engine import make_engine

    with make_engine(get_settings().database_url).begin() as connection:
        run(connection)

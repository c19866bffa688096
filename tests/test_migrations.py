"""The schema comes from the migrations alone: an empty SQLite or PostgreSQL database upgraded
to head matches the models exactly, an older unversioned install is adopted, and the processes
refuse a database that was not migrated."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from database import SchemaNotReady, make_engine, migrate, open_database
from database.schema import BASELINE, _baseline, _scripts, app_metadata, current_revision, head
from devstack import cli
from tests.postgres import fresh_schema_engine, new_schema_name

# The first release's tables, before the outbox had a dispatcher's delivery state.
FIRST_RELEASE = ("idempotency_keys", "ledger_accounts", "ledger_transfers", "notification_outbox", "orders")
DELIVERY_STATE = ("status", "attempts", "next_attempt_at", "last_attempt_at", "last_error", "lease_owner", "lease_until")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path}/empty.db")
        yield engine
        engine.dispose()
    else:
        with fresh_schema_engine(new_schema_name("df_migrate"), migrated=False) as engine:
            yield engine


def differences(engine: Engine) -> list:
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), app_metadata())


def revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return current_revision(connection)


def test_an_empty_database_upgraded_to_head_matches_the_models(empty_engine: Engine) -> None:
    assert migrate(empty_engine) == f"upgraded from an empty database to {head()}"
    assert differences(empty_engine) == [], "a model changed without a revision: see DEVELOPERS.md"
    assert revision(empty_engine) == head()
    assert migrate(empty_engine) == f"already at {head()}"


def test_the_revisions_form_one_line() -> None:
    """Two branches each adding a revision leave two heads: merge them (DEVELOPERS.md)."""
    assert len(_scripts().get_heads()) == 1, _scripts().get_heads()


def first_release_tables() -> sa.MetaData:
    """The tables the first release's `create_all` made: the baseline's, less what came later."""
    tables = sa.MetaData()
    baseline = _baseline().TABLES.tables
    for name in FIRST_RELEASE:
        if name != "notification_outbox":
            baseline[name].to_metadata(tables)
    sa.Table("notification_outbox", tables, *[column._copy() for column in baseline["notification_outbox"].columns
                                              if column.name not in DELIVERY_STATE])
    return tables


def test_an_older_unversioned_install_is_adopted_and_its_notifications_are_not_sent_again(
        empty_engine: Engine) -> None:
    old = first_release_tables()
    old.create_all(empty_engine)
    written = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
    with empty_engine.begin() as connection:
        connection.execute(old.tables["orders"].insert(), [dict(
            id="ORD-OLD-1", buyer_id="alice", seller_id="acme", amount=19_900, currency="CNY", shipped=True,
            completed_at=None, open_dispute_id=None, dispute_count=1, created_at=written)])
        connection.execute(old.tables["notification_outbox"].insert(), [dict(
            id="dsp-ORD-OLD-1-1-e1-seller", dispute_id="dsp-ORD-OLD-1-1", recipient_role="seller",
            recipient_id="acme", kind="dispute_opened", subject="A dispute was opened", data={},
            delivered=["log"], created_at=written)])

    done = migrate(empty_engine)
    assert done.startswith("adopted an unversioned database (added archive_legal_holds, archive_records, "
                           "evidence_bodies, open_cases, order_closed_disputes, the outbox's delivery columns) "
                           f"as revision {BASELINE}"), done
    assert differences(empty_engine) == []
    assert revision(empty_engine) == head()
    with empty_engine.connect() as connection:
        outbox = connection.execute(sa.text(
            "SELECT status, attempts, next_attempt_at, delivered FROM notification_outbox")).one()
        orders = connection.execute(sa.text("SELECT id, amount FROM orders")).all()
    # The first release delivered every message before its activity completed: none is due again.
    assert (outbox.status, outbox.attempts) == ("delivered", 0)
    assert outbox.next_attempt_at is not None
    assert orders == [("ORD-OLD-1", 19_900)]


def test_a_database_of_something_else_is_refused_unchanged(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/other.db")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE customers (id INTEGER PRIMARY KEY)"))
    with pytest.raises(SchemaNotReady, match="tables disputeflow never made \\(customers\\)"):
        migrate(engine)
    assert sa.inspect(engine).get_table_names() == ["customers"]


def test_the_processes_refuse_a_database_that_was_not_migrated(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.db"
    with pytest.raises(SchemaNotReady, match="no database at .*nothing.db.*disputeflow migrate"):
        open_database(f"sqlite:///{missing}")
    assert not missing.exists(), "looking for the database does not create it"
    unversioned = make_engine(f"sqlite:///{tmp_path}/old.db")
    first_release_tables().create_all(unversioned)
    with pytest.raises(SchemaNotReady, match="has no schema revision: run `disputeflow migrate`"):
        open_database(str(unversioned.url))


def test_the_command_migrates_and_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture) -> None:
    from config.settings import get_settings

    monkeypatch.setenv("DISPUTEFLOW_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert cli.main(["migrate", "--check"]) == 1
        assert f"no database at {tmp_path}/.data/disputeflow.db" in capsys.readouterr().out
        assert not (tmp_path / ".data" / "disputeflow.db").exists()
        assert cli.main(["migrate"]) == 0
        assert f"upgraded from an empty database to {head()}" in capsys.readouterr().out
        assert cli.main(["migrate", "--check"]) == 0
        assert "at head" in capsys.readouterr().out
        monkeypatch.setenv("DISPUTEFLOW_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/nothing")
        get_settings.cache_clear()
        assert cli.main(["migrate"]) == 2
        assert "cannot reach postgresql+psycopg://nobody@127.0.0.1:1/nothing" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()

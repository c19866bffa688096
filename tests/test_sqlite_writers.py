"""SQLite writers of one engine queue on a lock of their own before `BEGIN IMMEDIATE`
(database/engine.py): every write still commits, and however a transaction ends, the
next writer gets in."""

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from database import make_engine


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'writers.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE rows (writer INTEGER, n INTEGER)"))
    return engine


def rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM rows")).scalar_one()


def write_soon(engine: Engine) -> None:
    """One write from another thread, which must not wait on a queue nobody releases."""
    def write() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO rows VALUES (-1, -1)"))

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_concurrent_writers_all_commit(engine: Engine) -> None:
    def writer(number: int) -> None:
        for n in range(25):
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO rows VALUES (:w, :n)"), {"w": number, "n": n})

    threads = [threading.Thread(target=writer, args=(number,)) for number in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert rows(engine) == 300


def test_the_queue_is_released_after_a_rollback_and_an_invalidated_connection(engine: Engine) -> None:
    with pytest.raises(RuntimeError), engine.begin() as connection:
        connection.execute(text("INSERT INTO rows VALUES (0, 0)"))
        raise RuntimeError("the transaction fails")
    write_soon(engine)
    connection = engine.connect()
    connection.begin()
    connection.execute(text("INSERT INTO rows VALUES (0, 1)"))
    connection.invalidate()  # closes the driver's connection mid-transaction
    write_soon(engine)
    assert rows(engine) == 2

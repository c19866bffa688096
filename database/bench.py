"""What the benchmark scripts share: timing a call, counting an engine's transactions, and running
on SQLite and on a throwaway PostgreSQL schema."""

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import astuple, dataclass

from sqlalchemy import Engine, event

from database.engine import make_engine
from database.scratch import new_schema_name, throwaway_schema


def timed(call: Callable[[], object], rounds: int) -> tuple[float, float]:
    """The median and the slowest of `rounds` calls, in milliseconds."""
    call()  # warm caches and the connection pool
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds) * 1000, max(seconds) * 1000


def parser(description: str, *, cases: int, rounds: int) -> argparse.ArgumentParser:
    """The options every benchmark takes; a benchmark may add its own."""
    options = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--cases", type=int, default=cases)
    options.add_argument("--rounds", type=int, default=rounds)
    options.add_argument("--postgres", metavar="URL", help="also on PostgreSQL, e.g. postgresql://postgres@127.0.0.1/test")
    return options


def on_each_database(name: str, postgres_url: str | None, bench: Callable[[str, Engine], None]) -> None:
    """Run `bench(label, engine)` on a temporary SQLite file, then (with a URL) on a throwaway PostgreSQL schema."""
    with tempfile.TemporaryDirectory() as directory:
        engine = make_engine(f"sqlite:///{directory}/{name}.db")
        bench("SQLite", engine)
        engine.dispose()
    if postgres_url:
        with throwaway_schema(postgres_url, new_schema_name(f"bench_{name}")) as engine:
            bench("PostgreSQL", engine)


@dataclass
class Transactions:
    """What one engine did while counted: transactions begun (and, on SQLite, how many of them
    took the write lock up front), commits, and statements other than the BEGINs."""

    begun: int = 0
    write_locked: int = 0
    commits: int = 0
    statements: int = 0

    def per(self, calls: int) -> "Transactions":
        return Transactions(*(round(value / calls, 2) for value in astuple(self)))


@contextmanager
def counted(engine: Engine) -> Iterator[Transactions]:
    """Count what `engine` does inside the block (every thread's sessions on it)."""
    seen = Transactions()

    def begun(_connection) -> None:  # noqa: ANN001
        seen.begun += 1

    def committed(_connection) -> None:  # noqa: ANN001
        seen.commits += 1

    def executed(_connection, _cursor, statement: str, *_rest) -> None:  # noqa: ANN001
        if statement == "BEGIN IMMEDIATE":
            seen.write_locked += 1
        elif statement != "BEGIN":
            seen.statements += 1

    listeners = (("begin", begun), ("commit", committed), ("before_cursor_execute", executed))
    for name, listener in listeners:
        event.listen(engine, name, listener)
    try:
        yield seen
    finally:
        for name, listener in listeners:
            event.remove(engine, name, listener)

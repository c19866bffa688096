"""The ledger's write rate against a plain one-row INSERT+COMMIT into a table of the same shape.

    .venv/bin/python -m bench.ledger --postgres postgresql://postgres@127.0.0.1/test

On a temporary SQLite file and (with --postgres) a throwaway PostgreSQL schema, from 1 and from
8 threads: single transfers (one `create_transfers` call each) and two-phase transfers (a
pending then its post, two calls), against `INSERT` + `COMMIT` of one row into a copy of
`ledger_transfers`' columns and indexes (without the foreign keys) through the same engine.
Each thread moves money between its own two accounts, so threads meet only in the database.
Rounds are interleaved (plain, single, two-phase, two-phase, single, plain) so the machine's
noise falls on every side alike; the ratios are the figures to compare, not the rates.
"""

import argparse
import itertools
import threading
import time
import uuid
from collections.abc import Callable

from sqlalchemy import Column, Engine, Index, MetaData, Table, insert

from database import migrate
from database.bench import on_each_database
from ledger import AccountKind, Ledger, TransferPhase, TransferRequest
from ledger.models import LedgerTransfer, utcnow

CURRENCY = "CNY"


def plain_table(metadata: MetaData) -> Table:
    """`ledger_transfers`' columns, keys and indexes, without its foreign keys and checks."""
    source = LedgerTransfer.__table__
    columns = [
        Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable, unique=bool(c.unique))
        for c in source.columns
    ]
    table = Table("bench_plain_transfers", metadata, *columns)
    for index in source.indexes:
        Index(f"bench_plain_{index.name}", *(table.c[c.name] for c in index.columns))
    return table


class Workload:
    """One thread's operations; each call does one unit of work (one row, one transfer)."""

    def __init__(self, engine: Engine, ledger: Ledger, plain: Table, thread: int) -> None:
        self.engine, self.ledger, self.plain = engine, ledger, plain
        # Sellers and buyers may go negative: a transfer is never refused for funds.
        self.debit = ledger.open_account(AccountKind.seller, f"bench-{thread}", CURRENCY).id
        self.credit = ledger.open_account(AccountKind.buyer, f"bench-{thread}", CURRENCY).id

    def _fields(self) -> dict[str, object]:
        dispute = uuid.uuid4().hex
        return {"debit_account_id": self.debit, "credit_account_id": self.credit, "amount": 1,
                "currency": CURRENCY, "code": "bench", "dispute_id": dispute, "step": "bench"}

    def plain_insert(self, seq: Callable[[], int]) -> None:
        fields = self._fields()
        with self.engine.begin() as connection:
            connection.execute(insert(self.plain), {
                "id": f"{fields['dispute_id']}-plain", "seq": seq(), "phase": "single",
                "created_at": utcnow(), **fields})

    def single(self) -> None:
        fields = self._fields()
        self.ledger.create_transfers([TransferRequest(id=f"{fields['dispute_id']}-single", **fields)])

    def two_phase(self) -> None:
        fields = self._fields()
        hold = f"{fields['dispute_id']}-hold"
        self.ledger.create_transfers([TransferRequest(id=hold, phase=TransferPhase.pending, **fields)])
        self.ledger.create_transfers([TransferRequest(id=f"{hold}-post", phase=TransferPhase.post_pending,
                                                      pending_id=hold)])


def run(work: list[Callable[[], None]], seconds: float) -> tuple[int, float, float]:
    """Every thread calls its `work` for `seconds`: (calls done, wall seconds, this process's CPU seconds)."""
    done = [0] * len(work)
    stop = threading.Event()
    start = threading.Barrier(len(work) + 1)

    def loop(index: int) -> None:
        call = work[index]
        start.wait()
        while not stop.is_set():
            call()
            done[index] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(len(work))]
    for thread in threads:
        thread.start()
    start.wait()
    began, cpu = time.perf_counter(), time.process_time()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return sum(done), time.perf_counter() - began, time.process_time() - cpu


def bench(seconds: float, thread_counts: list[int]) -> Callable[[str, Engine], None]:
    def on(label: str, engine: Engine) -> None:
        migrate(engine)
        metadata = MetaData()
        plain = plain_table(metadata)
        metadata.create_all(engine)
        ledger = Ledger(engine)
        counter = itertools.count(1)
        seq = counter.__next__  # thread safe under the GIL
        for threads in thread_counts:
            loads = [Workload(engine, ledger, plain, thread) for thread in range(threads)]
            sides: dict[str, Callable[[Workload], Callable[[], None]]] = {
                "plain INSERT": lambda w: lambda: w.plain_insert(seq),
                "single": lambda w: w.single,
                "two-phase": lambda w: w.two_phase,
            }
            for name in sides:  # warm every path (statement caches, the pool)
                run([sides[name](w) for w in loads], 0.3)
            totals = {name: [0, 0.0, 0.0] for name in sides}
            names = list(sides)
            for name in names + names[::-1]:  # A B C C B A
                calls, wall, cpu = run([sides[name](w) for w in loads], seconds)
                total = totals[name]
                total[0] += calls
                total[1] += wall
                total[2] += cpu
            plain_rate = totals["plain INSERT"][0] / totals["plain INSERT"][1]
            figures = []
            for name, (calls, wall, cpu) in totals.items():
                rate = calls / wall
                ratio = "" if name == "plain INSERT" else f" = {rate / plain_rate:.2f}x"
                figures.append(f"{name} {rate:,.0f}/s{ratio} ({cpu / calls * 1000:.2f} CPU-ms each)")
            print(f"{label}, {threads} thread{'s' * (threads > 1)}: " + "; ".join(figures), flush=True)

    return on


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--postgres", metavar="URL", help="also on PostgreSQL, e.g. postgresql://postgres@127.0.0.1/test")
    options.add_argument("--seconds", type=float, default=3.0, help="each of the six interleaved rounds")
    options.add_argument("--threads", default="1,8", help="comma-separated thread counts")
    args = options.parse_args()
    on_each_database("ledger", args.postgres, bench(args.seconds, [int(n) for n in args.threads.split(",")]))


if __name__ == "__main__":
    main()

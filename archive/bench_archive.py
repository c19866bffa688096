"""How fast the archive writes and replays: `python -m archive.bench_archive [--cases N]
[--archive LOCATION] [--database URL]`.

Archives N synthetic cases (default 10,000: the committed histories in tests/histories,
each under new dispute ids) as the system does, a final part and a history part each,
into a fresh archive (by default the database store on a SQLite file in a temporary
directory); verifies the chain; then replays every case's history read back from the
archive through one DisputeReplayer, as a deployment gate replaying last year's cases
would. Prints cases/s for each phase.
"""

import argparse
import asyncio
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from temporalio.client import WorkflowHistory

from archive import bundle
from archive.service import Archive
from archive.stores import open_store
from audit import history as histories
from audit.replay import DisputeReplayer
from database import make_engine, migrate


def _line(label: str, count: int, seconds: float) -> str:
    return f"{label:<40} {count:>6} cases {seconds:>8.2f}s  {count / seconds:>8.1f} cases/s"


async def bench(cases: int, location: str, database_url: str, directory: Path, replay: bool) -> None:
    recorded = [histories.read_file(path) for path in histories.history_files([directory])]
    finals = [bundle.final_from_history(history, []) for history in recorded]
    engine = make_engine(database_url)
    migrate(engine)
    archive = Archive(open_store(location, engine), engine, timedelta(days=3 * 365 + 1))
    print(f"{cases} cases from {len(recorded)} recorded histories "
          f"({sum(len(h.events) for h in recorded) / len(recorded):.0f} events each on average) into {location}")

    ids = [f"dsp-BENCH-{n}-1" for n in range(cases)]
    started = time.perf_counter()
    for n, dispute_id in enumerate(ids):
        history, final = recorded[n % len(recorded)], finals[n % len(recorded)]
        assert final is not None
        view = final.view.model_copy(update={"dispute_id": dispute_id})
        archive.archive_final(final.model_copy(update={"view": view}))
        archive.archive_history(WorkflowHistory(dispute_id, history.events), run_id=f"run-{n}")
    print(_line("archived (final + history parts)", cases, time.perf_counter() - started))

    started = time.perf_counter()
    verification = archive.verify()
    assert verification.ok and verification.records == 2 * cases, verification
    print(_line("chain verified", cases, time.perf_counter() - started))

    if not replay:
        return

    async def from_archive() -> AsyncIterator[WorkflowHistory]:
        for dispute_id in ids:
            case = await asyncio.to_thread(archive.case, dispute_id)
            yield case.histories[-1]

    replayer = DisputeReplayer()
    started = time.perf_counter()
    report = await replayer.replay(from_archive())
    assert report.ok and report.replayed == cases, [o for o in report.outcomes if not o.ok][:3]
    print(_line("replayed from the archive", cases, time.perf_counter() - started))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m archive.bench_archive", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--archive", default="database", help="database, dir:/path (dir:TMP: a temporary directory) or s3://bucket/prefix")
    parser.add_argument("--database", help="the database URL (default: SQLite in a temporary directory)")
    parser.add_argument("--histories", type=Path, default=Path("tests/histories"))
    parser.add_argument("--no-replay", dest="replay", action="store_false", help="only write and verify")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        location = args.archive.replace("dir:TMP", f"dir:{scratch}/archive")
        asyncio.run(bench(args.cases, location, args.database or f"sqlite:///{scratch}/bench.db", args.histories, args.replay))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How fast replay runs: `python -m audit.bench_replay [DIR] [--rounds N]`.

Replays the exported histories in DIR (default tests/histories) N times over, streamed
through one reusable DisputeReplayer as `disputeflow audit replay` does, then the same
histories with a fresh Replayer per history (what a naive loop over
`Replayer.replay_workflow` costs), and builds their trails. Prints histories/s and
events/s for each.
"""

import argparse
import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from audit import history as histories
from audit.replay import DisputeReplayer, _quiet_runtime, default_workflows
from audit.trail import build_trail
from config.temporal import data_converter


async def _repeat(loaded: list[WorkflowHistory], rounds: int) -> AsyncIterator[WorkflowHistory]:
    for _ in range(rounds):
        for history in loaded:
            yield history


def _line(label: str, count: int, events: int, seconds: float) -> str:
    return (f"{label:<44} {count:>6} histories {seconds:>7.2f}s  {count / seconds:>8.1f} histories/s  "
            f"{events / seconds:>9.0f} events/s")


async def bench(directory: Path, rounds: int) -> None:
    loaded = [histories.read_file(path) for path in histories.history_files([directory])]
    if not loaded:
        raise SystemExit(f"no *.json histories in {directory}")
    events = sum(len(h.events) for h in loaded)
    print(f"{len(loaded)} histories, {events} events ({events / len(loaded):.0f} per history), {rounds} rounds")

    replayer = DisputeReplayer()
    await replayer.replay(_repeat(loaded, 1))  # warm the sandbox's module cache
    started = time.perf_counter()
    report = await replayer.replay(_repeat(loaded, rounds))
    seconds = time.perf_counter() - started
    assert report.ok, [o for o in report.outcomes if not o.ok]
    print(_line("one reusable replayer, streamed", report.total, events * rounds, seconds))

    count = len(loaded) * min(rounds, 3)
    started = time.perf_counter()
    async for history in _repeat(loaded, min(rounds, 3)):
        fresh = Replayer(workflows=default_workflows(), data_converter=data_converter(), runtime=_quiet_runtime())
        await fresh.replay_workflow(history)
    seconds = time.perf_counter() - started
    print(_line("a fresh Replayer per history", count, events * min(rounds, 3), seconds))

    started = time.perf_counter()
    for _ in range(rounds):
        for history in loaded:
            build_trail(history)
    seconds = time.perf_counter() - started
    print(_line("audit trail built from the history", len(loaded) * rounds, events * rounds, seconds))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audit.bench_replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, nargs="?", default=Path("tests/histories"))
    parser.add_argument("--rounds", type=int, default=20, help="how many times to replay the whole set")
    args = parser.parse_args(argv)
    asyncio.run(bench(args.directory, args.rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

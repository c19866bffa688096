"""How fast replay runs: `python -m bench.replay [DIR ...] [--rounds N]`.

Replays the committed histories (default tests/histories and tests/histories/complaints)
N times over through the product's replay (`audit.replay.DisputeReplayer`, what
`disputeflow audit replay` runs) and through a plain `temporalio.worker.Replayer` of the
same workflows and data converter, in interleaved rounds (A B B A), and prints
histories/s, events/s and CPU-ms per history of each, and their ratios (the target is
>= 0.9x).
"""

import argparse
import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from audit import history as histories
from audit.replay import DisputeReplayer, default_workflows
from config.temporal import data_converter

DEFAULT_DIRECTORIES = [Path("tests/histories"), Path("tests/histories/complaints")]


async def _repeat(loaded: list[WorkflowHistory], rounds: int) -> AsyncIterator[WorkflowHistory]:
    for _ in range(rounds):
        for history in loaded:
            yield history


def _product(loaded: list[WorkflowHistory], rounds: int) -> Callable[[], Awaitable[None]]:
    replayer = DisputeReplayer()

    async def run() -> None:
        report = await replayer.replay(_repeat(loaded, rounds))
        assert report.ok, [o for o in report.outcomes if not o.ok]

    return run


def _plain(loaded: list[WorkflowHistory], rounds: int) -> Callable[[], Awaitable[None]]:
    replayer = Replayer(workflows=default_workflows(), data_converter=data_converter())

    async def run() -> None:
        results = await replayer.replay_workflows(_repeat(loaded, rounds), raise_on_replay_failure=False)
        assert not results.replay_failures, results.replay_failures

    return run


async def bench(directories: list[Path], rounds: int) -> None:
    loaded = [run for path in histories.history_files(directories) for run in histories.read_runs(path)]
    if not loaded:
        raise SystemExit(f"no *.json histories in {', '.join(map(str, directories))}")
    events = sum(len(h.events) for h in loaded)
    print(f"{len(loaded)} histories, {events} events ({events / len(loaded):.0f} per history), "
          f"{rounds} rounds of each, interleaved A B B A")
    sides = {"product (audit.replay.DisputeReplayer)": _product(loaded, rounds),
             "plain temporalio Replayer": _plain(loaded, rounds)}
    for run in sides.values():
        await run()  # warm each replayer's sandbox module cache
    seconds = dict.fromkeys(sides, 0.0)
    cpu = dict.fromkeys(sides, 0.0)
    for label in [*sides, *reversed(sides)]:
        started, cpu_started = time.perf_counter(), time.process_time()
        await sides[label]()
        seconds[label] += time.perf_counter() - started
        cpu[label] += time.process_time() - cpu_started
    count, total_events = len(loaded) * rounds * 2, events * rounds * 2
    for label, spent in seconds.items():
        print(f"{label:<40} {count:>6} histories {spent:>7.2f}s  {count / spent:>8.1f} histories/s  "
              f"{total_events / spent:>9.0f} events/s  {1000 * cpu[label] / count:6.1f} CPU-ms per history")
    (product, plain), (product_cpu, plain_cpu) = seconds.values(), cpu.values()
    # CPU time is what a noisy machine disturbs least; the wall-clock rate is what a user waits.
    print(f"ratio product/plain: {plain / product:.2f}x by rate, {plain_cpu / product_cpu:.2f}x by CPU "
          f"(target >= 0.9x)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("directories", type=Path, nargs="*", default=DEFAULT_DIRECTORIES)
    parser.add_argument("--rounds", type=int, default=5, help="how many times each side replays the whole set per turn")
    args = parser.parse_args(argv)
    asyncio.run(bench(args.directories, args.rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What a new workflow costs the worker: `python -m bench.sandbox [--cases N] [--rounds R]`.

The workflow sandbox loads the workflow's module afresh for every case a worker starts, and
for every case it rebuilds from history after the case left its cache. This replays a short
committed history (a seller-silence lapse, the case bench/burst.py runs) N times in child
processes, A B B A: with the modules' bytecode compiled beforehand, and from source (what
PYTHONDONTWRITEBYTECODE=1 leaves when nothing compiled the code). Each child reads the
project's bytecode from its own `sys.pycache_prefix` directory, set once it has started, so
the checkout's __pycache__ is never used.
Prints the process CPU per replayed case (a rebuild from history) and the ratio.
"""

import argparse
import asyncio
import compileall
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

HISTORY = Path("tests/histories/timer_seller_silence.json")
PACKAGES = ("workflows", "complaints")


def _child(cases: int, prefix: str) -> None:
    from audit import history as histories
    from audit.replay import DisputeReplayer

    sys.dont_write_bytecode = True
    sys.pycache_prefix = prefix
    loaded = histories.read_file(HISTORY)
    replayer = DisputeReplayer()

    async def repeat(count: int) -> AsyncIterator:
        for _ in range(count):
            yield loaded

    async def run() -> float:
        await replayer.replay(repeat(1))  # the replayer's own start, once
        started = time.process_time()
        report = await replayer.replay(repeat(cases))
        assert report.ok, report.outcomes[0]
        return time.process_time() - started

    print(asyncio.run(run()))


def _run(cases: int, prefix: Path) -> float:
    done = subprocess.run([sys.executable, "-m", "bench.sandbox", "--child", str(cases), "--prefix", str(prefix)],
                          check=True, capture_output=True, text=True)
    return float(done.stdout.split()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sandbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=200, help="replays per child process")
    parser.add_argument("--rounds", type=int, default=2, help="A B B A rounds")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.prefix)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as scratch:
        compiled, source = Path(scratch) / "compiled", Path(scratch) / "source"
        sys.pycache_prefix = str(compiled)
        for package in PACKAGES:
            compileall.compile_dir(package, quiet=1)
        prefixes = {"bytecode compiled beforehand": compiled, "compiled from source": source}
        spent = dict.fromkeys(prefixes, 0.0)
        for _ in range(args.rounds):
            for label in [*prefixes, *reversed(prefixes)]:
                spent[label] += _run(args.cases, prefixes[label])
    count = args.cases * 2 * args.rounds
    for label, seconds in spent.items():
        print(f"{label:<30} {1000 * seconds / count:6.2f} CPU-ms per new workflow ({count} replays of {HISTORY.name})")
    compiled_ms, source_ms = (1000 * s / count for s in spent.values())
    print(f"compiling from source costs {source_ms - compiled_ms:.2f} ms more per workflow "
          f"({source_ms / compiled_ms:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The end-to-end benchmark (bench/e2e.py) runs at tiny sizes on SQLite and prints every figure:
its own Temporal servers, the product's worker and API and the bare worker as processes."""

import re
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def test_the_e2e_benchmark_prints_its_figures() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "bench.e2e", "--clients", "2", "--disputes", "2", "--histories", "2", "--no-http", "--warmup", "0"],
        cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-3000:]
    out = finished.stdout
    assert "end-to-end disputes on SQLite, 2 concurrent clients, 4 disputes per side over 2 rounds" in out
    for side in ("product", "bare"):
        assert re.search(rf"{side}: +\d+\.\d\d disputes/s \(rounds: [\d.]+, [\d.]+\); open p50/p95/p99 \d+/\d+/\d+ ms; "
                         r"dispute p50/p95/p99 \d+/\d+/\d+ ms", out), out
    assert re.search(r"CPU-ms per dispute: worker [\d.]+, temporal [\d.]+, api [\d.]+; per dispute: [\d.]+ history "
                     r"events, [\d,]+ payload bytes", out), out
    # The bare side's shape, frozen (bench/bare/__init__.py); the product's may change.
    assert "8 activities (archive_final_case 1, freeze_escrow 1, notify 4, release_order 1, settle_dispute 1)" in out
    assert re.search(r"ratios product/bare: throughput [\d.]+x \(target >= 0.9x: (met|MISSED)\); payload bytes "
                     r"[\d.]+x \(target <= 1.2x: (met|MISSED)\)", out), out
    assert re.search(r"CPU per dispute, all processes: product [\d.]+ ms, bare [\d.]+ ms: CPU-bound throughput "
                     r"[\d.]+x", out), out

"""`disputeflow --help` and a usage error answer without loading a subsystem: building the
parser imports only the subcommands' parser parts (see devstack.cli)."""

import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).parent.parent
# What a command loads when it runs; the parser of every command needs none of them.
HEAVY = ["sqlalchemy", "sqlmodel", "alembic", "temporalio", "fastapi", "opentelemetry", "workflows", "tqdm"]


def test_the_parser_loads_no_subsystem() -> None:
    probe = ("import sys\nfrom devstack.cli import exit_status\n"
             "assert exit_status(sys.argv[1:]) == 2\n"  # a usage error: the whole parser was built
             f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    shown = subprocess.run([sys.executable, "-c", probe, "report", "kpis", "--by", "nobody"], cwd=PROJECT,
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "invalid choice: 'nobody'" in shown.stderr
    assert shown.stdout.strip() == "[]"

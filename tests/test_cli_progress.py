"""Long CLI work shows a progress bar with the time left on a terminal, and plain lines (or only
the failures, with --json) anywhere else."""

import asyncio
import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from config.temporal import Visibility
from database import make_engine, migrate
from devstack import cli
from policy import versions as policy_versions
from tests.support import Stack, eventually
from workflows.dispute import DisputeWorkflow

HISTORIES = Path(__file__).parent / "histories"
DISPUTEFLOW = str(Path(sys.executable).parent / "disputeflow")
COMMITTED = len(list(HISTORIES.glob("*.json")))


def _on_a_terminal(*argv: str, env: dict[str, str] | None = None) -> str:
    """`disputeflow argv` with its standard error on a pseudo-terminal: what it shows there."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal's size
    process = subprocess.Popen([DISPUTEFLOW, *argv], stdin=subprocess.DEVNULL, env=os.environ | (env or {}),
                               stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the command is done
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert process.wait(timeout=120) == 0
    return shown.decode(errors="replace")


def test_a_terminal_shows_a_bar_with_the_time_left() -> None:
    shown = _on_a_terminal("audit", "replay", "--histories", str(HISTORIES))
    final = shown.rstrip().split("\r")[-1]
    assert f"{COMMITTED}/{COMMITTED}" in final and "histories" in final, shown
    assert "<00:00" in final, f"no time-left estimate in {final!r}"
    assert "[1/" not in shown, "a terminal gets the bar, not a line per history"


def test_elsewhere_a_line_per_history_or_only_failures_with_json() -> None:
    lines = subprocess.run([DISPUTEFLOW, "audit", "replay", "--histories", str(HISTORIES)], capture_output=True,
                           text=True, timeout=120)
    assert lines.returncode == 0
    assert lines.stderr.count(" ok\n") == COMMITTED and "\r" not in lines.stderr
    quiet = subprocess.run([DISPUTEFLOW, "audit", "replay", "--histories", str(HISTORIES), "--json"],
                           capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert json.loads(quiet.stdout)["replayed"] == COMMITTED


async def test_exporting_many_cases_writes_one_file_each(stack: Stack, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    ids = [(await stack.open_dispute(await stack.register_order()))["dispute_id"] for _ in range(2)]
    client = stack.services.temporal
    connection = ["--address", client.service_client.config.target_host, "--namespace", client.namespace]
    out = tmp_path / "exports"
    assert await asyncio.to_thread(cli.main, ["audit", "export", *ids, "-o", str(out), *connection]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([*(f"{i}.json" for i in ids), "policies"])
    # Beside them, the body of the shipped policy version both cases name by ref, for a replay elsewhere.
    ref = policy_versions.ref_or_body(stack.services.policy)
    assert isinstance(ref, policy_versions.PolicyRef)
    assert [p.name for p in (out / "policies").iterdir()] == [f"{ref.version}.{ref.sha256}.json"]
    err = capsys.readouterr().err
    assert f"[1/2] {ids[0]}" in err and f"[2/2] {ids[1]}" in err and "2 of 2 disputes exported" in err
    assert await asyncio.to_thread(cli.main, ["audit", "replay", "--histories", str(out)]) == 0

    assert await asyncio.to_thread(cli.main, ["audit", "export", ids[0], "dsp-NOPE-1", "-o", str(out),
                                              "--quiet", *connection]) == 1
    err = capsys.readouterr().err
    assert f"{ids[0]}:" not in err and "[2/2] " in err and "not found: dsp-NOPE-1" in err
    assert await asyncio.to_thread(cli.main, ["audit", "export", *ids, *connection]) == 2


async def test_reconciling_shows_a_bar_over_the_disputes_on_a_terminal_only(stack: Stack, tmp_path: Path) -> None:
    dispute_id = (await stack.open_dispute(await stack.register_order()))["dispute_id"]
    cases = Visibility.cases_of(DisputeWorkflow.__name__)

    async def counted() -> int | None:
        # Visibility lists a new case shortly after it starts; the command lists the cases later.
        client = stack.services.temporal
        if not (await client.count_workflows(str(cases.where("WorkflowId", dispute_id)))).count:
            return None
        return (await client.count_workflows(str(cases))).count

    listed = await eventually(counted, what=f"{dispute_id} counted")
    database = f"sqlite:///{tmp_path}/reconcile.db"
    migrate(make_engine(database))
    env = {"DISPUTEFLOW_DATABASE_URL": database,
           "DISPUTEFLOW_TEMPORAL_ADDRESS": stack.services.temporal.service_client.config.target_host}
    final = (await asyncio.to_thread(_on_a_terminal, "reconcile", "--json", env=env)).rstrip().split("\r")[-1]
    assert final == "", "--json keeps the terminal quiet"
    shown = await asyncio.to_thread(_on_a_terminal, "reconcile", env=env)
    assert f"{listed}/{listed}" in shown.rstrip().split("\r")[-1] and "disputes" in shown, shown
    piped = subprocess.run([DISPUTEFLOW, "reconcile"], env=os.environ | env, capture_output=True, text=True,
                           timeout=120)
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr

"""Every path resolves from DISPUTEFLOW_HOME, never from the current directory: the commands,
run from any folder, read the stack's ledger, or say clearly that there is none."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from config.settings import Settings
from database import open_database
from ledger import Ledger
from money import Money
from orders import OrderService
from orders.service import PaidOrder

PROJECT = Path(__file__).resolve().parents[1]


def disputeflow(*args: str, cwd: Path, home: Path, temporal: WorkflowEnvironment | None = None,
                ) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPUTEFLOW_")} | {"DISPUTEFLOW_HOME": str(home)}
    if temporal is not None:
        env["DISPUTEFLOW_TEMPORAL_ADDRESS"] = temporal.client.service_client.config.target_host
        env["DISPUTEFLOW_TEMPORAL_NAMESPACE"] = temporal.client.namespace
    return subprocess.run([sys.executable, "-m", "devstack.cli", *args], cwd=cwd, env=env | {"PYTHONPATH": str(PROJECT)},
                          capture_output=True, text=True, timeout=120)


def test_commands_run_from_any_folder_read_the_ledger_of_the_home(
        tmp_path: Path, temporal_env: WorkflowEnvironment) -> None:
    home, elsewhere, further = tmp_path / "home", tmp_path / "elsewhere", tmp_path / "further" / "down"
    for folder in (home, elsewhere, further):
        folder.mkdir(parents=True)
    # The .env of the home is read wherever the command runs, and its relative path means the home's.
    (home / ".env").write_text("DISPUTEFLOW_DATABASE_URL=sqlite:///books/ledger.db\n")

    migrated = disputeflow("migrate", cwd=elsewhere, home=home)
    assert migrated.returncode == 0, migrated.stderr
    assert (home / "books" / "ledger.db").is_file()
    assert list(elsewhere.iterdir()) == [], "nothing is written where the command was run"

    settings = Settings(home=home)
    assert settings.database_url == f"sqlite:///{home}/books/ledger.db"
    engine = open_database(settings.database_url)
    OrderService(engine, Ledger(engine)).register(PaidOrder(
        order_id="ORD-HOME-1", buyer_id="alice", seller_id="acme", paid=Money(amount=19_900, currency="CNY"),
        shipped=True))
    engine.dispose()

    reconciled = disputeflow("reconcile", cwd=further, home=home, temporal=temporal_env)
    assert reconciled.returncode == 0, reconciled.stderr
    assert re.match(r"checked 1 transfers of \d+ disputes", reconciled.stdout), reconciled.stdout
    assert "reconciled: every check passed" in reconciled.stdout
    assert list(further.iterdir()) == []


def test_a_home_without_a_ledger_is_said_plainly_and_left_alone(tmp_path: Path) -> None:
    result = disputeflow("reconcile", cwd=tmp_path, home=tmp_path / "empty-home")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"disputeflow: no database at {tmp_path}/empty-home/.data/disputeflow.db: start the stack (`disputeflow up`) "
        "or create it with `disputeflow migrate` (paths resolve from DISPUTEFLOW_HOME)")
    assert not (tmp_path / "empty-home" / ".data" / "disputeflow.db").exists()


def test_the_home_defaults_to_the_checkout_wherever_the_process_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPUTEFLOW_HOME")
    monkeypatch.delenv("DISPUTEFLOW_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.home == PROJECT
    assert settings.data_dir == PROJECT / ".data"
    assert settings.database_url == f"sqlite:///{PROJECT}/.data/disputeflow.db"

"""Reconciliation passes on real dispute data and names the disputes in each corruption."""

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from config.settings import get_settings
from database import make_engine
from devstack import cli
from ledger import Ledger, TransferRequest, accounts
from reconciliation.checks import reconcile
from reconciliation.disputes import load_dispute_statuses
from tests.support import AUDITOR, BUYER, MEDIATOR, PLATFORM, SELLER, Stack


async def _advance_case(stack: Stack, currency: str) -> tuple[str, str]:
    """A case with an advance, settled by the seller's confirmation: every kind of transfer."""
    await stack.ok("POST", "/guarantee-fund/top-ups", PLATFORM,
                   {"amount": {"amount": 50_000, "currency": currency}, "reference": f"{currency}-recon"}, status=201)
    order_id = await stack.register_order(amount=9_000, currency=currency)
    dispute_id = (await stack.open_dispute(order_id, kind="return_and_refund", amount=9_000,
                                           currency=currency))["dispute_id"]
    await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "No"})
    await stack.act(dispute_id, "buyer-escalate", BUYER, {"reason": "Broken on arrival"})
    await stack.act(dispute_id, "mediator-take", MEDIATOR)
    await stack.act(dispute_id, "mediator-order-advance", MEDIATOR, {
        "amount": {"amount": 6_000, "currency": currency}, "rationale": "Defect clear", "buyer_in_good_faith": True,
        "return_goods": True, "return_address": "Desk"})
    await stack.act(dispute_id, "buyer-ship-return", BUYER, {"carrier": "SF", "tracking_number": "SF1000200"})
    await stack.act(dispute_id, "seller-confirm-return", SELLER)
    return order_id, dispute_id


async def test_the_test_data_reconciles_and_so_does_each_dispute(stack: Stack) -> None:
    order_id, dispute_id = await _advance_case(stack, "DKK")
    open_case = (await stack.open_dispute(await stack.register_order()))["dispute_id"]
    report = await stack.ok("GET", "/reconciliation", AUDITOR)
    assert report["findings"] == [] and report["ok"] is True
    assert report["transfers"] > 0 and report["disputes"] >= 2
    trail = await stack.ok("GET", f"/reconciliation/disputes/{dispute_id}", AUDITOR)
    assert trail["report"]["ok"] is True and trail["state"] == "SUCCESS"
    assert [(t["code"], t["amount"], t["step"]) for t in trail["transfers"]] == [
        ("freeze", 9_000, "opened"),
        ("advance", 6_000, "advance_ordered"),
        ("release", 9_000, "seller_confirmed_return"),
        ("advance_settlement", 6_000, "seller_confirmed_return"),
        ("advance_recovery", 6_000, "seller_confirmed_return"),
        ("refund", 3_000, "seller_confirmed_return"),
    ]
    assert (await stack.call("GET", "/reconciliation", BUYER)).status_code == 403
    assert (await stack.ok("GET", f"/reconciliation/disputes/{open_case}", PLATFORM))["report"]["ok"] is True


@pytest.fixture
def copy_database(stack: Stack, tmp_path: Path):
    """Copies the test database as it is now, to corrupt while the shared one stays intact."""

    def copy():
        target_path = tmp_path / "corrupted.db"
        with sqlite3.connect(stack.services.engine.url.database) as original, sqlite3.connect(target_path) as target:
            original.backup(target)
        return make_engine(f"sqlite:///{target_path}")

    return copy


async def test_each_corruption_is_reported_with_the_disputes_involved(stack: Stack, copy_database) -> None:
    _, dispute_id = await _advance_case(stack, "NOK")
    corrupted_copy = copy_database()
    statuses = await load_dispute_statuses(stack.services.temporal)
    assert reconcile(corrupted_copy, statuses).ok

    ledger = Ledger(corrupted_copy)
    # A hold left behind by a closed dispute (naming no order: the ledger refuses to hold more
    # for the order's buyer than the order paid).
    ledger.create_transfers([TransferRequest(
        id=f"{dispute_id}-stray-hold", debit_account_id=accounts.seller("acme", "NOK"),
        credit_account_id=accounts.buyer("alice", "NOK"), amount=100, currency="NOK", code="refund",
        phase="pending", dispute_id=dispute_id, step="forged")])
    # Money out of the fund that is no advance of any dispute.
    ledger.create_transfers([TransferRequest(
        id="mystery-payout", debit_account_id=accounts.guarantee_fund("NOK"),
        credit_account_id=accounts.buyer("alice", "NOK"), amount=700, currency="NOK", code="payout",
        step="forged")])
    # A balance edited behind the ledger's back.
    with corrupted_copy.begin() as connection:
        connection.execute(text("UPDATE ledger_accounts SET credits_posted = credits_posted + 1 WHERE id = :id"),
                           {"id": accounts.buyer("alice", "NOK")})
    report = reconcile(corrupted_copy, statuses)
    assert not report.ok
    checks = {(f.check, tuple(f.dispute_ids)) for f in report.findings}
    assert ("closed_dispute_holds_money", (dispute_id,)) in checks
    assert any(check == "double_entry" for check, _ in checks)
    assert any(f.check == "untraceable_transfer" and f.transfer_ids == ["mystery-payout"] for f in report.findings)
    fund_findings = [f.message for f in report.findings if f.check == "guarantee_fund"]
    assert fund_findings == ["the NOK guarantee fund has 49300 available; funding 50000 less outstanding "
                             "advances 0 is 50000"]


async def test_the_command_gates_on_findings(stack: Stack, copy_database, monkeypatch, capsys) -> None:
    _, dispute_id = await _advance_case(stack, "PLN")
    corrupted_copy = copy_database()
    env = stack.services.temporal.service_client.config.target_host
    monkeypatch.setenv("DISPUTEFLOW_TEMPORAL_ADDRESS", env)
    monkeypatch.setenv("DISPUTEFLOW_DATABASE_URL", str(stack.services.engine.url))
    get_settings.cache_clear()
    try:
        # The command runs its own event loop, as it does from a shell.
        assert await asyncio.to_thread(cli.main, ["reconcile"]) == 0
        assert "reconciled: every check passed" in capsys.readouterr().out
        with corrupted_copy.begin() as connection:
            connection.execute(text("UPDATE ledger_transfers SET pending_status = 'pending' WHERE id = :id"),
                               {"id": f"{dispute_id}-freeze"})
        monkeypatch.setenv("DISPUTEFLOW_DATABASE_URL", str(corrupted_copy.url))
        get_settings.cache_clear()
        assert await asyncio.to_thread(cli.main, ["reconcile"]) == 1
        out = capsys.readouterr().out
        assert f"FAIL closed_dispute_holds_money: closed dispute {dispute_id}" in out
    finally:
        get_settings.cache_clear()

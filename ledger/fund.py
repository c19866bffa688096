"""The guarantee fund's position: what it was funded with and the advances still out."""

from dataclasses import dataclass

from ledger import accounts
from ledger.service import AccountBalance, Ledger, TransferView


@dataclass(frozen=True)
class FundPosition:
    account: AccountBalance
    funded: int
    advances: list[TransferView]
    # What the fund paid out in advances and has not yet got back (by recovery or clawback).
    outstanding: int


def fund_position(ledger: Ledger, currency: str) -> FundPosition:
    """Raises UnknownAccount when the fund holds nothing in `currency` yet."""
    account = ledger.account(accounts.guarantee_fund(currency))
    transfers = ledger.transfers(account_id=account.id)
    funded = sum(t.amount for t in transfers if t.code == "topup")
    return FundPosition(account=account, funded=funded, advances=[t for t in transfers if t.code == "advance"],
                        outstanding=funded - account.balance + account.debits_pending)

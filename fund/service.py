"""The platform's guarantee fund (先行赔付基金): topping it up, reading its statement, and
whether it can pay an advance."""

from pydantic import BaseModel, ConfigDict

from ledger import AccountBalance, AccountKind, InsufficientFunds, Ledger, TransferView, UnknownAccount, accounts
from money import Money, plans
from money.plans import TransferCode

# The ledger's refusals that mean the fund cannot pay: a retry does not change them.
FUND_CANNOT_PAY = (InsufficientFunds, UnknownAccount)


class FundStatement(BaseModel):
    model_config = ConfigDict(frozen=True)

    account: AccountBalance
    funded: Money
    # What the fund paid out in advances and has not yet got back (by recovery or clawback).
    outstanding_advances: Money
    advances: list[TransferView]


class GuaranteeFund:
    def __init__(self, ledger: Ledger, floor: int):
        self._ledger = ledger
        self._floor = floor

    def top_up(self, amount: Money, reference: str) -> None:
        """Move the platform's own money into the fund; the same reference funds once
        (with another amount it raises TransferExistsWithDifferentFields)."""
        currency = amount.currency
        opening = [accounts.spec(AccountKind.platform, accounts.PLATFORM, currency),
                   accounts.spec(AccountKind.guarantee_fund, accounts.PLATFORM, currency, floor=self._floor)]
        self._ledger.create_transfers([plans.top_up(reference, amount.amount, currency)], opening=opening,
                                      entering=True)

    def statement(self, currency: str) -> FundStatement:
        """The fund in `currency`; UnknownAccount when it was never topped up."""
        account = self._ledger.account(accounts.guarantee_fund(currency))
        transfers = self._ledger.transfers(account_id=account.id)
        return FundStatement(
            account=account, funded=Money(amount=plans.funded(transfers), currency=currency),
            outstanding_advances=Money(amount=sum(plans.outstanding_advances(transfers).values()), currency=currency),
            advances=[t for t in transfers if t.code == TransferCode.advance],
        )

    def check_covers(self, amount: Money) -> None:
        """Refuse (one of FUND_CANNOT_PAY) an advance the fund cannot pay above its floor now.
        Only a courtesy before the case records anything: the ledger refuses it again, race free."""
        try:
            fund = self._ledger.account(accounts.guarantee_fund(amount.currency))
        except UnknownAccount:
            raise UnknownAccount(f"The guarantee fund holds no {amount.currency}; top it up first.",
                                 account_id=accounts.guarantee_fund(amount.currency)) from None
        payable = fund.available - fund.floor
        if payable < amount.amount:
            raise InsufficientFunds(
                f"The guarantee fund can pay {Money(amount=max(payable, 0), currency=amount.currency)} "
                f"above its floor; the advance needs {amount}.",
                account_id=fund.id, available=fund.available, floor=fund.floor, amount=amount.amount)

"""Account kinds and deterministic, human-readable account ids: ``{kind}:{owner}:{currency}``.

The currency is always the last, fixed-length segment, so ids are unique even when an
order or party id itself contains a colon.
"""

from enum import StrEnum
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from ledger.errors import InvalidAccount
from money import MAX_AMOUNT, CurrencyCode

PLATFORM = "platform"


class AccountKind(StrEnum):
    escrow = "escrow"  # one per order and currency: the buyer's payment held by the platform
    buyer = "buyer"  # what the platform owes a buyer (negative: what the buyer owes)
    seller = "seller"  # what the platform owes a seller (negative: a seller's debt)
    guarantee_fund = "guarantee_fund"  # 先行赔付基金: pays advances to buyers
    platform = "platform"  # the platform's own money that tops up the guarantee fund
    payments_clearing = "payments_clearing"  # buyers' payments arriving from outside


# Accounts that may go negative: a party's debt, or a source of money from outside.
ALLOWS_NEGATIVE: dict[AccountKind, bool] = {
    AccountKind.escrow: False,
    AccountKind.buyer: True,
    AccountKind.seller: True,
    AccountKind.guarantee_fund: False,
    AccountKind.platform: True,
    AccountKind.payments_clearing: True,
}

# Id prefix per kind. The platform's funding account reads better with its purpose.
_PREFIX: dict[AccountKind, str] = {kind: kind.value for kind in AccountKind} | {
    AccountKind.platform: "platform_funding"
}
_PLATFORM_OWNED = {AccountKind.guarantee_fund, AccountKind.platform, AccountKind.payments_clearing}

_currency_adapter: TypeAdapter[str] = TypeAdapter(CurrencyCode)


def checked_currency(currency: str) -> str:
    try:
        return _currency_adapter.validate_python(currency)
    except ValidationError as error:
        reason = error.errors()[0]["msg"].removeprefix("Value error, ")
        raise InvalidAccount(f"Currency {currency!r} is not usable: {reason}", currency=currency) from None


def _checked_owner(owner: str) -> str:
    if not isinstance(owner, str) or not owner.strip() or owner != owner.strip():
        raise InvalidAccount(f"Account owner {owner!r} must be a non-empty id without surrounding spaces",
                             owner=owner)
    return owner


def account_id(kind: AccountKind | str, owner: str, currency: str) -> str:
    kind = AccountKind(kind)
    return f"{_PREFIX[kind]}:{_checked_owner(owner)}:{checked_currency(currency)}"


def escrow(order_id: str, currency: str) -> str:
    return account_id(AccountKind.escrow, order_id, currency)


def buyer(party_id: str, currency: str) -> str:
    return account_id(AccountKind.buyer, party_id, currency)


def seller(party_id: str, currency: str) -> str:
    return account_id(AccountKind.seller, party_id, currency)


def guarantee_fund(currency: str) -> str:
    return account_id(AccountKind.guarantee_fund, PLATFORM, currency)


def platform_funding(currency: str) -> str:
    return account_id(AccountKind.platform, PLATFORM, currency)


def payments_clearing(currency: str) -> str:
    return account_id(AccountKind.payments_clearing, PLATFORM, currency)


class AccountSpec(BaseModel):
    """Everything that defines an account, derived from (kind, owner, currency)."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: AccountKind
    owner: str
    currency: str
    allow_negative: bool
    floor: int


def spec(kind: AccountKind | str, owner: str, currency: str, *, floor: int = 0) -> AccountSpec:
    try:
        kind = AccountKind(kind)
    except ValueError:
        raise InvalidAccount(
            f"Unknown account kind {kind!r}; expected one of {', '.join(k.value for k in AccountKind)}",
            kind=kind,
        ) from None
    if kind in _PLATFORM_OWNED and owner != PLATFORM:
        raise InvalidAccount(f"A {kind.value} account is owned by {PLATFORM!r}, not {owner!r}", owner=owner)
    if isinstance(floor, bool) or not isinstance(floor, int) or abs(floor) > MAX_AMOUNT:
        raise InvalidAccount(f"Floor {floor!r} must be an integer amount of minor units", floor=floor)
    if floor != 0 and ALLOWS_NEGATIVE[kind]:
        raise InvalidAccount(f"A {kind.value} account may go negative, so a floor means nothing for it",
                             floor=floor)
    return AccountSpec(
        id=account_id(kind, owner, currency),
        kind=kind,
        owner=owner,
        currency=currency,
        allow_negative=ALLOWS_NEGATIVE[kind],
        floor=floor,
    )

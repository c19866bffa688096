"""Money as integer minor units plus an ISO 4217 currency: never floats."""

from typing import Annotated

import iso4217
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# Large enough for any order, small enough to sit in a signed 64-bit column with room
# for sums of many transfers.
MAX_AMOUNT = 10**15


def _known_currency(code: str) -> str:
    try:
        currency = iso4217.Currency(code)
    except ValueError:
        raise ValueError(f"'{code}' is not an ISO 4217 currency code") from None
    if currency.exponent is None:
        # Precious metals, test and fund codes have no minor unit; nobody pays with them.
        raise ValueError(f"'{code}' is not a currency that can be paid in")
    return code


CurrencyCode = Annotated[
    str,
    Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 alphabetic code", examples=["CNY"]),
    AfterValidator(_known_currency),
]
MinorUnits = Annotated[
    int,
    Field(
        strict=True,
        ge=0,
        le=MAX_AMOUNT,
        description="Amount in the currency's minor unit (fen for CNY, cents for USD)",
    ),
]


class Money(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount: MinorUnits
    currency: CurrencyCode

    def __str__(self) -> str:
        exponent = minor_unit_exponent(self.currency)
        if exponent == 0:
            return f"{self.amount} {self.currency}"
        whole, fraction = divmod(self.amount, 10**exponent)
        return f"{whole}.{fraction:0{exponent}d} {self.currency}"


def minor_unit_exponent(currency: str) -> int:
    return iso4217.Currency(currency).exponent or 0

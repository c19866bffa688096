from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import ServicesDep, require_roles
from api.problems import PROBLEM_RESPONSES, Problem, problem_type
from api.schemas import AccountPublic, TransferPublic
from api.services import Services
from identity import Actor, Role
from ledger import AccountKind, AmountOverflow, TransferExistsWithDifferentFields, TransferRequest, UnknownAccount, accounts
from ledger.fund import fund_position
from money import CurrencyCode, Money

router = APIRouter(prefix="/guarantee-fund", tags=["guarantee fund"], responses=PROBLEM_RESPONSES)

PlatformActor = Annotated[Actor, Depends(require_roles(Role.PLATFORM))]
ReaderActor = Annotated[Actor, Depends(require_roles(Role.PLATFORM, Role.AUDITOR))]


class TopUpCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Money
    # The marketplace's own reference: the same reference never funds twice.
    reference: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")


class GuaranteeFundPublic(BaseModel):
    account: AccountPublic
    funded: Money
    outstanding_advances: Money
    advances: list[TransferPublic]


@router.post("/top-ups", status_code=201, operation_id="top_up_guarantee_fund", response_model=GuaranteeFundPublic)
async def top_up(body: TopUpCreate, actor: PlatformActor, services: ServicesDep,
                 response: Response) -> GuaranteeFundPublic:
    """Move the platform's own money into the guarantee fund (先行赔付基金)."""
    currency = body.amount.currency
    if body.amount.amount <= 0:
        raise Problem(422, "Invalid top-up", "A top-up must be more than 0.", type=problem_type("invalid-top-up"))
    try:
        await run_in_threadpool(_top_up, services, body)
    except TransferExistsWithDifferentFields as error:
        raise Problem(409, "Reference reused", f"Top-up {body.reference} was made with a different amount.",
                      type=problem_type("reference-reused")) from error
    except AmountOverflow as error:
        raise Problem(422, "Amount too large", str(error), type=problem_type("amount-too-large")) from error
    response.headers["Location"] = f"/guarantee-fund/{currency}"
    return await run_in_threadpool(_fund, services, currency)


def _top_up(services: Services, body: TopUpCreate) -> None:
    currency = body.amount.currency
    opening = [accounts.spec(AccountKind.platform, accounts.PLATFORM, currency),
               accounts.spec(AccountKind.guarantee_fund, accounts.PLATFORM, currency,
                             floor=services.policy.guarantee_fund_floor)]
    services.ledger.create_transfers(opening=opening, entering=True, requests=[TransferRequest(
        id=f"topup-{body.reference}", debit_account_id=accounts.platform_funding(currency),
        credit_account_id=accounts.guarantee_fund(currency), amount=body.amount.amount, currency=currency,
        code="topup", step="guarantee_fund_topped_up",
    )])


@router.get("/{currency}", operation_id="get_guarantee_fund", response_model=GuaranteeFundPublic)
async def get_fund(currency: Annotated[CurrencyCode, Path()], actor: ReaderActor,
                   services: ServicesDep) -> GuaranteeFundPublic:
    """The fund's balance, what it was funded with, and the advances still outstanding."""
    return await run_in_threadpool(_fund, services, currency)


def _fund(services: Services, currency: str) -> GuaranteeFundPublic:
    try:
        position = fund_position(services.ledger, currency)
    except UnknownAccount as error:
        raise Problem(404, "Not found", f"The guarantee fund holds no {currency} yet.",
                      type=problem_type("fund-not-found")) from error
    return GuaranteeFundPublic(
        account=position.account, funded=Money(amount=position.funded, currency=currency),
        outstanding_advances=Money(amount=position.outstanding, currency=currency), advances=position.advances,
    )

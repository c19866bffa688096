from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import FundDep, require_roles
from api.problems import PROBLEM_RESPONSES, Problem, problem_type
from api.schemas import GuaranteeFundPublic
from fund import GuaranteeFund
from identity import Actor, Role
from ledger import AmountOverflow, TransferExistsWithDifferentFields, UnknownAccount
from money import CurrencyCode, Money

router = APIRouter(prefix="/guarantee-fund", tags=["guarantee fund"], responses=PROBLEM_RESPONSES)

PlatformActor = Annotated[Actor, Depends(require_roles(Role.PLATFORM))]
# Mediators read it to see what an advance they order can draw (the console's advance form).
ReaderActor = Annotated[Actor, Depends(require_roles(Role.PLATFORM, Role.AUDITOR, Role.MEDIATOR))]


class TopUpCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Money
    # The marketplace's own reference: the same reference never funds twice.
    reference: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")


@router.post("/top-ups", status_code=201, operation_id="top_up_guarantee_fund", response_model=GuaranteeFundPublic)
async def top_up(body: TopUpCreate, actor: PlatformActor, fund: FundDep, response: Response) -> GuaranteeFundPublic:
    """Move the platform's own money into the guarantee fund (先行赔付基金)."""
    currency = body.amount.currency
    if body.amount.amount <= 0:
        raise Problem(422, "Invalid top-up", "A top-up must be more than 0.", type=problem_type("invalid-top-up"))
    try:
        await run_in_threadpool(fund.top_up, body.amount, body.reference)
    except TransferExistsWithDifferentFields as error:
        raise Problem(409, "Reference reused", f"Top-up {body.reference} was made with a different amount.",
                      type=problem_type("reference-reused")) from error
    except AmountOverflow as error:
        raise Problem(422, "Amount too large", str(error), type=problem_type("amount-too-large")) from error
    response.headers["Location"] = f"/guarantee-fund/{currency}"
    return await run_in_threadpool(_statement, fund, currency)


@router.get("/{currency}", operation_id="get_guarantee_fund", response_model=GuaranteeFundPublic)
async def get_fund(currency: Annotated[CurrencyCode, Path()], actor: ReaderActor,
                   fund: FundDep) -> GuaranteeFundPublic:
    """The fund's balance, what it was funded with, and the advances still outstanding."""
    return await run_in_threadpool(_statement, fund, currency)


def _statement(fund: GuaranteeFund, currency: str) -> GuaranteeFundPublic:
    try:
        return fund.statement(currency)
    except UnknownAccount as error:
        raise Problem(404, "Not found", f"The guarantee fund holds no {currency} yet.",
                      type=problem_type("fund-not-found")) from error

from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentActor, LedgerDep
from api.problems import PROBLEM_RESPONSES, Problem, problem_type
from api.schemas import AccountPublic, TransferPublic
from identity import Actor, Role
from ledger import AccountKind, UnknownAccount
from workflows.models import PartyId

router = APIRouter(prefix="/ledger", tags=["ledger"], responses=PROBLEM_RESPONSES)

_SEES_ALL = (Role.PLATFORM, Role.AUDITOR, Role.MEDIATOR)
_OWN_KIND = {Role.BUYER: "buyer", Role.SELLER: "seller"}


def _own_kind(actor: Actor) -> str:
    """The kind of account a party owns; other roles (managers, quality reviewers) read none."""
    if actor.role not in _OWN_KIND:
        raise Problem(403, "Forbidden", f"The {actor.role.value} role reads no ledger accounts.",
                      type=problem_type("forbidden"))
    return _OWN_KIND[actor.role]


@router.get("/accounts", operation_id="list_accounts", response_model=list[AccountPublic])
async def list_accounts(
    actor: CurrentActor,
    ledger: LedgerDep,
    owner: Annotated[PartyId | None, Query()] = None,
    kind: AccountKind | None = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
) -> list:
    """Account balances in minor units. Buyers and sellers see only their own accounts."""
    if actor.role not in _SEES_ALL:
        own = _own_kind(actor)
        if owner not in (None, actor.party_id) or kind not in (None, own):
            raise Problem(403, "Forbidden", "Parties may read only their own accounts.",
                          type=problem_type("forbidden"))
        owner, kind = actor.party_id, own
    return await run_in_threadpool(ledger.accounts, owner=owner, kind=kind, currency=currency)


@router.get("/accounts/{account_id}", operation_id="get_account", response_model=AccountPublic)
async def get_account(account_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,200}$")],
                      actor: CurrentActor, ledger: LedgerDep):
    try:
        account = await run_in_threadpool(ledger.account, account_id)
    except UnknownAccount as error:
        raise Problem(404, "Not found", str(error), type=problem_type("account-not-found")) from error
    _check_own(actor, account.kind, account.owner)
    return account


@router.get("/transfers", operation_id="list_transfers", response_model=list[TransferPublic])
async def list_transfers(
    actor: CurrentActor,
    ledger: LedgerDep,
    dispute_id: Annotated[str | None, Query(max_length=100)] = None,
    order_id: Annotated[PartyId | None, Query()] = None,
    account_id: Annotated[str | None, Query(max_length=200)] = None,
) -> list:
    """Transfers in the order they were made: for platform staff and auditors."""
    if actor.role not in _SEES_ALL:
        raise Problem(403, "Forbidden", "Only platform staff and auditors read the whole ledger.",
                      type=problem_type("forbidden"))
    return await run_in_threadpool(ledger.transfers, dispute_id=dispute_id, order_id=order_id, account_id=account_id)


def _check_own(actor: Actor, kind: str, owner: str) -> None:
    if actor.role not in _SEES_ALL and (kind != _own_kind(actor) or owner != actor.party_id):
        raise Problem(403, "Forbidden", "Parties may read only their own accounts.", type=problem_type("forbidden"))

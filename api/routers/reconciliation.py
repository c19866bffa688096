from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api import dispute_calls
from api.deps import DisputeId, ServicesDep, require_roles
from api.problems import PROBLEM_RESPONSES
from api.schemas import TransferPublic
from complaints.calls import complaint_ids
from identity import Actor, Role
from reconciliation.checks import ReconciliationReport, reconcile
from reconciliation.disputes import load_dispute_statuses

router = APIRouter(prefix="/reconciliation", tags=["reconciliation"], responses=PROBLEM_RESPONSES)

ReaderActor = Annotated[Actor, Depends(require_roles(Role.AUDITOR, Role.PLATFORM))]


class DisputeMoneyTrail(BaseModel):
    dispute_id: str
    state: str
    transfers: list[TransferPublic]
    report: ReconciliationReport


@router.get("", operation_id="reconcile", response_model=ReconciliationReport)
async def reconcile_all(actor: ReaderActor, services: ServicesDep) -> ReconciliationReport:
    """Every check over the whole ledger; `ok` is false and `findings` name the disputes involved."""
    statuses = await load_dispute_statuses(services.temporal)
    complaints = set(await complaint_ids(services.temporal))
    return await run_in_threadpool(reconcile, services.engine, statuses, services.archive, complaints)


@router.get("/disputes/{dispute_id}", operation_id="reconcile_dispute", response_model=DisputeMoneyTrail)
async def reconcile_dispute(dispute_id: DisputeId, actor: ReaderActor, services: ServicesDep) -> DisputeMoneyTrail:
    """One dispute's money trail (each transfer with the workflow step behind it) and the findings about it."""
    view = await dispute_calls.view(services.temporal, dispute_id, services.archive)
    statuses = await load_dispute_statuses(services.temporal)
    complaints = set(await complaint_ids(services.temporal))
    report = await run_in_threadpool(reconcile, services.engine, statuses, services.archive, complaints)
    mine = [f for f in report.findings if dispute_id in f.dispute_ids]
    transfers = await run_in_threadpool(services.ledger.transfers, dispute_id=dispute_id)
    return DisputeMoneyTrail(
        dispute_id=dispute_id, state=view.state.value, transfers=transfers,
        report=report.model_copy(update={"ok": not mine, "findings": mine}),
    )

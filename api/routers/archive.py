"""The archive of closed cases: legal holds (platform) and the chain's verification (auditors)."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, StringConstraints
from starlette.concurrency import run_in_threadpool

from api.deps import DisputeId, ServicesDep, require_roles
from api.problems import PROBLEM_RESPONSES, Problem, problem_type
from archive.records import Verification
from archive.service import Archive
from identity import Actor, Role

router = APIRouter(prefix="/archive", tags=["archive"], responses=PROBLEM_RESPONSES)

PlatformActor = Annotated[Actor, Depends(require_roles(Role.PLATFORM))]
ReaderActor = Annotated[Actor, Depends(require_roles(Role.PLATFORM, Role.AUDITOR))]


def get_archive(services: ServicesDep) -> Archive:
    assert services.archive is not None, "the API is built with an archive"
    return services.archive


ArchiveDep = Annotated[Archive, Depends(get_archive)]


class HoldCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Why the records must be kept, e.g. the court order's or the regulator's reference.
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class HoldPublic(BaseModel):
    dispute_id: str
    reason: str
    held_by: str
    held_at: datetime


@router.get("/holds", operation_id="list_legal_holds", response_model=list[HoldPublic])
async def list_holds(actor: ReaderActor, archive: ArchiveDep) -> list:
    """The disputes under legal hold: their archived records are never purged."""
    return await run_in_threadpool(archive.holds)


@router.put("/holds/{dispute_id}", operation_id="hold_dispute", response_model=HoldPublic)
async def hold(dispute_id: DisputeId, body: HoldCreate, actor: PlatformActor, archive: ArchiveDep) -> HoldPublic:
    """Put a dispute's records under legal hold (again: the first hold stands)."""
    held = await run_in_threadpool(archive.hold, dispute_id, body.reason, actor.party_id)
    return HoldPublic.model_validate(held, from_attributes=True)


@router.delete("/holds/{dispute_id}", status_code=204, operation_id="release_dispute")
async def release(dispute_id: DisputeId, actor: PlatformActor, archive: ArchiveDep) -> Response:
    """Lift a legal hold; the records are purged at the next sweep if their period is over."""
    if not await run_in_threadpool(archive.release, dispute_id):
        raise Problem(404, "Not held", f"Dispute {dispute_id} is not under legal hold.", type=problem_type("not-held"))
    return Response(status_code=204)


@router.get("/verification", operation_id="verify_archive", response_model=Verification)
async def verification(actor: ReaderActor, archive: ArchiveDep) -> Verification:
    """Recompute the hash chain (`disputeflow audit verify`): the first broken record, if any."""
    return await run_in_threadpool(archive.verify)

"""Auditors' tools: a dispute's full Temporal history, its readable trail, and replays of
histories against the current workflow code. Auditor role only; nothing here changes a
dispute (replay re-runs the code over the recorded history, offline)."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from starlette.concurrency import run_in_threadpool

from api.deps import DisputeId, ServicesDep, require_roles
from api.dispute_service import case_history
from api.problems import PROBLEM_RESPONSES
from audit import history as histories
from audit import replay
from audit.trail import Trail, build_trail
from identity import Role

router = APIRouter(prefix="/audit", tags=["audit"], responses=PROBLEM_RESPONSES,
                   dependencies=[Depends(require_roles(Role.AUDITOR))])

# One request replays at most this many disputes; the CLI has no such limit.
MAX_REPLAY = 1000

DisputeIdValue = Annotated[str, StringConstraints(pattern=r"^dsp-[A-Za-z0-9_.:-]{1,64}-[0-9]{1,6}$")]


class HistoryDocument(BaseModel):
    """The standard Temporal history JSON, as `temporal workflow show --output json` writes it;
    for a case that continued as new, `runs` holds one such history per run, oldest first."""

    events: list[dict[str, Any]] | None = None
    runs: list[dict[str, Any]] | None = None


class ReplayRequest(BaseModel):
    """Either `dispute_ids` or `filter` (an empty filter is every dispute, newest first up to its limit)."""

    model_config = ConfigDict(extra="forbid")

    dispute_ids: list[DisputeIdValue] | None = Field(None, min_length=1, max_length=MAX_REPLAY)
    filter: replay.DisputeFilter | None = None

    @model_validator(mode="after")
    def _one_selection(self) -> "ReplayRequest":
        if (self.dispute_ids is None) == (self.filter is None):
            raise ValueError("give either dispute_ids or filter")
        if self.filter is not None and (self.filter.limit or 0) > MAX_REPLAY:
            raise ValueError(f"a request replays at most {MAX_REPLAY} disputes; use the CLI for more")
        return self


@router.get("/disputes/{dispute_id}/history", operation_id="export_dispute_history",
            response_model=HistoryDocument,
            responses={200: {"description": "The full history; save it as <dispute_id>.json"}})
async def export_dispute_history(dispute_id: DisputeId, services: ServicesDep) -> Response:
    """The dispute's complete Temporal event history in the standard JSON format, which
    `WorkflowHistory.from_json`, `disputeflow audit replay --histories` and the Temporal
    tools read back. A case that continued as new is exported as `{"runs": [...]}`, one such
    history per run, oldest first. Encrypted payloads are decrypted: this is the auditors'
    copy (the route is theirs alone)."""
    runs = await case_history(services, dispute_id)
    document = await run_in_threadpool(histories.export_json, runs)
    return Response(document, media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{dispute_id}.json"'})


@router.get("/disputes/{dispute_id}/trail", operation_id="get_dispute_trail", response_model=Trail)
async def get_dispute_trail(
    dispute_id: DisputeId,
    services: ServicesDep,
    mechanics: Annotated[bool, Query(description="also list workflow-task and activity-start events")] = False,
) -> Trail:
    """What happened in the dispute, in order, in words and data, derived from its history:
    who acted (role, party, request id), which timers fired or were superseded, which
    policy version applied, every notification and every ledger transfer id."""
    runs = await case_history(services, dispute_id)
    return await run_in_threadpool(build_trail, runs, mechanics=mechanics)


@router.post("/replay", operation_id="replay_disputes", response_model=replay.ReplayReport)
async def replay_disputes(body: ReplayRequest, services: ServicesDep) -> replay.ReplayReport:
    """Replay disputes' histories against the workflow code this server runs. Each is
    reported `replayed`, `nondeterministic` (the code would now decide differently, with
    the reason), `failed` or `not_found`; `ok` is true only if all replayed."""
    temporal = services.temporal
    replayer = replay.shared_replayer()
    query, truncated = None, False
    if body.dispute_ids is not None:
        dispute_ids = list(dict.fromkeys(body.dispute_ids))
    else:
        assert body.filter is not None
        query = body.filter.query(replayer.workflow_type)
        dispute_ids, truncated = await replay.matching(temporal, body.filter, replayer.workflow_type,
                                                       limit=MAX_REPLAY)
    report = await replayer.replay(replay.from_server(temporal, dispute_ids, archive=services.archive))
    return report.model_copy(update={"query": query, "truncated": truncated})

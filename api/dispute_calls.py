"""Talking to dispute workflows, with Temporal's failures turned into problem responses.
Complaints run their actions and look their cases up through `act` and `exists` too, worded
by their own `CaseKind`."""

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecution,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.problems import Problem, problem_type, unavailable, workflow_service_problem
from api.schemas import DisputeSummary
from archive.service import Archive
from archive.source import archived_final
from config.temporal import SearchAttributes
from orders import DisputeAlreadyOpen
from workflows import rules
from workflows.dispute import DisputeWorkflow
from workflows.actions import Call
from workflows.models import (
    ActionResult,
    DisputeInput,
    DisputeState,
    DisputeView,
    CalendarUpdate,
    OPENING_MEMO,
    Opened,
    SubmittedEvidence,
)

# How long the API waits for a worker to answer before telling the client to retry.
WORKER_ANSWER_TIMEOUT = timedelta(seconds=20)

_STATUS_BY_FAILURE = {rules.FORBIDDEN: 403, rules.NOT_ALLOWED_NOW: 409, rules.INVALID: 422,
                      rules.ADVANCE_REFUSED: 409, rules.REFUND_EXCEEDS_REMAINING: 422}
_TITLE_BY_FAILURE = {rules.FORBIDDEN: "Forbidden", rules.NOT_ALLOWED_NOW: "Action not allowed now",
                     rules.INVALID: "Invalid action", rules.ADVANCE_REFUSED: "Advance refused",
                     rules.REFUND_EXCEEDS_REMAINING: "Refund exceeds what remains"}


@dataclass(frozen=True)
class CaseKind:
    """How the problems of calls on a kind of case name it."""

    noun: str  # "dispute"
    ended: str  # what a case is once nothing can change it: "closed"
    result: type[BaseModel]  # what its actions answer

    def no_answer(self) -> Problem:
        return unavailable(f"The {self.noun} service did not answer in time; retry with the same Idempotency-Key.")

    def rpc_problem(self, error: RPCError, case_id: str) -> Problem:
        if error.status == RPCStatusCode.NOT_FOUND:
            return Problem(404, "Not found", f"There is no {self.noun} {case_id}.",
                           type=problem_type(f"{self.noun}-not-found"))
        return workflow_service_problem(error)

    def ended_problem(self, case_id: str) -> Problem:
        noun = self.noun.capitalize()
        return Problem(409, f"{noun} {self.ended}", f"{noun} {case_id} is {self.ended}; nothing can change it.",
                       type=problem_type(f"{self.noun}-{self.ended}"))


DISPUTE = CaseKind("dispute", "closed", ActionResult)

async def open_dispute(client: Client, task_queue: str, dispute: DisputeInput, opening: str) -> ActionResult:
    """Start the dispute and answer, once its escrow is frozen (Update-with-Start), with the
    Update's small answer (the view is `view`).

    `opening` names the request (the same on every retry of a keyed one). Two requests may
    both try to start one dispute id (a reservation taken over while its first request was
    still on its way): whichever started it wins, the other is told the dispute is open.
    """
    order = dispute.order
    attributes = TypedSearchAttributes([
        SearchAttributePair(SearchAttributes.STATE, DisputeState.WAIT_SELLER_AGREE.value),
        SearchAttributePair(SearchAttributes.BUYER, order.buyer_id),
        SearchAttributePair(SearchAttributes.SELLER, order.seller_id),
        SearchAttributePair(SearchAttributes.ORDER, order.order_id),
        SearchAttributePair(SearchAttributes.CATEGORY, dispute.request.reason.value),
    ])
    start = WithStartWorkflowOperation(
        DisputeWorkflow.run, dispute, id=dispute.dispute_id, task_queue=task_queue,
        search_attributes=attributes, memo={OPENING_MEMO: opening},
        # A retried request finds the dispute its first attempt started.
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        # A dispute id names one case for ever; a closed one is never started again.
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )
    opened: Opened | None = None
    try:
        opened = await client.execute_update_with_start_workflow(
            DisputeWorkflow.opened, start_workflow_operation=start, rpc_timeout=WORKER_ANSWER_TIMEOUT,
        )
    except WorkflowAlreadyStartedError:
        pass  # closed: only the memo says who started it
    except WorkflowUpdateRPCTimeoutOrCancelledError as error:
        raise DISPUTE.no_answer() from error
    # A worker older than `Opened.started_by` answers without it: ask the memo.
    started_by = opened.started_by if opened is not None and opened.started_by is not None \
        else await _memo_opening(client, dispute.dispute_id)
    # A dispute started before openings were recorded cannot be told apart: it stands.
    if started_by not in (None, opening):
        raise already_open(order.order_id, dispute.dispute_id)
    if opened is None:
        return ActionResult.of(await view(client, dispute.dispute_id))
    return ActionResult.model_validate(opened.model_dump(exclude={"started_by"}))


async def _memo_opening(client: Client, dispute_id: str) -> str | None:
    description = await client.get_workflow_handle(dispute_id).describe(rpc_timeout=WORKER_ANSWER_TIMEOUT)
    return await description.memo_value(OPENING_MEMO, None)


def already_open(order_id: str, dispute_id: str) -> Problem:
    refusal = DisputeAlreadyOpen(order_id, dispute_id)
    return Problem(409, "Dispute already open", str(refusal), type=problem_type(refusal.code), dispute_id=dispute_id)



async def exists(client: Client, dispute_id: str) -> bool:
    try:
        await client.get_workflow_handle(dispute_id).describe(rpc_timeout=WORKER_ANSWER_TIMEOUT)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise DISPUTE.rpc_problem(error, dispute_id) from error
    return True


async def view(client: Client, dispute_id: str, archive: Archive | None = None) -> DisputeView:
    """The live view; once retention deleted the closed case, its archived final view."""
    handle = client.get_workflow_handle(dispute_id)
    try:
        return await handle.query(DisputeWorkflow.view, rpc_timeout=WORKER_ANSWER_TIMEOUT)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND and (final := await archived_final(archive, dispute_id)):
            return final.view
        raise DISPUTE.rpc_problem(error, dispute_id) from error


async def act(client: Client, case_id: str, action: StrEnum, argument: Call | CalendarUpdate,
              update_id: str | None, kind: CaseKind = DISPUTE) -> BaseModel:
    """Run an action as a Temporal Update; the same `update_id` again returns the first outcome."""
    handle = client.get_workflow_handle(case_id)
    try:
        return await handle.execute_update(
            action.value, argument, id=update_id, result_type=kind.result,
            rpc_timeout=WORKER_ANSWER_TIMEOUT,
        )
    except WorkflowUpdateRPCTimeoutOrCancelledError as error:
        raise kind.no_answer() from error
    except WorkflowUpdateFailedError as error:
        cause = error.cause
        if isinstance(cause, ApplicationError) and cause.type in _STATUS_BY_FAILURE:
            extensions = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
            raise _refused(cause.type, cause.message, extensions) from error
        raise
    except RPCError as error:
        # Temporal aborts the updates still in flight when the workflow completes.
        if error.status == RPCStatusCode.NOT_FOUND and await exists(client, case_id):
            raise kind.ended_problem(case_id) from error
        raise kind.rpc_problem(error, case_id) from error


async def check_evidence(client: Client, dispute_id: str, argument: Call[SubmittedEvidence]) -> None:
    """Refuse, as the Update would, evidence the case would not take now (before its body is stored)."""
    try:
        refusal = await client.get_workflow_handle(dispute_id).query(
            DisputeWorkflow.evidence_refusal, argument, rpc_timeout=WORKER_ANSWER_TIMEOUT)
    except RPCError as error:
        raise DISPUTE.rpc_problem(error, dispute_id) from error
    if refusal is not None:
        raise _refused(refusal.type, refusal.message, refusal.details)


def _refused(failure_type: str, message: str, extensions: dict) -> Problem:
    return Problem(_STATUS_BY_FAILURE[failure_type], _TITLE_BY_FAILURE[failure_type], message,
                   type=problem_type(failure_type), **extensions)


async def list_disputes(client: Client, query: str, limit: int) -> list[DisputeSummary]:
    summaries = []
    async for execution in client.list_workflows(query, limit=limit):
        summaries.append(summary(execution))
    return summaries


def summary(execution: WorkflowExecution) -> DisputeSummary:
    attrs = execution.typed_search_attributes
    closed = execution.status not in (None, WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING)
    return DisputeSummary(
        dispute_id=execution.id,
        order_id=attrs.get(SearchAttributes.ORDER),
        buyer_id=attrs.get(SearchAttributes.BUYER),
        seller_id=attrs.get(SearchAttributes.SELLER),
        state=attrs.get(SearchAttributes.STATE),
        reason=attrs.get(SearchAttributes.CATEGORY),
        next_deadline=attrs.get(SearchAttributes.NEXT_DEADLINE),
        mediator_id=attrs.get(SearchAttributes.MEDIATOR),
        awaiting_mediator=bool(attrs.get(SearchAttributes.AWAITING_MEDIATOR)),
        urgent=bool(attrs.get(SearchAttributes.URGENT)),
        needs_senior=bool(attrs.get(SearchAttributes.NEEDS_SENIOR)),
        opened_at=execution.start_time,
        closed_at=execution.close_time if closed else None,
    )

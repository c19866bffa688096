"""What the archive keeps of a case (a dispute or a complaint), as bytes.

`final`: the final view, the money trail (every ledger transfer of the case) and the
policy the case ran under at its close, as canonical JSON (a complaint's says so in `kind`). `history`: one run's complete
Temporal history in the standard JSON format, exactly as exported (payloads as recorded,
so encrypted ones stay encrypted).
"""

import json
from typing import Literal

from pydantic import BaseModel
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from audit import history as histories
from complaints.models import ComplaintInput, ComplaintView
from complaints.policy import ComplaintPolicy
from config.temporal import payload_value
from ledger import TransferView
from policy import Policy
from policy import versions as policy_versions
from workflows.models import DisputeView

FORMAT = 1
# The activity a final case writes itself with (`activities.archive`, which imports this module).
_ARCHIVE_ACTIVITY = "archive_final_case"


class _FinalPart(BaseModel):
    format: int = FORMAT
    # Every ledger transfer of the case.
    transfers: list[TransferView]


class FinalCase(_FinalPart):
    view: DisputeView
    policy: Policy

    @property
    def dispute_id(self) -> str:
        return self.view.dispute_id


class FinalComplaint(_FinalPart):
    kind: Literal["complaint"] = "complaint"
    view: ComplaintView
    policy: ComplaintPolicy

    @property
    def dispute_id(self) -> str:
        """The complaint's id: the archive keys every case's records by it."""
        return self.view.complaint_id


Final = FinalCase | FinalComplaint


def final_content(case: Final) -> bytes:
    return policy_versions.canonical(case.model_dump(mode="json"))


def read_final(content: bytes) -> Final:
    # A dispute's final part predates `kind`: its absence says dispute.
    is_complaint = json.loads(content).get("kind") == "complaint"
    return (FinalComplaint if is_complaint else FinalCase).model_validate_json(content)


def history_content(history: WorkflowHistory) -> bytes:
    return history.to_json().encode("utf-8")


def read_history(content: bytes, dispute_id: str) -> WorkflowHistory:
    return histories.from_json(content, dispute_id)


def final_from_history(history: WorkflowHistory, transfers: list[TransferView]) -> Final | None:
    """The final part of a closed run whose case did not write it (recorded before the case
    archived itself, or its write failed): the view is the one the case sent its archive
    activity, or for older runs the run's result; the policy the one
    of that version the history carries (the input's, or a calendar update's; a complaint's
    policy never changes)."""
    first_input = payload_value(history.events[0].workflow_execution_started_event_attributes.input.payloads[0])
    if "complaint_id" in first_input:
        return _complaint_final_from_history(history, ComplaintInput.model_validate(first_input), transfers)
    result = None
    policies: dict[str, Policy] = {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            policy = payload_value(payloads[0]).get("policy")
            if policy:
                policies[policy["version"]] = policy_versions.recorded(policy)
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            payloads = request.input.args.payloads
            argument = payload_value(payloads[0]) if payloads else None
            if isinstance(argument, dict) and isinstance(argument.get("policy"), dict):
                policies[argument["policy"]["version"]] = policy_versions.recorded(argument["policy"])
        elif (event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
              and event.activity_task_scheduled_event_attributes.activity_type.name == _ARCHIVE_ACTIVITY):
            # The final view the case tried to archive itself (its run's result is only the outcome).
            [request] = event.activity_task_scheduled_event_attributes.input.payloads
            result = DisputeView.model_validate(payload_value(request)["view"])
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED and result is None:
            # A run recorded before the case archived itself returned its final view.
            payloads = event.workflow_execution_completed_event_attributes.result.payloads
            result = payload_value(payloads[0], DisputeView) if payloads else None
    if result is None or result.policy_version not in policies:
        return None
    return FinalCase(view=result, transfers=transfers, policy=policies[result.policy_version])


def _complaint_final_from_history(history: WorkflowHistory, complaint: ComplaintInput,
                                  transfers: list[TransferView]) -> FinalComplaint | None:
    completed = history.events[-1]
    if completed.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        return None
    payloads = completed.workflow_execution_completed_event_attributes.result.payloads
    view = payload_value(payloads[0], ComplaintView)
    return FinalComplaint(view=view, transfers=transfers, policy=complaint.policy)

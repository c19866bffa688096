"""A dispute's Temporal history: fetch it, and read or write it in the standard JSON format
(the format of `temporal workflow show --output json` and the web UI's download).

A long case continues as new, so its history is a chain of runs, oldest first. A case of one
run is exported in the standard format; a chain as `{"runs": [{"runId": ..., "events": [...]},
...]}`, each element a standard history of one run."""

import json

from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from config.temporal import payload_codec, payload_value
from policy import versions as policy_versions
from policy.versions import PolicyRef

# Beside exported histories: the bodies of the shipped policy versions their inputs name by
# ref, so they replay on code that does not ship those versions.
POLICIES_FOLDER = "policies"


class DisputeNotFound(LookupError):
    def __init__(self, dispute_id: str):
        super().__init__(f"There is no dispute {dispute_id}.")
        self.dispute_id = dispute_id


async def fetch(client: Client, dispute_id: str, run_id: str | None = None) -> WorkflowHistory:
    """The full history of a dispute (its latest run unless `run_id` is given)."""
    try:
        return await client.get_workflow_handle(dispute_id, run_id=run_id).fetch_history()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise DisputeNotFound(dispute_id) from error
        raise


async def fetch_runs(client: Client, dispute_id: str) -> list[WorkflowHistory]:
    """Every run of a dispute, oldest first: each run's start names the run it continues."""
    runs = [await fetch(client, dispute_id)]
    while previous := _continued_from(runs[0]):
        runs.insert(0, await fetch(client, dispute_id, run_id=previous))
    return runs


def _continued_from(history: WorkflowHistory) -> str | None:
    first = history.events[0] if history.events else None
    if first is None or first.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        return None
    return first.workflow_execution_started_event_attributes.continued_execution_run_id or None


def decoded(history: WorkflowHistory) -> WorkflowHistory:
    """A copy of the history with every payload in the clear, decrypted and decompressed (for
    auditors' exports)."""
    codec = payload_codec()
    events = [HistoryEvent.FromString(event.SerializeToString()) for event in history.events]
    for event in events:
        codec.decode_message(event)
    return WorkflowHistory(history.workflow_id, events)


def export_json(runs: list[WorkflowHistory]) -> str:
    """The auditors' export of a case: its runs in the standard JSON, payloads in the clear."""
    return runs_to_json([decoded(run) for run in runs])


def runs_to_json(runs: list[WorkflowHistory]) -> str:
    if len(runs) == 1:
        return to_json(runs[0])
    return json.dumps({"runs": [{"runId": run.run_id, **json.loads(to_json(run))} for run in runs]})


def runs_from_json(data: str | bytes, workflow_id: str | None = None) -> list[WorkflowHistory]:
    """The runs of an exported history: one for the standard format, each of a chain's."""
    document = json.loads(data)
    if isinstance(document, dict) and isinstance(document.get("runs"), list):
        return [from_json({"events": run.get("events", [])}, workflow_id) for run in document["runs"]]
    return [from_json(document, workflow_id)]


def to_json(history: WorkflowHistory) -> str:
    """The standard JSON form: `{"events": [...]}` (the workflow id is not part of it)."""
    return history.to_json()


def from_json(data: str | bytes | dict[str, Any], workflow_id: str | None = None) -> WorkflowHistory:
    """Parse an exported history (ours, the Temporal CLI's or the web UI's).

    The format holds no workflow id; without one it is taken from the recorded input
    (a dispute's input names its `dispute_id`)."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    history = WorkflowHistory.from_json(workflow_id or "", data)
    if not workflow_id:
        history = WorkflowHistory(dispute_id_of(history.events) or "", history.events)
    return history


def read_file(path: Path) -> WorkflowHistory:
    """An exported history file of one run; its workflow id comes from its input, else its file name."""
    runs = read_runs(path)
    if len(runs) != 1:
        raise ValueError(f"{path} holds {len(runs)} runs; read it with read_runs")
    return runs[0]


def read_runs(path: Path) -> list[WorkflowHistory]:
    """The runs of an exported history file; their workflow id comes from the first run's
    input, else the file name."""
    runs = runs_from_json(path.read_text(encoding="utf-8"))
    workflow_id = runs[0].workflow_id or path.stem
    return [WorkflowHistory(workflow_id, run.events) for run in runs]


def history_files(paths: Iterable[Path]) -> list[Path]:
    """Every `*.json` under the given files and directories, in a stable order."""
    found: list[Path] = []
    for path in paths:
        found += sorted(path.glob("*.json")) if path.is_dir() else [path]
    return found


def dispute_id_of(events: Iterable[HistoryEvent]) -> str | None:
    """The `dispute_id` recorded in the workflow's input, if its first event has one."""
    for event in events:
        if event.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            return None
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        try:
            first = payload_value(payloads[0]) if payloads else None
        except Exception:  # an input we cannot decode names nothing
            return None
        value = first.get("dispute_id") if isinstance(first, dict) else None
        return value if isinstance(value, str) else None
    return None


def policy_refs(runs: Iterable[WorkflowHistory]) -> list[PolicyRef]:
    """The policy refs the runs' inputs record (inputs that hold a whole policy name none)."""
    refs: dict[PolicyRef, None] = {}
    for run in runs:
        first = run.events[0] if run.events else None
        if first is None or first.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            continue
        payloads = first.workflow_execution_started_event_attributes.input.payloads
        value = payload_value(payloads[0]) if payloads else None
        policy = value.get("policy") if isinstance(value, dict) else None
        if isinstance(policy, dict) and "sha256" in policy:
            refs[PolicyRef.model_validate(policy)] = None
    return list(refs)


def write_policies(folder: Path, runs: Iterable[WorkflowHistory]) -> list[Path]:
    """Write the body of every policy the runs name by ref into `folder/policies/`."""
    written = []
    for ref in policy_refs(runs):
        path = folder / POLICIES_FOLDER / f"{ref.version}.{ref.sha256}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(policy_versions.registered_body(ref), indent=1, ensure_ascii=False) + "\n",
                        encoding="utf-8")
        written.append(path)
    return written


def register_policies(folder: Path) -> list[tuple[Path, str]]:
    """Hold the policy bodies exported beside the histories in `folder`, so their refs resolve.
    A file is named by the ref it stands for: its body's own hash, or (a body the exporting
    code held from an archive record, re-dumped) the hash the cases name. Answers the files it
    could not hold, each with why; the cases that name them then fail replay on their own."""
    bodies = folder / POLICIES_FOLDER
    refused = []
    for path in sorted(bodies.glob("*.json")) if bodies.is_dir() else []:
        version, _, sha = path.stem.rpartition(".")
        try:
            named = PolicyRef(version=version, sha256=sha)
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("it holds no JSON object")
            if policy_versions.register(data) != named:
                policy_versions.hold(named, policy_versions.recorded(data))
        except (OSError, ValueError, policy_versions.UnknownPolicyVersion) as error:
            refused.append((path, f"not a policy export named <version>.<sha256>.json: {error}"))
    return refused


async def iterate(histories: Iterable[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for history in histories:
        yield history



"""Replay dispute histories against the current workflow code.

A replay re-runs the workflow code over a recorded history with the project's data
converter (temporalio's `Replayer`, the same sandbox the worker uses) and checks that
the code makes exactly the recorded decisions. A history that does not replay means
the code changed in a way the case it recorded cannot follow: a deployment must not
go ahead (see DEVELOPERS.md: such changes go behind `workflow.patched`).

Histories come from anywhere as an async iterator: the Temporal server (one dispute, a
list, or every dispute matching a visibility filter) or exported JSON files.
"""

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from temporalio import workflow
from temporalio.client import Client, WorkflowHistory
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import Replayer, WorkflowReplayResult

from archive.service import Archive
from archive.source import case_runs
from audit import history as histories
from config.temporal import SearchAttributes, Visibility, data_converter, rfc3339
from workflows.models import DisputeState, PartyId


class ReplayStatus(StrEnum):
    REPLAYED = "replayed"
    # The code made other decisions than the history records.
    NONDETERMINISTIC = "nondeterministic"
    # The replay could not run to the end for another reason (e.g. the code raised).
    FAILED = "failed"
    NOT_FOUND = "not_found"


class ReplayOutcome(BaseModel):
    dispute_id: str
    run_id: str | None = None
    status: ReplayStatus
    # One line: why it did not replay.
    reason: str | None = None
    # The replayer's full message.
    detail: str | None = None
    events: int | None = None
    # The file a history was read from, for offline replays.
    source: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == ReplayStatus.REPLAYED


class ReplayReport(BaseModel):
    ok: bool
    total: int
    replayed: int
    nondeterministic: int
    failed: int
    not_found: int
    seconds: float
    # The workflow classes the histories were replayed against (module.Class).
    workflows: list[str]
    # The visibility query that chose the disputes, when a filter did.
    query: str | None = None
    # True when the filter matched more disputes than its limit; only the newest were replayed.
    truncated: bool = False
    outcomes: list[ReplayOutcome]


class DisputeFilter(BaseModel):
    """Which disputes to replay, as a Temporal visibility query on our search attributes.
    Every field is optional; an empty filter means every dispute."""

    model_config = ConfigDict(extra="forbid")

    state: DisputeState | None = None
    buyer_id: PartyId | None = None
    seller_id: PartyId | None = None
    started_after: AwareDatetime | None = Field(None, description="opened at or after this instant")
    started_before: AwareDatetime | None = Field(None, description="opened before this instant")
    limit: Annotated[int | None, Field(ge=1)] = None

    @field_validator("started_after", "started_before")
    @classmethod
    def _expressible_in_utc(cls, instant: datetime | None) -> datetime | None:
        if instant is not None:
            try:
                rfc3339(instant)
            except OverflowError:
                raise ValueError("the instant falls outside the years 1 to 9999 in UTC") from None
        return instant

    def query(self, workflow_type: str) -> str:
        return str(Visibility.cases_of(workflow_type)
                   .where(SearchAttributes.STATE, self.state).where(SearchAttributes.BUYER, self.buyer_id)
                   .where(SearchAttributes.SELLER, self.seller_id)
                   .where("StartTime", self.started_after, op=">=").where("StartTime", self.started_before, op="<"))




@dataclass(frozen=True)
class FromFile:
    """A history read from a file, so the report can name the file."""

    history: WorkflowHistory
    path: str


# A history, or an outcome already decided without replaying (e.g. no such dispute).
Source = WorkflowHistory | FromFile | ReplayOutcome
OnOutcome = Callable[[ReplayOutcome], None]


@lru_cache(maxsize=1)
def shared_replayer() -> "DisputeReplayer":
    """One replayer of the current workflow code per process (the API's)."""
    return DisputeReplayer()


@lru_cache(maxsize=1)
def _quiet_runtime() -> Runtime:
    """A runtime whose core logs only errors: the replayer reports failures itself, so
    the core's per-task warnings would only repeat them."""
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))))


def default_workflows() -> list[type]:
    from worker import WORKFLOWS

    return list(WORKFLOWS)


class DisputeReplayer:
    """One reusable `Replayer` for the dispute workflow(s) and our data converter.

    Build it once and call `replay` for each batch: it streams histories from an async
    iterator, never raises on a replay failure, and reports every history's outcome
    as it is known (for progress on long runs)."""

    def __init__(self, workflows: Sequence[type] | None = None):
        self.workflows = list(workflows) if workflows is not None else default_workflows()
        self._replayer = Replayer(workflows=self.workflows, data_converter=data_converter(),
                                  runtime=_quiet_runtime())

    @property
    def workflow_type(self) -> str:
        return workflow_type(self.workflows)

    async def replay(self, sources: AsyncIterator[Source], on_outcome: OnOutcome | None = None) -> ReplayReport:
        started = time.monotonic()
        outcomes: list[ReplayOutcome] = []

        def report(outcome: ReplayOutcome) -> None:
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)

        files: dict[int, str] = {}

        async def only_histories() -> AsyncIterator[WorkflowHistory]:
            async for source in sources:
                if isinstance(source, ReplayOutcome):
                    report(source)
                elif isinstance(source, FromFile):
                    files[id(source.history)] = source.path
                    yield source.history
                else:
                    yield source

        # workflow_replay_iterator is what Replayer.replay_workflows(histories,
        # raise_on_replay_failure=False) runs, but answers each history as it is done.
        async with self._replayer.workflow_replay_iterator(only_histories()) as results:
            async for result in results:
                report(_outcome(result, files.pop(id(result.history), None)))
        return summarise(outcomes, time.monotonic() - started, self.workflows)


def workflow_type(workflows: Sequence[type]) -> str:
    definition = workflow._Definition.must_from_class(workflows[0])
    assert definition.name is not None
    return definition.name


def summarise(outcomes: list[ReplayOutcome], seconds: float, workflows: Sequence[type]) -> ReplayReport:
    count = {status: sum(1 for o in outcomes if o.status == status) for status in ReplayStatus}
    return ReplayReport(
        ok=count[ReplayStatus.REPLAYED] == len(outcomes),
        total=len(outcomes),
        replayed=count[ReplayStatus.REPLAYED],
        nondeterministic=count[ReplayStatus.NONDETERMINISTIC],
        failed=count[ReplayStatus.FAILED],
        not_found=count[ReplayStatus.NOT_FOUND],
        seconds=round(seconds, 3),
        workflows=[f"{w.__module__}.{w.__qualname__}" for w in workflows],
        outcomes=outcomes,
    )


_CORE_MESSAGE = re.compile(r'message: "((?:[^"\\]|\\.)*)"')


def _outcome(result: WorkflowReplayResult, source: str | None) -> ReplayOutcome:
    history = result.history
    failure = result.replay_failure
    base = {"dispute_id": history.workflow_id, "run_id": _run_id(history), "events": len(history.events),
            "source": source}
    if failure is None:
        return ReplayOutcome(status=ReplayStatus.REPLAYED, **base)
    detail = str(failure)
    found = _CORE_MESSAGE.search(detail)
    reason = found.group(1).replace('\\"', '"').replace("\\'", "'") if found else detail.splitlines()[0]
    status = (ReplayStatus.NONDETERMINISTIC if isinstance(failure, workflow.NondeterminismError)
              else ReplayStatus.FAILED)
    return ReplayOutcome(status=status, reason=reason, detail=detail, **base)


def _run_id(history: WorkflowHistory) -> str | None:
    try:
        return history.run_id
    except RuntimeError:
        return None


# ---- sources ---------------------------------------------------------------------------


async def matching(client: Client, dispute_filter: DisputeFilter, workflow_type_name: str,
                   limit: int | None = None) -> tuple[list[str], bool]:
    """The ids of the disputes the filter matches, oldest first, and whether there were more
    than `limit` (the filter's own, else the one given), in which case the newest are kept."""
    limit = dispute_filter.limit or limit
    found = [execution.id async for execution in client.list_workflows(
        dispute_filter.query(workflow_type_name), limit=limit + 1 if limit else None)]
    truncated = limit is not None and len(found) > limit
    found = found[:limit] if limit else found
    found.reverse()
    return found, truncated


async def from_server(client: Client, dispute_ids: Iterable[str], prefetch: int = 8,
                      archive: Archive | None = None) -> AsyncIterator[Source]:
    """Histories fetched from the server (from `archive` once the server deleted them), a few
    ahead of the replay, in the given order; every run of a case that continued as new."""
    pending: list[tuple[str, asyncio.Task[list[WorkflowHistory]]]] = []
    ids = iter(dispute_ids)
    try:
        while True:
            while len(pending) < prefetch:
                dispute_id = next(ids, None)
                if dispute_id is None:
                    break
                pending.append((dispute_id, asyncio.create_task(case_runs(client, archive, dispute_id))))
            if not pending:
                return
            dispute_id, task = pending.pop(0)
            try:
                runs = await task
            except histories.DisputeNotFound as error:
                yield ReplayOutcome(dispute_id=dispute_id, status=ReplayStatus.NOT_FOUND, reason=str(error))
                continue
            for run in runs:
                yield run
    finally:
        for _, task in pending:
            task.cancel()


async def from_files(paths: Iterable[Path]) -> AsyncIterator[Source]:
    """Exported history files (see audit.history.read_file), the policy bodies exported
    beside them held first."""
    folders: set[Path] = set()
    for path in paths:
        if path.parent not in folders:
            folders.add(path.parent)
            for policy_file, why in histories.register_policies(path.parent):
                yield ReplayOutcome(dispute_id=policy_file.stem, status=ReplayStatus.FAILED, source=str(policy_file),
                                    reason=f"cannot hold {policy_file}: {why}")
        try:
            runs = histories.read_runs(path)
        except (OSError, ValueError) as error:
            yield ReplayOutcome(dispute_id=path.stem, status=ReplayStatus.FAILED, source=str(path),
                                reason=f"cannot read {path}: {error}")
            continue
        for run in runs:
            yield FromFile(run, str(path))

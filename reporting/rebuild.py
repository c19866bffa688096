"""Rebuild the projection from the cases' histories: `disputeflow report rebuild`.

Each case's runs are read through the case source replay uses (Temporal while it has the case,
the archive after); the facts its notifications carried and its final view, as the activities
received them, are projected again by the same code. Samples, verdicts and survey answers are
people's input, not projections: they are kept."""

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, delete, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

from activities.archive import ArchiveFinalCase
from archive.models import ArchivedRecord
from archive.service import Archive
from archive.source import case_runs
from audit.history import DisputeNotFound
from config.temporal import payload_value
from database import reading, session
from reporting.facts import CaseFacts
from reporting.models import ReportCase, ReportSla
from reporting.projection import mark_final, project
from workflows.dispute import DisputeWorkflow
from workflows.models import Notification, Notifications

CONCURRENT_READS = 8
# The activities whose inputs carry a case's facts: one change's messages at once, or (cases
# started before `notify_all`) one message each.
_NOTIFYING = {"notify_all": Notifications, "notify": Notification}


@dataclass
class Replayed:
    facts: CaseFacts | None = None
    final_at: datetime | None = None


@dataclass
class RebuildReport:
    projected: int = 0
    # Cases whose histories carry no facts (recorded before reporting): not projected.
    without_facts: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def facts_in(runs: list[WorkflowHistory]) -> Replayed:
    """The newest facts the case's notifications carried, and when it became final."""
    found = Replayed()
    for history in runs:
        for event in history.events:
            if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                continue
            scheduled = event.activity_task_scheduled_event_attributes
            name, payloads = scheduled.activity_type.name, scheduled.input.payloads
            if name in _NOTIFYING:
                [notification] = [payload_value(payload, _NOTIFYING[name]) for payload in payloads]
                report = notification.report
                if report is not None and (found.facts is None or report.seq > found.facts.seq):
                    found.facts = report
            elif name == "archive_final_case":
                [final] = [payload_value(payload, ArchiveFinalCase) for payload in payloads]
                found.final_at = final.view.events[-1].at
    return found


async def dispute_ids(client: Client, engine: Engine, visibility_filter: str | None = None) -> list[str]:
    """Every case Temporal has (`visibility_filter` narrows them), and every case the archive has."""
    listing = f"WorkflowType = '{DisputeWorkflow.__name__}'"
    if visibility_filter:
        listing += f" AND ({visibility_filter})"
    ids = {execution.id async for execution in client.list_workflows(listing)}
    with reading(engine) as db:
        ids |= set(db.execute(select(ArchivedRecord.dispute_id).distinct()).scalars())
    return sorted(ids)


async def rebuild(client: Client, archive: Archive | None, source: Engine, into: Engine, *,
                  visibility_filter: str | None = None) -> RebuildReport:
    """Read every case (listed from Temporal and the archive of `source`) and write the
    projection afresh into `into` (the same engine to rebuild in place) in one transaction."""
    report = RebuildReport()
    gate = asyncio.Semaphore(CONCURRENT_READS)
    replayed: dict[str, Replayed] = {}

    async def read(dispute_id: str) -> None:
        async with gate:
            try:
                runs = await case_runs(client, archive, dispute_id)
            except DisputeNotFound:
                report.missing.append(dispute_id)
                return
        replayed[dispute_id] = facts_in(runs)

    await asyncio.gather(*[read(dispute_id) for dispute_id in await dispute_ids(client, source, visibility_filter)])
    with session(into) as db:
        db.execute(delete(ReportSla))
        db.execute(delete(ReportCase))
        for dispute_id, case in sorted(replayed.items()):
            if case.facts is None:
                report.without_facts.append(dispute_id)
                continue
            project(db, dispute_id, case.facts)
            if case.final_at is not None:
                mark_final(db, dispute_id, case.final_at)
            report.projected += 1
    return report

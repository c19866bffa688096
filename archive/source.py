"""The case source: a case's record from Temporal while it has the case, from the archive
after retention deleted it. Everything that reads a case's history or final view (the
API, the audit tools, reconciliation) reads through here, so following a case across
stores, or across a chain of runs, is this module's business alone."""

import asyncio

from temporalio.client import Client, WorkflowHistory

from archive.bundle import FinalCase
from archive.service import Archive
from audit import history as histories
from policy import versions as policy_versions


async def case_runs(client: Client, archive: Archive | None, dispute_id: str) -> list[WorkflowHistory]:
    """Every run of the dispute, oldest first; `DisputeNotFound` when neither store has it."""
    try:
        return await histories.fetch_runs(client, dispute_id)
    except histories.DisputeNotFound:
        archived = await asyncio.to_thread(archive.case, dispute_id) if archive is not None else None
        if archived is None or not archived.histories:
            raise
        if isinstance(archived.final, FinalCase):
            # The record's policy body, for a ref to a version this code may not ship.
            for ref in histories.policy_refs(archived.histories):
                if ref.version == archived.final.policy.version:
                    policy_versions.hold(ref, archived.final.policy)
        return list(archived.histories)


async def archived_final(archive: Archive | None, dispute_id: str) -> FinalCase | None:
    """The final part of a dispute Temporal no longer has (None if the archive has none)."""
    archived = await asyncio.to_thread(archive.case, dispute_id) if archive is not None else None
    return archived.final if archived is not None and isinstance(archived.final, FinalCase) else None

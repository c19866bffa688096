import asyncio

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client

from activities.definition import uninterrupted
from archive.bundle import FinalCase, FinalComplaint
from archive.service import Archive
from archive.sweeper import archive_closed_runs
from complaints.models import ComplaintView
from complaints.policy import ComplaintPolicy
from database import session
from ledger import Ledger
from policy import Policy
from policy import versions as policy_versions
from policy.versions import PolicyRef
from reporting.surveys import case_final
from workflows.models import DisputeView


class ArchiveFinalCase(BaseModel):
    view: DisputeView
    # The policy the case follows at its close (a calendar update may have moved it on): the
    # ref of a shipped version, else the body. The record holds the body either way.
    policy: Policy | PolicyRef


class ArchiveFinalComplaint(BaseModel):
    view: ComplaintView
    policy: ComplaintPolicy


class SweepResult(BaseModel):
    archived: int
    purged: int
    held: int
    # Runs left for the next sweep (each logged with why).
    failed: int = 0


class ArchiveActivities:
    def __init__(self, archive: Archive, ledger: Ledger, client: Client, *workflow_types: str):
        self._archive = archive
        self._engine = ledger.engine
        self._ledger = ledger
        self._client = client
        # The workflows whose closed runs the sweeper archives (disputes, complaints).
        self._workflow_types = workflow_types

    @uninterrupted
    def archive_final_case(self, request: ArchiveFinalCase) -> int:
        """The final view, the money trail and the policy; the record's place in the chain."""
        transfers = self._ledger.transfers(dispute_id=request.view.dispute_id)
        policy = policy_versions.resolve(request.policy)
        case = FinalCase(view=request.view, transfers=transfers, policy=policy)
        seq = self._archive.archive_final(case).seq
        # The case is final: the reporting read model says so and the survey invites its parties.
        with session(self._engine) as db:
            case_final(db, request.view, policy)
        return seq

    @uninterrupted
    def archive_final_complaint(self, request: ArchiveFinalComplaint) -> int:
        """As `archive_final_case`, for a complaint (its transfers name it in the case column)."""
        transfers = self._ledger.transfers(dispute_id=request.view.complaint_id)
        case = FinalComplaint(view=request.view, transfers=transfers, policy=request.policy)
        return self._archive.archive_final(case).seq

    @activity.defn
    async def sweep(self) -> SweepResult:
        swept = [await archive_closed_runs(self._client, self._archive, self._ledger, activity.info().task_queue,
                                           workflow_type, heartbeat=activity.heartbeat)
                 for workflow_type in self._workflow_types]
        report = await asyncio.to_thread(self._archive.purge_expired)
        return SweepResult(archived=sum(len(s.archived) for s in swept), purged=len(report.purged),
                           held=len(report.held), failed=sum(len(s.failed) for s in swept))

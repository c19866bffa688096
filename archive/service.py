"""The archive: appends records to the chain, reads a case back, verifies, keeps and lets go."""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import select
from temporalio.client import WorkflowHistory

from archive import bundle
from archive.models import LegalHold
from archive.records import ArchiveRecord, ChainHead, Part, Verification, head_of, next_record, verify
from archive.stores import ArchiveStore, SeqTaken, open_store
from config.settings import Settings
from database import reading, session

log = logging.getLogger("disputeflow.archive")


@dataclass
class ArchivedCase:
    dispute_id: str
    final: bundle.Final | None
    # Every archived run's history, oldest first.
    histories: list[WorkflowHistory] = field(default_factory=list)
    # Set when the case's records were purged after their keeping period.
    purged: bool = False


@dataclass(frozen=True)
class PurgeReport:
    purged: list[ArchiveRecord]
    held: list[str]


class Archive:
    def __init__(self, store: ArchiveStore, engine: Engine, keep_for: timedelta):
        self.store = store
        self._engine = engine
        self.keep_for = keep_for

    # ---- writing ---------------------------------------------------------------------

    def append(self, dispute_id: str, part: Part, content: bytes, run_id: str = "") -> ArchiveRecord:
        """Add a record at the end of the chain, once: a part already archived (a retried
        activity, the sweeper after the case) is answered with the record that holds it.

        The chain's end is read before the check: a rival who archived the part after that read
        took the place after it (or one later), so our add of that place fails and the next
        round finds the rival's record. Checked first, a rival's commit between the check and
        the read would chain the part twice."""
        while True:
            last = self.store.last()
            existing = self._existing(dispute_id, part, run_id)
            if existing is not None:
                return existing
            record = next_record(last, dispute_id, part, run_id, content, datetime.now(UTC))
            try:
                self.store.add(record)
            except SeqTaken:
                continue  # another writer took that place: chain on after it
            log.info("archived %s", record)
            return record

    def _existing(self, dispute_id: str, part: Part, run_id: str) -> ArchiveRecord | None:
        if not self.store.has(dispute_id, part, run_id):
            return None
        return next(r for r in self.store.find(dispute_id) if r.part == part and r.run_id == run_id)

    def archive_final(self, case: bundle.Final) -> ArchiveRecord:
        return self.append(case.dispute_id, Part.FINAL, bundle.final_content(case))

    def archive_history(self, history: WorkflowHistory, run_id: str) -> ArchiveRecord:
        return self.append(history.workflow_id, Part.HISTORY, bundle.history_content(history), run_id=run_id)

    def has_final(self, dispute_id: str) -> bool:
        return self.store.has(dispute_id, Part.FINAL, "")

    def has_history(self, dispute_id: str, run_id: str) -> bool:
        return self.store.has(dispute_id, Part.HISTORY, run_id)

    # ---- reading ---------------------------------------------------------------------

    def case(self, dispute_id: str) -> ArchivedCase | None:
        records = self.store.find(dispute_id)
        if not records:
            return None
        found = ArchivedCase(dispute_id=dispute_id, final=None)
        for record in records:
            if record.content is None:
                found.purged = True
            elif record.part == Part.FINAL:
                found.final = bundle.read_final(record.content)
            else:
                found.histories.append(bundle.read_history(record.content, dispute_id))
        return found

    def head(self) -> ChainHead | None:
        return head_of(self.store.last())

    def verify(self, now: datetime | None = None) -> Verification:
        return verify(self.store.records(), self.keep_for, now)

    # ---- keeping and letting go -----------------------------------------------------

    def hold(self, dispute_id: str, reason: str, held_by: str) -> LegalHold:
        with session(self._engine) as db:
            hold = db.get(LegalHold, dispute_id)
            if hold is None:
                hold = LegalHold(dispute_id=dispute_id, reason=reason, held_by=held_by, held_at=datetime.now(UTC))
                db.add(hold)
            return hold

    def release(self, dispute_id: str) -> bool:
        with session(self._engine) as db:
            hold = db.get(LegalHold, dispute_id)
            if hold is not None:
                db.delete(hold)
            return hold is not None

    def holds(self) -> list[LegalHold]:
        with reading(self._engine) as db:
            return list(db.exec(select(LegalHold).order_by(LegalHold.dispute_id)))

    def purge_expired(self, now: datetime | None = None) -> PurgeReport:
        """Drop the content of every record past its keeping period, except held disputes';
        each removal is logged. The chain fields stay, so the chain still verifies."""
        now = now or datetime.now(UTC)
        held = {hold.dispute_id for hold in self.holds()}
        purged: list[ArchiveRecord] = []
        kept: set[str] = set()
        for record in self.store.records():
            if record.archived_at + self.keep_for > now:
                break  # the chain is in archiving order: every later record is younger
            if record.content is None:
                continue
            if record.dispute_id in held:
                kept.add(record.dispute_id)
                continue
            self.store.purge(record.seq, now)
            log.info("purged %s, archived %s, kept %s", record, record.archived_at.isoformat(), self.keep_for)
            purged.append(record)
        return PurgeReport(purged=purged, held=sorted(kept))


def open_archive(settings: Settings, engine: Engine) -> Archive:
    """The archive the settings name; `engine` is the project's database (holds live there)."""
    store = open_store(settings.archive, engine, settings.archive_s3_endpoint_url)
    return Archive(store, engine, settings.archive_keep_for)

"""Archived records and the hash chain that makes tampering evident.

A record's `content` is stored as the exact bytes that were hashed: nothing re-encodes
it later (an encrypted payload stays encrypted, a key rotation rewrites nothing). Each
record's `hash` covers its place in the archive (`seq`), what it is (`dispute_id`, `part`,
`run_id`), when it was written, the hash of its content and the previous record's hash,
so altering, removing or reordering any record breaks the chain from that record on.

A record whose keeping period is over may be purged: its content goes, its chain fields
stay, so the chain still verifies and shows the record existed and when it was let go.
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel

GENESIS = "0" * 64


class Part(StrEnum):
    # The final view, the money trail and the policy, written by the case once it is final.
    FINAL = "final"
    # One run's complete Temporal history, written by the sweeper once the run is closed.
    HISTORY = "history"


@dataclass(frozen=True)
class ArchiveRecord:
    seq: int
    dispute_id: str
    part: Part
    # The run a history belongs to ("" for the final part).
    run_id: str
    archived_at: datetime
    content_hash: str
    prev_hash: str
    hash: str
    # None once purged.
    content: bytes | None
    purged_at: datetime | None = None

    def purged(self, at: datetime) -> "ArchiveRecord":
        return replace(self, content=None, purged_at=at)

    def __str__(self) -> str:
        return f"record {self.seq} ({self.dispute_id} {self.part.value}{' run ' + self.run_id if self.run_id else ''})"


def content_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def chain_hash(seq: int, dispute_id: str, part: Part, run_id: str, archived_at: datetime, content_digest: str,
               prev_hash: str) -> str:
    fields = [str(seq), dispute_id, part.value, run_id, _instant(archived_at), content_digest, prev_hash]
    return hashlib.sha256("\n".join(fields).encode("utf-8")).hexdigest()


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def next_record(previous: ArchiveRecord | None, dispute_id: str, part: Part, run_id: str, content: bytes,
                archived_at: datetime) -> ArchiveRecord:
    """The record that follows `previous` (None: the first record)."""
    seq = previous.seq + 1 if previous else 1
    prev_hash = previous.hash if previous else GENESIS
    # Stores keep microseconds at most; hash what they will give back.
    archived_at = archived_at.astimezone(UTC)
    digest = content_hash(content)
    return ArchiveRecord(seq=seq, dispute_id=dispute_id, part=part, run_id=run_id, archived_at=archived_at,
                         content_hash=digest, prev_hash=prev_hash,
                         hash=chain_hash(seq, dispute_id, part, run_id, archived_at, digest, prev_hash),
                         content=content)


class ChainHead(BaseModel):
    """The newest record of the archive: publish it, and any later rewrite of the past shows."""

    seq: int
    hash: str


class BrokenRecord(BaseModel):
    # Where in the chain it breaks: the records before it are intact.
    position: int
    # The record found there.
    seq: int
    dispute_id: str
    problem: str


class Verification(BaseModel):
    ok: bool
    records: int
    purged: int
    head: ChainHead | None
    # The first record where the chain does not hold, and why.
    first_broken: BrokenRecord | None = None


def verify(records: Iterable[ArchiveRecord], keep_for: timedelta, now: datetime | None = None) -> Verification:
    """Walk the chain in `seq` order and stop at the first record that does not fit it."""
    now = now or datetime.now(UTC)
    previous: ArchiveRecord | None = None
    count = purged = 0

    def broken(record: ArchiveRecord, problem: str) -> Verification:
        position = count + 1
        return Verification(ok=False, records=count, purged=purged, head=head_of(previous),
                            first_broken=BrokenRecord(position=position, seq=record.seq, dispute_id=record.dispute_id,
                                                      problem=f"position {position}: {record} {problem}"))

    for record in records:
        expected_seq = count + 1
        if record.seq != expected_seq:
            return broken(record, f"is where record {expected_seq} belongs: record {expected_seq} was removed "
                                  "or the records were reordered")
        if record.prev_hash != (previous.hash if previous else GENESIS):
            return broken(record, "does not follow the record before it: a record was removed or reordered")
        if record.hash != chain_hash(record.seq, record.dispute_id, record.part, record.run_id, record.archived_at,
                                     record.content_hash, record.prev_hash):
            return broken(record, "was altered: its chain fields do not hash to its hash")
        if record.content is None:
            # `archived_at` is under the hash: nobody can make a record look old enough to go.
            if now < record.archived_at + keep_for:
                return broken(record, "lost its content before its keeping period ended")
            purged += 1
        elif content_hash(record.content) != record.content_hash:
            return broken(record, "was altered: its content does not hash to its content hash")
        previous = record
        count += 1
    return Verification(ok=True, records=count, purged=purged, head=head_of(previous))


def head_of(record: ArchiveRecord | None) -> ChainHead | None:
    return ChainHead(seq=record.seq, hash=record.hash) if record else None

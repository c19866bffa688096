"""Where archived records live, behind one interface: a table of the project's database
(the default), a directory, or an S3-compatible bucket (DISPUTEFLOW_ARCHIVE).

A store only keeps records: `add` refuses a `seq` already taken (two writers racing
for the next place: the loser takes the one after), and nothing but `purge` ever
changes a record once added. The chain itself is `archive.service.Archive`'s.
"""

import json
import os
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from archive.models import ArchivedRecord
from archive.records import ArchiveRecord, Part
from database import reading, session


class SeqTaken(Exception):
    """Another writer added a record at this place first."""


class ArchiveStore(Protocol):
    def last(self) -> ArchiveRecord | None: ...

    def add(self, record: ArchiveRecord) -> None: ...

    def records(self, after_seq: int = 0) -> Iterator[ArchiveRecord]: ...

    def find(self, dispute_id: str) -> list[ArchiveRecord]: ...

    # Whether that part is archived, without reading any content (the sweeper asks for
    # every closed run Temporal holds).
    def has(self, dispute_id: str, part: Part, run_id: str) -> bool: ...

    def purge(self, seq: int, at: datetime) -> None: ...


def open_store(location: str, engine: Engine, s3_endpoint_url: str | None = None) -> ArchiveStore:
    """`database`, `dir:/path` or `s3://bucket/prefix`."""
    if location == "database":
        return DatabaseStore(engine)
    if location.startswith("dir:"):
        return DirectoryStore(Path(location.removeprefix("dir:")))
    if location.startswith("s3://"):
        parsed = urlparse(location)
        return S3Store(parsed.netloc, parsed.path.strip("/"), endpoint_url=s3_endpoint_url)
    raise ValueError(f"unknown archive location {location!r}: database, dir:/path or s3://bucket/prefix")


# ---- a table of the project's database ------------------------------------------------


class DatabaseStore:
    def __init__(self, engine: Engine):
        self._engine = engine

    def last(self) -> ArchiveRecord | None:
        with reading(self._engine) as db:
            row = db.exec(select(ArchivedRecord).order_by(ArchivedRecord.seq.desc()).limit(1)).first()
            return _from_row(row) if row else None

    def add(self, record: ArchiveRecord) -> None:
        try:
            with session(self._engine) as db:
                db.add(ArchivedRecord(**{**record.__dict__, "part": record.part.value}))
        except IntegrityError as error:
            raise SeqTaken(record.seq) from error

    def records(self, after_seq: int = 0, batch: int = 500) -> Iterator[ArchiveRecord]:
        while True:
            with reading(self._engine) as db:
                rows = db.exec(select(ArchivedRecord).where(ArchivedRecord.seq > after_seq)
                               .order_by(ArchivedRecord.seq).limit(batch)).all()
            yield from map(_from_row, rows)
            if len(rows) < batch:
                return
            after_seq = rows[-1].seq

    def find(self, dispute_id: str) -> list[ArchiveRecord]:
        with reading(self._engine) as db:
            rows = db.exec(select(ArchivedRecord).where(ArchivedRecord.dispute_id == dispute_id)
                           .order_by(ArchivedRecord.seq)).all()
            return [_from_row(row) for row in rows]

    def has(self, dispute_id: str, part: Part, run_id: str) -> bool:
        with reading(self._engine) as db:
            return db.exec(select(ArchivedRecord.seq).where(
                ArchivedRecord.dispute_id == dispute_id, ArchivedRecord.part == part.value,
                ArchivedRecord.run_id == run_id)).first() is not None

    def purge(self, seq: int, at: datetime) -> None:
        with session(self._engine) as db:
            db.execute(update(ArchivedRecord).where(ArchivedRecord.seq == seq).values(content=None, purged_at=at))


def _from_row(row: ArchivedRecord) -> ArchiveRecord:
    return ArchiveRecord(seq=row.seq, dispute_id=row.dispute_id, part=Part(row.part), run_id=row.run_id,
                         archived_at=row.archived_at, content_hash=row.content_hash, prev_hash=row.prev_hash,
                         hash=row.hash, content=row.content, purged_at=row.purged_at)


# ---- files: one per record, a JSON header line and then the content's exact bytes --------


def encode(record: ArchiveRecord) -> bytes:
    header = {"seq": record.seq, "dispute_id": record.dispute_id, "part": record.part.value,
              "run_id": record.run_id, "archived_at": record.archived_at.isoformat(),
              "content_hash": record.content_hash, "prev_hash": record.prev_hash, "hash": record.hash,
              "purged_at": record.purged_at.isoformat() if record.purged_at else None,
              "has_content": record.content is not None}
    return json.dumps(header, separators=(",", ":")).encode("utf-8") + b"\n" + (record.content or b"")


def decode(data: bytes) -> ArchiveRecord:
    line, _, content = data.partition(b"\n")
    header = json.loads(line)
    return ArchiveRecord(
        seq=header["seq"], dispute_id=header["dispute_id"], part=Part(header["part"]), run_id=header["run_id"],
        archived_at=datetime.fromisoformat(header["archived_at"]), content_hash=header["content_hash"],
        prev_hash=header["prev_hash"], hash=header["hash"],
        content=content if header["has_content"] else None,
        purged_at=datetime.fromisoformat(header["purged_at"]) if header["purged_at"] else None)


def _record_name(seq: int) -> str:
    return f"{seq:012d}.record"


def _index_name(record: ArchiveRecord) -> str:
    return f"{record.seq}.{record.part.value}.{record.run_id}"


def _index_entry(name: str) -> tuple[int, str, str]:
    seq, part, run_id = name.split(".", 2)
    return int(seq), part, run_id


class DirectoryStore:
    """`records/<seq>.record`, and `disputes/<dispute_id>/<seq>.<part>.<run_id>` to find a
    dispute's records; `head` says roughly where the chain ends, so `last` need not list
    every record.

    A record appears whole or not at all (written aside, then hard-linked into place, which
    fails if the place is taken)."""

    def __init__(self, root: Path):
        self._head = root / "head"
        self._records = root / "records"
        self._disputes = root / "disputes"
        self._records.mkdir(parents=True, exist_ok=True)
        self._disputes.mkdir(parents=True, exist_ok=True)

    def _seqs(self) -> list[int]:
        return sorted(int(name.split(".")[0]) for name in os.listdir(self._records) if name.endswith(".record"))

    def _read(self, seq: int) -> ArchiveRecord:
        return decode((self._records / _record_name(seq)).read_bytes())

    def last(self) -> ArchiveRecord | None:
        seq = int(self._head.read_text()) if self._head.exists() else 0
        # The hint may lag (a writer stopped before updating it): walk on to the real end.
        while (self._records / _record_name(seq + 1)).exists():
            seq += 1
        return self._read(seq) if seq else None

    def _write_aside(self, data: bytes) -> Path:
        handle, name = tempfile.mkstemp(dir=self._records, suffix=".tmp")
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        return Path(name)

    def add(self, record: ArchiveRecord) -> None:
        aside = self._write_aside(encode(record))
        try:
            os.link(aside, self._records / _record_name(record.seq))
        except FileExistsError as error:
            raise SeqTaken(record.seq) from error
        finally:
            aside.unlink()
        # A crash before the index entry leaves the record unfound, so the part is archived
        # again later: a duplicate in the chain, never a loss.
        index = self._disputes / record.dispute_id
        index.mkdir(exist_ok=True)
        (index / _index_name(record)).touch()
        os.replace(self._write_aside(str(record.seq).encode()), self._head)

    def records(self, after_seq: int = 0) -> Iterator[ArchiveRecord]:
        for seq in self._seqs():
            if seq > after_seq:
                yield self._read(seq)

    def find(self, dispute_id: str) -> list[ArchiveRecord]:
        index = self._disputes / dispute_id
        if not index.is_dir():
            return []
        return [self._read(seq) for seq in sorted(_index_entry(name)[0] for name in os.listdir(index))]

    def has(self, dispute_id: str, part: Part, run_id: str) -> bool:
        index = self._disputes / dispute_id
        return index.is_dir() and any(_index_entry(name)[1:] == (part.value, run_id) for name in os.listdir(index))

    def purge(self, seq: int, at: datetime) -> None:
        aside = self._write_aside(encode(self._read(seq).purged(at)))
        os.replace(aside, self._records / _record_name(seq))


class S3Store:
    """`<prefix>/records/<seq>.record` (written only if absent: S3's conditional put), and
    `<prefix>/disputes/<dispute_id>/<seq>.<part>.<run_id>` to find a dispute's records; `<prefix>/head`
    says roughly where the chain ends so `last` need not list every record."""

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None = None, client=None):  # noqa: ANN001
        import boto3

        self._s3 = client or boto3.client("s3", endpoint_url=endpoint_url)
        self._bucket = bucket
        self._prefix = f"{prefix}/" if prefix else ""

    def _key(self, *parts: str) -> str:
        return self._prefix + "/".join(parts)

    def _read(self, seq: int) -> ArchiveRecord | None:
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=self._key("records", _record_name(seq)))["Body"]
        except self._s3.exceptions.NoSuchKey:
            return None
        return decode(body.read())

    def last(self) -> ArchiveRecord | None:
        try:
            hint = int(self._s3.get_object(Bucket=self._bucket, Key=self._key("head"))["Body"].read())
        except self._s3.exceptions.NoSuchKey:
            hint = 0
        # The hint may lag (a writer stopped before updating it): walk on to the real end.
        found = self._read(hint) if hint else None
        while (following := self._read((found.seq if found else 0) + 1)) is not None:
            found = following
        return found

    def add(self, record: ArchiveRecord) -> None:
        from botocore.exceptions import ClientError

        try:
            self._s3.put_object(Bucket=self._bucket, Key=self._key("records", _record_name(record.seq)),
                                Body=encode(record), IfNoneMatch="*")
        except ClientError as error:
            if error.response["Error"]["Code"] in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise SeqTaken(record.seq) from error
            raise
        self._s3.put_object(Bucket=self._bucket, Key=self._key("disputes", record.dispute_id, _index_name(record)),
                            Body=b"")
        self._s3.put_object(Bucket=self._bucket, Key=self._key("head"), Body=str(record.seq).encode())

    def _listed(self, *parts: str) -> Iterator[str]:
        prefix = self._key(*parts) + "/"
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"].removeprefix(prefix)

    def records(self, after_seq: int = 0) -> Iterator[ArchiveRecord]:
        # Keys are zero-padded, so listing order is chain order.
        for name in self._listed("records"):
            seq = int(name.split(".")[0])
            if seq > after_seq and (record := self._read(seq)) is not None:
                yield record

    def find(self, dispute_id: str) -> list[ArchiveRecord]:
        seqs = sorted(_index_entry(name)[0] for name in self._listed("disputes", dispute_id))
        return [record for seq in seqs if (record := self._read(seq)) is not None]

    def has(self, dispute_id: str, part: Part, run_id: str) -> bool:
        return any(_index_entry(name)[1:] == (part.value, run_id) for name in self._listed("disputes", dispute_id))

    def purge(self, seq: int, at: datetime) -> None:
        record = self._read(seq)
        assert record is not None
        self._s3.put_object(Bucket=self._bucket, Key=self._key("records", _record_name(seq)),
                            Body=encode(record.purged(at)))

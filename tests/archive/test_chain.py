"""The archive's hash chain, on each store: an altered byte, a removed record and two
swapped records are each named by `disputeflow audit verify`, which then exits 1."""

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from sqlalchemy import delete, text, update

from archive.models import ArchivedRecord
from archive.records import Part
from archive.service import Archive
from archive.stores import DatabaseStore, DirectoryStore, S3Store
from database import make_engine, migrate
from devstack.cli import main as disputeflow
from tests.postgres import fresh_schema_engine, new_schema_name

KEEP = timedelta(days=3 * 365 + 1)


@dataclass
class Tampering:
    """Changes a store's bytes behind the archive's back, as someone with disk access could."""

    flip_byte: Callable[[int], None]
    remove: Callable[[int], None]
    swap: Callable[[int, int], None]
    # DISPUTEFLOW_ARCHIVE and _DATABASE_URL for the CLI, when it can reach this store.
    location: str | None = None
    database_url: str | None = None


def _db_tampering(engine) -> Tampering:  # noqa: ANN001
    def flip(seq: int) -> None:
        with engine.begin() as db:
            content = db.execute(text("SELECT content FROM archive_records WHERE seq = :s"), {"s": seq}).scalar_one()
            db.execute(update(ArchivedRecord).where(ArchivedRecord.seq == seq)
                       .values(content=bytes([content[0] ^ 1]) + content[1:]))

    def remove(seq: int) -> None:
        with engine.begin() as db:
            db.execute(delete(ArchivedRecord).where(ArchivedRecord.seq == seq))

    def swap(a: int, b: int) -> None:
        with engine.begin() as db:
            for old, new in ((a, -1), (b, a), (-1, b)):
                db.execute(update(ArchivedRecord).where(ArchivedRecord.seq == old).values(seq=new))

    return Tampering(flip, remove, swap)


def _file_tampering(read: Callable[[int], bytes], write: Callable[[int, bytes], None],
                    drop: Callable[[int], None]) -> Tampering:
    def flip(seq: int) -> None:
        data = read(seq)
        write(seq, data[:-1] + bytes([data[-1] ^ 1]))  # the last byte is the content's

    def swap(a: int, b: int) -> None:
        first, second = read(a), read(b)
        write(a, second)
        write(b, first)

    return Tampering(flip, drop, swap)


@pytest.fixture(params=["database-sqlite", pytest.param("database-postgres", marks=pytest.mark.postgres),
                        "directory", "s3"])
def archive_and_tampering(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Archive, Tampering]]:
    kind = request.param
    sqlite = make_engine(f"sqlite:///{tmp_path}/app.db")
    migrate(sqlite)
    if kind == "database-sqlite":
        tampering = _db_tampering(sqlite)
        tampering.location, tampering.database_url = "database", f"sqlite:///{tmp_path}/app.db"
        yield Archive(DatabaseStore(sqlite), sqlite, KEEP), tampering
    elif kind == "database-postgres":
        with fresh_schema_engine(new_schema_name("df_archive")) as engine:
            yield Archive(DatabaseStore(engine), engine, KEEP), _db_tampering(engine)
    elif kind == "directory":
        root = tmp_path / "archive"
        store = DirectoryStore(root)
        path = lambda seq: root / "records" / f"{seq:012d}.record"  # noqa: E731
        tampering = _file_tampering(lambda seq: path(seq).read_bytes(), lambda seq, data: path(seq).write_bytes(data),
                                    lambda seq: path(seq).unlink())
        tampering.location = f"dir:{root}"
        yield Archive(store, sqlite, KEEP), tampering
    else:
        with mock_aws():
            s3 = boto3.client("s3", region_name="us-east-1")
            s3.create_bucket(Bucket="disputes-archive")
            key = lambda seq: f"cases/records/{seq:012d}.record"  # noqa: E731
            tampering = _file_tampering(
                lambda seq: s3.get_object(Bucket="disputes-archive", Key=key(seq))["Body"].read(),
                lambda seq, data: s3.put_object(Bucket="disputes-archive", Key=key(seq), Body=data),
                lambda seq: s3.delete_object(Bucket="disputes-archive", Key=key(seq)))
            yield Archive(S3Store("disputes-archive", "cases", client=s3), sqlite, KEEP), tampering


def _fill(archive: Archive, count: int = 5) -> None:
    for n in range(1, count + 1):
        archive.append(f"dsp-ORD-{n}-1", Part.FINAL, f'{{"case": {n}}}'.encode())


def test_an_untouched_chain_verifies_and_its_head_is_the_last_record(archive_and_tampering) -> None:  # noqa: ANN001
    archive, _ = archive_and_tampering
    _fill(archive)
    verification = archive.verify()
    assert verification.ok and verification.records == 5 and verification.first_broken is None
    assert verification.head == archive.head() and archive.head().seq == 5
    # A part archived again (a retried activity) is the record already there, not a new one.
    again = archive.append("dsp-ORD-3-1", Part.FINAL, b'{"case": 3}')
    assert again.seq == 3 and archive.head().seq == 5


def test_an_altered_byte_is_named(archive_and_tampering) -> None:  # noqa: ANN001
    archive, tampering = archive_and_tampering
    _fill(archive)
    tampering.flip_byte(3)
    broken = archive.verify().first_broken
    assert broken is not None and broken.position == broken.seq == 3 and broken.dispute_id == "dsp-ORD-3-1"
    assert "was altered: its content does not hash" in broken.problem


def test_a_removed_record_is_named(archive_and_tampering) -> None:  # noqa: ANN001
    archive, tampering = archive_and_tampering
    _fill(archive)
    tampering.remove(2)
    verification = archive.verify()
    assert not verification.ok and verification.records == 1
    assert verification.first_broken.position == 2 and verification.first_broken.seq == 3
    assert "record 2 was removed" in verification.first_broken.problem


def test_two_swapped_records_are_named(archive_and_tampering) -> None:  # noqa: ANN001
    archive, tampering = archive_and_tampering
    _fill(archive)
    tampering.swap(2, 4)
    broken = archive.verify().first_broken
    # Row stores move the seq with the swap, file stores the whole record: either way position 2.
    assert broken is not None and broken.position == 2 and broken.dispute_id in ("dsp-ORD-2-1", "dsp-ORD-4-1")
    assert "reordered" in broken.problem


def test_a_purged_record_still_chains_but_content_gone_early_is_caught(archive_and_tampering, caplog) -> None:  # noqa: ANN001
    archive, _ = archive_and_tampering
    caplog.set_level(logging.INFO, logger="disputeflow.archive")
    _fill(archive, 3)
    archive.hold("dsp-ORD-2-1", "court order 2026-117", "marketplace")
    later = datetime.now(UTC) + KEEP + timedelta(minutes=1)
    report = archive.purge_expired(now=later)
    assert [r.dispute_id for r in report.purged] == ["dsp-ORD-1-1", "dsp-ORD-3-1"]
    assert report.held == ["dsp-ORD-2-1"]
    purge_logs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("purged")]
    assert len(purge_logs) == 2 and "record 1 (dsp-ORD-1-1 final)" in purge_logs[0]
    assert "record 3 (dsp-ORD-3-1 final)" in purge_logs[1]
    # Nothing is left to purge, and the held dispute stays held.
    assert archive.purge_expired(now=later).purged == []
    assert archive.verify(now=later).ok and archive.verify(now=later).purged == 2
    assert archive.store.find("dsp-ORD-2-1")[0].content == b'{"case": 2}'
    # The same purge seen before the keeping period ends is a removal, and named.
    early = archive.verify(now=datetime.now(UTC))
    assert not early.ok and early.first_broken.position == 1 and "before its keeping period" in early.first_broken.problem


@pytest.mark.parametrize("archive_and_tampering", ["database-sqlite", "directory"], indirect=True)
def test_audit_verify_exits_1_naming_the_first_broken_record(archive_and_tampering, monkeypatch, capsys) -> None:  # noqa: ANN001
    archive, tampering = archive_and_tampering
    _fill(archive)
    from config.settings import get_settings

    monkeypatch.setenv("DISPUTEFLOW_ARCHIVE", tampering.location)
    if tampering.database_url:
        monkeypatch.setenv("DISPUTEFLOW_DATABASE_URL", tampering.database_url)
    get_settings.cache_clear()
    try:
        assert disputeflow(["audit", "verify"]) == 0
        assert f"head: record 5 {archive.head().hash}" in capsys.readouterr().out
        tampering.flip_byte(4)
        assert disputeflow(["audit", "verify"]) == 1
        out = capsys.readouterr().out
        assert "CHAIN BROKEN at position 4: record 4 (dsp-ORD-4-1 final) was altered" in out
    finally:
        get_settings.cache_clear()


class _OvertakenOnce:
    """A store whose first `last()` lets another writer archive first, as a writer that
    checked for a part just before another's commit, and read the chain's end just after, sees."""

    def __init__(self, store, overtake: Callable[[], object]):  # noqa: ANN001
        self._store = store
        self._overtake: Callable[[], object] | None = overtake

    def last(self):  # noqa: ANN201
        if self._overtake is not None:
            overtake, self._overtake = self._overtake, None
            overtake()
        return self._store.last()

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._store, name)


def test_a_part_archived_by_two_writers_at_once_is_recorded_once(archive_and_tampering) -> None:  # noqa: ANN001
    archive, _ = archive_and_tampering
    _fill(archive, 2)
    content = b'{"case": "raced"}'
    rival = Archive(archive.store, archive._engine, KEEP)
    slow = Archive(_OvertakenOnce(archive.store, lambda: rival.append("dsp-ORD-raced-1", Part.FINAL, content)),
                   archive._engine, KEEP)

    record = slow.append("dsp-ORD-raced-1", Part.FINAL, content)

    finals = [r for r in archive.store.find("dsp-ORD-raced-1") if r.part == Part.FINAL]
    assert [r.seq for r in finals] == [record.seq] == [3]
    assert archive.verify().ok

"""The archive of closed cases: durable, tamper-evident, kept for years after Temporal lets go.

See README "The archive" for where it lives, what a record holds and how it is verified."""

from sqlalchemy import Engine

from archive.records import ArchiveRecord, ChainHead, Part, Verification
from archive.service import Archive, ArchivedCase, PurgeReport
from archive.stores import open_store
from config.settings import Settings


def open_archive(settings: Settings, engine: Engine) -> Archive:
    """The archive the settings name; `engine` is the project's database (holds live there)."""
    store = open_store(settings.archive, engine, settings.archive_s3_endpoint_url)
    return Archive(store, engine, settings.archive_keep_for)


__all__ = ["Archive", "ArchiveRecord", "ArchivedCase", "ChainHead", "Part", "PurgeReport", "Verification",
           "open_archive"]

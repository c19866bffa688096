"""Content-addressed evidence bodies.

The API asks the case whether it would take a body (`describe` says what the case checks),
stores it, then asks the case to record it; the row's key is the sha256 of the body's
canonical JSON, so a retried or repeated submission writes nothing new. Only a body whose
case changed between the question and the Update (a race) stays unreferenced: nobody can
read it, since bodies are read only through the evidence ids a case holds.
"""

import hashlib
import json
from datetime import UTC, datetime

from sqlalchemy import Engine, Text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Column, Field, Session, SQLModel, select

from database import reading
from workflows.models import PartySubmitEvidence, StoredEvidence


class EvidenceBody(PartySubmitEvidence):
    """What a party submitted: the text and its attachment references."""


class EvidenceRow(SQLModel, table=True):
    __tablename__ = "evidence_bodies"

    evidence_id: str = Field(primary_key=True, max_length=64)
    size: int
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


def _canonical(body: EvidenceBody) -> str:
    return json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def describe(body: EvidenceBody) -> StoredEvidence:
    """The body as the case records it, without storing it."""
    encoded = _canonical(body).encode()
    return StoredEvidence(evidence_id=hashlib.sha256(encoded).hexdigest(), size=len(encoded),
                          text_chars=len(body.text), attachments=len(body.attachments),
                          longest_url_chars=max((len(a.url) for a in body.attachments), default=0))


def store(engine: Engine, body: EvidenceBody) -> StoredEvidence:
    """Write the body (once) and describe it as the case records it."""
    canonical = _canonical(body)
    stored = describe(body)
    with Session(engine) as session:
        if session.get(EvidenceRow, stored.evidence_id) is None:
            session.add(EvidenceRow(evidence_id=stored.evidence_id, size=stored.size, body=canonical))
            try:
                session.commit()
            except IntegrityError:  # a concurrent submission of the same body wrote it first
                session.rollback()
    return stored


def read_bodies(engine: Engine, evidence_ids: list[str]) -> dict[str, EvidenceBody]:
    if not evidence_ids:
        return {}
    with reading(engine) as db:
        rows = db.exec(select(EvidenceRow).where(EvidenceRow.evidence_id.in_(evidence_ids))).all()
    return {row.evidence_id: EvidenceBody.model_validate_json(row.body) for row in rows}


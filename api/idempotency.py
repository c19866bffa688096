"""Idempotency-Key handling for requests that create resources outside Temporal.

A key is scoped to the caller and remembers which resource it created, so a retry
finds the same dispute instead of opening another one.
"""

import hashlib
import json
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel

from api.problems import Problem, problem_type
from database import reading, session
from identity import Actor


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_keys"

    caller: str = Field(primary_key=True, max_length=100)
    key: str = Field(primary_key=True, max_length=100)
    request_fingerprint: str = Field(max_length=64)
    resource_id: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


def fingerprint(operation: str, body: dict) -> str:
    canonical = json.dumps({"operation": operation, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def request_token(actor: Actor, key: str) -> str:
    """Names one caller's keyed request, the same on every retry of it."""
    return fingerprint("request", {"caller": _caller(actor), "key": key})


def _caller(actor: Actor) -> str:
    return f"{actor.role.value}:{actor.party_id}"


def recall(engine: Engine, actor: Actor, key: str, request_fingerprint: str) -> str | None:
    """The resource an earlier request with this key created, if any."""
    with reading(engine) as db:
        return recall_in(db, actor, key, request_fingerprint)


def recall_in(db: Session, actor: Actor, key: str, request_fingerprint: str) -> str | None:
    """`recall`, in the caller's transaction."""
    record = db.get(IdempotencyRecord, (_caller(actor), key))
    if record is None:
        return None
    if record.request_fingerprint != request_fingerprint:
        raise Problem(422, "Idempotency key reused", "This Idempotency-Key was used for a different request.",
                      type=problem_type("idempotency-key-reused"))
    return record.resource_id


def remember(engine: Engine, actor: Actor, key: str, request_fingerprint: str, resource_id: str) -> None:
    """Record that the key created `resource_id`, unless it is recorded already (for the same
    request: refused otherwise), in one transaction."""
    try:
        with session(engine) as db:
            if recall_in(db, actor, key, request_fingerprint) is None:
                remember_in(db, actor, key, request_fingerprint, resource_id)
    except IntegrityError:  # a concurrent retry claimed it first: it must be the same request
        recall(engine, actor, key, request_fingerprint)


def remember_in(db: Session, actor: Actor, key: str, request_fingerprint: str, resource_id: str) -> None:
    """Record the key in the caller's transaction; a concurrent claim of it makes the flush fail."""
    db.add(IdempotencyRecord(caller=_caller(actor), key=key, request_fingerprint=request_fingerprint,
                             resource_id=resource_id))
    db.flush()


def claim_action(engine: Engine, actor: Actor, key: str, request_fingerprint: str, case_id: str) -> str:
    """Take the key for this action on the case (refused if it named another request) and
    return the Update id it names, so a retry is answered with the first outcome."""
    remember(engine, actor, key, request_fingerprint, case_id)
    return f"{_caller(actor)}:{key}"

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, and_, func, or_, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from casebook.models import OpenCase
from database import reading, session
from workflows.models import CaseSnapshot, ReasonCategory

_INSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


@dataclass(frozen=True)
class QueueFilter:
    reason: ReasonCategory | None = None
    urgent: bool | None = None
    needs_senior: bool | None = None
    # Set: that mediator's own open cases instead of the cases awaiting a mediator.
    mediator_id: str | None = None


@dataclass(frozen=True)
class QueuePage:
    cases: list[OpenCase]
    # How many cases match the filter, on every page.
    total: int
    # Pass back to get the page after this one; None on the last page.
    next_cursor: str | None


class InvalidCursor(ValueError):
    pass


class Casebook:
    """The read model of cases: one row each, kept current by the cases' own notifications."""

    def __init__(self, engine: Engine):
        self._engine = engine

    def record(self, dispute_id: str, case: CaseSnapshot) -> None:
        with session(self._engine) as db:
            self.apply(db, dispute_id, case)

    @staticmethod
    def apply(db: Session, dispute_id: str, case: CaseSnapshot) -> None:
        """Write `case` unless the row already holds it or a later event: retries, replays and
        late deliveries of older notifications change nothing. One statement, so two at once
        cannot both insert."""
        values = _row(dispute_id, case)
        insert = _INSERT[db.get_bind().dialect.name](OpenCase).values(**values)
        table = OpenCase.__table__
        db.execute(insert.on_conflict_do_update(
            index_elements=[table.c.dispute_id],
            set_={name: insert.excluded[name] for name in values if name != "dispute_id"},
            where=table.c.seq < insert.excluded.seq,
        ))

    def case(self, dispute_id: str) -> OpenCase | None:
        with reading(self._engine) as db:
            return db.get(OpenCase, dispute_id)

    def open_dispute_ids(self) -> set[str]:
        with reading(self._engine) as db:
            return set(db.exec(select(OpenCase.dispute_id).where(OpenCase.closed.is_(False))))

    def mark_ended(self, dispute_id: str) -> None:
        """The case's workflow ended without closing the case (terminated, timed out): nobody
        can act on it any more, so it leaves every queue; its last known state stays."""
        with session(self._engine) as db:
            db.execute(update(OpenCase).where(OpenCase.dispute_id == dispute_id)
                       .values(closed=True, awaiting_mediator=False, recorded_at=datetime.now(UTC)))

    def queue(self, criteria: QueueFilter, *, limit: int, cursor: str | None = None) -> QueuePage:
        """Open cases by next SLA due time (none last), then dispute id, ordered before the cut."""
        matching = [OpenCase.closed.is_(False)]
        if criteria.mediator_id is not None:
            matching.append(OpenCase.mediator_id == criteria.mediator_id)
        else:
            matching.append(OpenCase.awaiting_mediator.is_(True))
        if criteria.reason is not None:
            matching.append(OpenCase.reason == criteria.reason.value)
        for column, value in ((OpenCase.urgent, criteria.urgent), (OpenCase.needs_senior, criteria.needs_senior)):
            if value is not None:
                matching.append(column.is_(value))
        page = select(OpenCase).where(*matching)
        if cursor is not None:
            page = page.where(_after(*_decode(cursor)))
        page = page.order_by(OpenCase.next_due_at.asc().nulls_last(), OpenCase.dispute_id).limit(limit + 1)
        with reading(self._engine) as db:
            cases = list(db.exec(page))
            total = db.exec(select(func.count()).select_from(OpenCase).where(*matching)).one()
        more = len(cases) > limit
        cases = cases[:limit]
        return QueuePage(cases=cases, total=total,
                         next_cursor=_encode(cases[-1].next_due_at, cases[-1].dispute_id) if more else None)


def _row(dispute_id: str, case: CaseSnapshot) -> dict:
    return {
        "dispute_id": dispute_id, "seq": case.seq, "order_id": case.order_id, "buyer_id": case.buyer_id,
        "seller_id": case.seller_id, "state": case.state.value, "reason": case.reason.value,
        "amount_requested": case.requested.amount, "currency": case.requested.currency,
        "opened_at": case.opened_at, "escalated_at": case.escalated_at, "urgent": case.urgent,
        "urgent_concern": case.urgent_concern.value if case.urgent_concern else None,
        "awaiting_mediator": case.awaiting_mediator, "needs_senior": case.needs_senior,
        "mediator_id": case.mediator_id, "next_due_at": case.next_due_at,
        "next_due_kind": case.next_due_kind.value if case.next_due_kind else None,
        "closed": case.state.is_terminal, "recorded_at": datetime.now(UTC),
    }


def _after(due: datetime | None, dispute_id: str):
    """Keyset: the rows after (due, dispute_id) in the queue's order, where no due time sorts last."""
    if due is None:
        return and_(OpenCase.next_due_at.is_(None), OpenCase.dispute_id > dispute_id)
    return or_(tuple_(OpenCase.next_due_at, OpenCase.dispute_id) > tuple_(due, dispute_id),
               OpenCase.next_due_at.is_(None))


def _encode(due: datetime | None, dispute_id: str) -> str:
    raw = json.dumps([due.isoformat() if due else None, dispute_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime | None, str]:
    try:
        due, dispute_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(dispute_id, str):
            raise TypeError
        return (datetime.fromisoformat(due).astimezone(UTC) if due is not None else None), dispute_id
    except (ValueError, TypeError) as error:
        raise InvalidCursor("the cursor is not one this queue handed out; start again without it") from error

"""Writing the projection: a case's facts into its row and its service levels, in the caller's
transaction (the notification activity's, beside the outbox message of the same event).

A row moves only to a newer event (`seq`), so a retried activity, a replayed workflow task or a
late delivery of an older notification changes nothing; a rebuild applies the same facts."""

from datetime import datetime

from sqlalchemy import delete, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from policy.model import Milestone
from reporting.facts import CaseFacts
from reporting.models import ReportCase, ReportSla

_INSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def row_of(dispute_id: str, facts: CaseFacts) -> dict:
    m = facts.milestones
    return dict(
        dispute_id=dispute_id, seq=facts.seq, order_id=facts.order_id, buyer_id=facts.buyer_id,
        seller_id=facts.seller_id, reason=facts.reason, urgent=facts.urgent, urgent_concern=facts.urgent_concern,
        currency=facts.currency, requested=facts.requested, refunded=facts.refunded, advanced=facts.advanced,
        state=facts.state, outcome=facts.outcome, decided_by=facts.decided_by, opened_at=facts.opened_at,
        seller_first_action_at=m.get(Milestone.SELLER_FIRST_ACTION),
        platform_first_action_at=m.get(Milestone.PLATFORM_FIRST_ACTION),
        escalated_at=m.get(Milestone.ESCALATED), escalations=facts.escalations, mediator_id=facts.mediator_id,
        taken_at=m.get(Milestone.MEDIATOR_TOOK), ruled_at=m.get(Milestone.RULED), closed_at=facts.closed_at,
        appealed_at=facts.appealed_at, appealed_by=facts.appealed_by.value if facts.appealed_by else None,
        appeal_result=facts.appeal_result,
    )


def project(db: Session, dispute_id: str, facts: CaseFacts) -> None:
    """Write `facts` unless the row already holds them or a later event's."""
    values = row_of(dispute_id, facts)
    statement = _INSERT[db.get_bind().dialect.name](ReportCase).values(**values)
    table = ReportCase.__table__
    written = db.execute(statement.on_conflict_do_update(
        index_elements=[table.c.dispute_id],
        set_={name: statement.excluded[name] for name in values if name != "dispute_id"},
        where=table.c.seq < statement.excluded.seq,
    ))
    if written.rowcount == 0:
        return  # an older or the same event: its service levels are already there too
    db.execute(delete(ReportSla).where(ReportSla.dispute_id == dispute_id))
    if facts.slas:
        db.execute(insert(ReportSla), [
            dict(id=f"{dispute_id}:{clock.name}", dispute_id=dispute_id, name=clock.name,
                 started_at=clock.started_at, due_at=clock.due_at, stopped_at=clock.stopped_at,
                 outcome=clock.outcome)
            for clock in facts.slas])


def mark_final(db: Session, dispute_id: str, final_at: datetime) -> None:
    db.execute(update(ReportCase).where(ReportCase.dispute_id == dispute_id).values(final_at=final_at))

"""The satisfaction survey: once a case is final its buyer and seller are invited (through the
notification outbox) to rate it 1-5 within the policy's `survey_window`; one answer each."""

from datetime import datetime

from sqlalchemy import Engine, update
from sqlmodel import Session

from database import session
from identity import Actor, Role
from notifications.models import OutboxMessage
from notifications.service import NotificationService
from policy import Policy
from reporting.models import ReportCase, SurveyInvitation
from reporting.projection import mark_final
from workflows.models import DisputeView


class SurveyRefused(Exception):
    status = 409
    slug = "survey-refused"


class NotAParty(SurveyRefused):
    status = 403
    slug = "survey-not-a-party"


class SurveyNotOpen(SurveyRefused):
    slug = "survey-not-open"


class SurveyAnswered(SurveyRefused):
    slug = "survey-already-answered"


class SurveyClosed(SurveyRefused):
    slug = "survey-closed"


SURVEYED = (Role.BUYER, Role.SELLER)


def invitation_id(dispute_id: str, role: Role) -> str:
    return f"{dispute_id}-survey-{role.value}"


def invitation_ids(dispute_id: str) -> list[str]:
    """The outbox messages a final case's survey sends (the audit trail lists them)."""
    return [invitation_id(dispute_id, role) for role in SURVEYED]


def case_final(db: Session, view: DisputeView, policy: Policy) -> None:
    """The case is final: record when, and invite its parties. Idempotent (retries, rebuilds)."""
    final_at = view.events[-1].at  # the close, or the appeal windows' closing after it
    mark_final(db, view.dispute_id, final_at)
    due_at = policy.due_at(final_at, policy.survey_window)
    for role, party in ((Role.BUYER, view.order.buyer_id), (Role.SELLER, view.order.seller_id)):
        message_id = invitation_id(view.dispute_id, role)
        if db.get(SurveyInvitation, message_id) is not None:
            continue
        db.add(SurveyInvitation(id=message_id, dispute_id=view.dispute_id, role=role.value, party_id=party,
                                due_at=due_at))
        NotificationService.add(db, OutboxMessage(
            id=message_id, dispute_id=view.dispute_id, recipient_role=role.value, recipient_id=party,
            kind="survey_invitation", subject=f"How did we handle dispute {view.dispute_id}? Rate it 1-5",
            data={"answer_at": f"/disputes/{view.dispute_id}/survey", "due_at": due_at.isoformat()},
        ))


def answer(engine: Engine, dispute_id: str, actor: Actor, rating: int, comment: str | None,
           now: datetime) -> SurveyInvitation:
    with session(engine) as db:
        invitation = db.get(SurveyInvitation, invitation_id(dispute_id, actor.role)) \
            if actor.role in SURVEYED else None
        if invitation is None or invitation.party_id != actor.party_id:
            case = db.get(ReportCase, dispute_id)
            if case is None or actor.party_id not in (case.buyer_id, case.seller_id) or invitation is not None:
                raise NotAParty(f"{actor.party_id} is not a party to {dispute_id}: only its buyer and seller "
                                "rate it")
            raise SurveyNotOpen(f"{dispute_id} is not final yet: its parties are invited once it is")
        if invitation.answered_at is not None:
            raise SurveyAnswered(f"the {actor.role.value} already rated {dispute_id} "
                                 f"at {invitation.answered_at.isoformat()}; one answer each")
        if now > invitation.due_at:
            raise SurveyClosed(f"the survey of {dispute_id} closed at {invitation.due_at.isoformat()}")
        # Conditional, so two answers at once cannot both be taken.
        taken = db.execute(update(SurveyInvitation).where(
            SurveyInvitation.id == invitation.id, SurveyInvitation.answered_at.is_(None),
        ).values(rating=rating, comment=comment, answered_at=now))
        if taken.rowcount != 1:
            raise SurveyAnswered(f"the {actor.role.value} already rated {dispute_id}; one answer each")
    invitation.rating, invitation.comment, invitation.answered_at = rating, comment, now  # detached: as stored
    return invitation

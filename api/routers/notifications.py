"""Operators' view of notification delivery: dead letters and re-sending them."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, field_validator
from starlette.concurrency import run_in_threadpool

from api.deps import ServicesDep, require_roles
from api.problems import PROBLEM_RESPONSES, Problem, problem_type
from identity import Actor, Role
from notifications.models import DeliveryStatus, OutboxMessage
from notifications.service import NotDeadLettered, UnknownNotification

router = APIRouter(prefix="/notifications", tags=["notifications"], responses=PROBLEM_RESPONSES)

PlatformActor = Annotated[Actor, Depends(require_roles(Role.PLATFORM))]
NotificationId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,200}$", description="e.g. dsp-ORD-1001-1-e2-buyer")]


class DeliveryPublic(BaseModel):
    """A message's delivery to the external channels; its content stays in the outbox."""

    id: str
    dispute_id: str
    recipient_role: str
    recipient_id: str
    kind: str
    status: DeliveryStatus
    delivered_to: list[str]
    attempts: int
    last_attempt_at: datetime | None
    # When the dispatcher tries it next; none once it is delivered or dead.
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime

    @field_validator("last_attempt_at", "next_attempt_at", "created_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # SQLite hands datetimes back without their (UTC) zone.
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class DeadLetterList(BaseModel):
    items: list[DeliveryPublic]
    count: int


def _public(message: OutboxMessage) -> DeliveryPublic:
    pending = message.status == DeliveryStatus.PENDING
    return DeliveryPublic.model_validate(message.model_dump() | {
        "delivered_to": message.delivered, "next_attempt_at": message.next_attempt_at if pending else None})


@router.get("/dead-letters", operation_id="list_dead_letters", response_model=DeadLetterList)
async def list_dead_letters(
    actor: PlatformActor,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> DeadLetterList:
    """Messages whose delivery failed `notification_max_attempts` times, oldest first;
    `count` is how many there are in all."""
    page, count = await run_in_threadpool(services.notifications.dead_letters, limit=limit, offset=offset)
    return DeadLetterList(items=[_public(m) for m in page], count=count)


@router.post("/{notification_id}/resend", operation_id="resend_notification", response_model=DeliveryPublic)
async def resend(notification_id: NotificationId, actor: PlatformActor, services: ServicesDep) -> DeliveryPublic:
    """Put a dead-lettered message back in the dispatcher's queue with a fresh set of attempts.
    It goes only to the channels that have not confirmed it; a message that is not dead is a 409."""
    try:
        message = await run_in_threadpool(services.notifications.resend, notification_id)
    except UnknownNotification as error:
        raise Problem(404, "Not found", str(error), type=problem_type("notification-not-found")) from error
    except NotDeadLettered as error:
        raise Problem(409, "Not dead-lettered", str(error), type=problem_type("notification-not-dead"),
                      delivery_status=error.status) from error
    return _public(message)

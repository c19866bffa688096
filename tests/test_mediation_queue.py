"""The mediators' queue: ordered by SLA due time before it is cut, paginated, and read from
the casebook, which the cases' own notifications keep current whatever order they arrive in."""

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import Engine, delete

from activities.notifications import NotificationActivities
from casebook.models import OpenCase
from casebook.rebuild import rebuild
from casebook.service import Casebook
from config.temporal import payload_value
from database import make_engine, migrate, session
from money import Money
from notifications.service import NotificationService
from tests.postgres import fresh_schema_engine, new_schema_name
from tests.support import BUYER, MEDIATOR, SELLER, Stack, eventually
from workflows.models import CaseSnapshot, DisputeState, Notifications, ReasonCategory


@pytest.fixture(params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)])
def own_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database of the test's own, so the queue holds exactly the cases the test opened."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path}/queue.db")
        migrate(engine)
        yield engine
        engine.dispose()
    else:
        with fresh_schema_engine(new_schema_name("df_queue")) as engine:
            yield engine


@pytest_asyncio.fixture
async def queue_stack(stack_factory, own_engine: Engine) -> AsyncIterator[Stack]:
    async with stack_factory(own_engine) as stack:
        yield stack


async def _escalate(stack: Stack, *, concern: str | None = None, reason: str = "quality") -> tuple[str, datetime]:
    """A case waiting for a mediator, and when its take SLA is due."""
    order_id = await stack.register_order()
    dispute_id = (await stack.open_dispute(order_id, reason=reason))["dispute_id"]
    await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "Item left us in perfect condition"})
    body = {"reason": "Seller ignores clear photos of the defect"} | ({"urgent_concern": concern} if concern else {})
    view = await stack.act(dispute_id, "buyer-escalate", BUYER, body)
    take = next(d for d in view["deadlines"] if d["kind"] == "mediator_take")
    return dispute_id, datetime.fromisoformat(take["due_at"])


async def _page(stack: Stack, query: str = "") -> dict:
    return await stack.ok("GET", f"/mediation/queue{query}", MEDIATOR)


async def _walk(stack: Stack, limit: int, filters: str = "") -> list[str]:
    """Every page of the queue, following next_cursor until there is none."""
    seen: list[str] = []
    page = await _page(stack, f"?limit={limit}{filters}")
    while True:
        assert len(page["items"]) <= limit
        seen += [item["dispute_id"] for item in page["items"]]
        if page["next_cursor"] is None:
            return seen
        page = await _page(stack, f"?limit={limit}&cursor={page['next_cursor']}{filters}")


async def _queued(stack: Stack, expected: set[str]) -> bool:
    return expected <= {item["dispute_id"] for item in (await _page(stack, "?limit=1000"))["items"]}


async def test_the_queue_is_ordered_by_sla_before_it_is_cut(queue_stack: Stack) -> None:
    stack = queue_stack
    # Opened oldest first: the oldest normal case is the most pressing of the normal ones,
    # and the urgent one opened last is due first of all (2 h against 2 working days).
    cases = [await _escalate(stack) for _ in range(4)] + [await _escalate(stack, concern="counterfeit")]
    by_sla = [dispute_id for dispute_id, due in sorted(cases, key=lambda c: (c[1], c[0]))]
    await eventually(lambda: _queued(stack, set(by_sla)), what="every case queued")

    first = await _page(stack, "?limit=2")
    assert [item["dispute_id"] for item in first["items"]] == by_sla[:2], "the most pressing SLAs come first"
    assert first["total"] == 5 and first["count"] == 2
    dues = [datetime.fromisoformat(item["next_deadline"]) for item in first["items"]]
    assert dues == sorted(due for _, due in cases)[:2]

    walked = await _walk(stack, limit=2)
    assert walked == by_sla, "pagination walks every case exactly once, in SLA order"
    assert await _walk(stack, limit=2, filters="&urgent=false") == [d for d in by_sla if d != cases[-1][0]]


async def test_taking_and_closing_move_cases_out_of_the_queue(queue_stack: Stack) -> None:
    stack = queue_stack
    taken, _ = await _escalate(stack, reason="damaged")
    withdrawn, _ = await _escalate(stack, reason="damaged")
    waiting, _ = await _escalate(stack, reason="wrong_item")
    await eventually(lambda: _queued(stack, {taken, withdrawn, waiting}), what="every case queued")

    await stack.act(taken, "mediator-take", MEDIATOR)
    await stack.act(withdrawn, "buyer-withdraw", BUYER, {"reason": "sorted it out with the seller"})

    async def only_waiting_queued() -> bool:
        return await _walk(stack, limit=1) == [waiting]

    # The casebook follows a change once the case has answered it and moved its money.
    await eventually(only_waiting_queued, what="the taken and the withdrawn case out of the queue")
    assert await _walk(stack, limit=5, filters="&reason=damaged") == []
    mine = await _page(stack, "?mine=true")
    assert [(i["dispute_id"], i["mediator_id"], i["awaiting_mediator"]) for i in mine["items"]] == [
        (taken, "mia", False)]
    bad = await stack.call("GET", "/mediation/queue?cursor=not-a-cursor", MEDIATOR)
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json", bad.text
    assert "cursor" in bad.json()["detail"]
    for limit in (0, 1001):
        assert (await stack.call("GET", f"/mediation/queue?limit={limit}", MEDIATOR)).status_code == 422
    assert (await _page(stack, "?limit=1000"))["total"] == 1


async def _recorded_changes(stack: Stack, dispute_id: str) -> list[Notifications]:
    """The notify_all activity's inputs exactly as Temporal recorded them in the case's history."""
    history = await stack.services.temporal.get_workflow_handle(dispute_id).fetch_history()
    found = []
    for event in history.events:
        scheduled = event.activity_task_scheduled_event_attributes
        if event.HasField("activity_task_scheduled_event_attributes") and scheduled.activity_type.name == "notify_all":
            [payload] = scheduled.input.payloads
            found.append(payload_value(payload, Notifications))
    return found


async def test_replayed_and_late_notifications_leave_the_row_alone(queue_stack: Stack, own_engine: Engine) -> None:
    stack = queue_stack
    dispute_id, _ = await _escalate(stack)
    await stack.act(dispute_id, "mediator-take", MEDIATOR)
    activities = NotificationActivities(NotificationService(own_engine),
                                        Casebook(own_engine))

    async def row() -> dict | None:
        mine = await _page(stack, "?mine=true")
        return next((i for i in mine["items"] if i["dispute_id"] == dispute_id), None)

    current = await eventually(row, what="the taken case in the mediator's own list")
    recorded = [c for c in await _recorded_changes(stack, dispute_id) if c.case is not None]
    escalation = [c for c in recorded if c.messages[0].data["event"] == "buyer_escalated"]
    assert escalation and recorded[-1].messages[0].data["event"] == "mediator_took", [
        c.messages[0].data for c in recorded]
    # A retry of the last activity, a zombie attempt of the escalation's, and the opening's
    # delivered last of all: none may put the taken case back in the queue.
    for change in (recorded[-1], escalation[0], recorded[0]):
        await asyncio.to_thread(activities.notify_all, change)
    assert await row() == current
    assert dispute_id not in await _walk(stack, limit=50)

    await stack.act(dispute_id, "buyer-withdraw", BUYER, {"reason": "sorted it out with the seller"})

    async def withdrawn() -> bool:
        return (await stack.services.temporal.get_workflow_handle(dispute_id).describe()).status.name == "COMPLETED"

    # Once the case has completed, its closing is in the casebook (it writes its changes first).
    await eventually(withdrawn, what="the withdrawn case completed")
    for change in recorded:
        await asyncio.to_thread(activities.notify_all, change)
    assert dispute_id not in await _walk(stack, limit=50)
    assert dispute_id not in {i["dispute_id"] for i in (await _page(stack, "?mine=true"))["items"]}


async def test_rebuild_brings_in_older_cases_and_retires_ended_ones(queue_stack: Stack, own_engine: Engine) -> None:
    stack = queue_stack
    from_before, _ = await _escalate(stack)
    terminated, _ = await _escalate(stack)
    await eventually(lambda: _queued(stack, {from_before, terminated}), what="both cases queued")
    # As if the first had been opened before the casebook existed, and the second were ended
    # from outside, where no notification can tell the casebook.
    with session(own_engine) as db:
        db.execute(delete(OpenCase).where(OpenCase.dispute_id == from_before))
    await stack.services.temporal.get_workflow_handle(terminated).terminate(reason="ended by an operator")
    assert await _walk(stack, limit=10) == [terminated]

    async def rebuilt() -> bool:
        report = await rebuild(stack.services.temporal, Casebook(own_engine),
                               visibility_filter=f"TaskQueue = '{stack.task_queue}'")
        return not report.unanswered and await _walk(stack, limit=10) == [from_before]

    await eventually(rebuilt, what="the rebuilt queue")
    assert Casebook(own_engine).case(terminated).closed


def test_the_newest_event_wins_whatever_order_and_concurrency(own_engine: Engine) -> None:
    casebook = Casebook(own_engine)
    opened = datetime.now(UTC)

    def snapshot(seq: int) -> CaseSnapshot:
        # Every odd event hands the case to a mediator, every even one puts it back in the queue.
        return CaseSnapshot(
            seq=seq, order_id="ORD-race", buyer_id="alice", seller_id="acme",
            state=DisputeState.PLATFORM_INTERVENING, reason=ReasonCategory.QUALITY,
            requested=Money(amount=10_000, currency="CNY"), opened_at=opened, escalated_at=opened,
            awaiting_mediator=seq % 2 == 0, mediator_id=f"mediator-{seq}" if seq % 2 else None,
            next_due_at=opened + timedelta(hours=seq))

    deliveries = [seq for seq in range(1, 31) for _ in range(3)]
    random.Random(9).shuffle(deliveries)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda seq: casebook.record("dsp-ORD-race-1", snapshot(seq)), deliveries))
    row = casebook.case("dsp-ORD-race-1")
    assert (row.seq, row.awaiting_mediator, row.mediator_id, row.next_due_at) == (
        30, True, None, opened + timedelta(hours=30))

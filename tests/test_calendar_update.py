"""Issue 9 item 11 end to end: deadlines counted past the calendar's coverage are marked,
/healthz warns before coverage ends, and an audited calendar update re-counts only the
deadlines it changes."""

from datetime import date, datetime, timedelta, timezone

from devstack.calendar_update import update_open_cases
from identity import Actor, Role
from policy import Policy, Window, WorkingCalendar, default_policy
from tests.support import BUYER, PLATFORM, SELLER, Stack, eventually

CST = timezone(timedelta(hours=8))


def _deadline(view: dict, kind: str) -> dict:
    return next(d for d in view["deadlines"] if d["kind"] == kind)


def _policies(stack: Stack) -> tuple[Policy, Policy]:
    """A policy whose calendar is published for ten more days, with a 30-working-day ruling
    SLA that reaches past it, and the same policy once the next days are published: one
    extra holiday on the first weekday after the old coverage."""
    today = datetime.now(CST).date()
    short = WorkingCalendar(name="TEST", utc_offset=timedelta(hours=8),
                            covers_from=today - timedelta(days=30), covers_to=today + timedelta(days=10))
    holiday = short.next_working_day(short.covers_to)
    longer = short.model_copy(update={"covers_to": today + timedelta(days=400), "holidays": (holiday,)})
    now_policy = stack.services.policy.model_copy(update={
        "version": "test-calendar.1", "calendar": WorkingCalendar.model_validate(short.model_dump()),
        "mediator_rule": Window.working(30)})
    next_policy = now_policy.model_copy(update={
        "version": "test-calendar.2", "calendar": WorkingCalendar.model_validate(longer.model_dump())})
    return now_policy, next_policy


async def _escalated(stack: Stack) -> tuple[str, dict]:
    order_id = await stack.register_order()
    dispute_id = (await stack.open_dispute(order_id))["dispute_id"]
    await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "Item left us in perfect condition"})
    view = await stack.act(dispute_id, "buyer-escalate", BUYER, {"reason": "Seller ignores clear photos"})
    return dispute_id, view


async def test_a_deadline_counted_past_the_calendar_coverage_is_marked(stack: Stack) -> None:
    stack.services.policy, _ = _policies(stack)
    dispute_id, view = await _escalated(stack)
    escalated_at = datetime.fromisoformat(view["intervention"]["escalated_at"])
    rule = _deadline(view, "mediator_rule")
    assert rule["past_calendar_coverage"] is True
    assert (datetime.fromisoformat(rule["counted_from"]), rule["working_days"]) == (escalated_at, 30)
    take = _deadline(view, "mediator_take")
    assert take["past_calendar_coverage"] is False and take["working_days"] == 2
    # Every reader sees it, the parties too.
    assert _deadline(await stack.dispute(dispute_id, BUYER), "mediator_rule")["past_calendar_coverage"] is True


async def test_calendar_update_recounts_only_deadlines_past_coverage_once(stack: Stack) -> None:
    stack.services.policy, extended = _policies(stack)
    dispute_id, before = await _escalated(stack)
    old_rule, old_take = _deadline(before, "mediator_rule"), _deadline(before, "mediator_take")

    stack.services.policy = extended
    after = await stack.act(dispute_id, "calendar-update", PLATFORM, {"policy_version": "test-calendar.2"})

    assert after["policy_version"] == "test-calendar.2"
    rule = _deadline(after, "mediator_rule")
    counted_from = datetime.fromisoformat(old_rule["counted_from"])
    expected = extended.calendar.add_working_days(counted_from, 30)
    assert datetime.fromisoformat(rule["due_at"]) == expected
    # The newly published holiday falls inside the count: one working day later.
    assert expected == extended.calendar.add_working_days(datetime.fromisoformat(old_rule["due_at"]), 1)
    assert rule["past_calendar_coverage"] is False and rule["counted_from"] == old_rule["counted_from"]
    assert _deadline(after, "mediator_take") == old_take  # counted inside the old coverage: untouched
    event = after["events"][-1]
    assert event["kind"] == "calendar_updated" and event["actor"]["role"] == "platform"
    moved = event["details"].pop("moved")
    assert event["details"] == {"from_policy": "test-calendar.1", "to_policy": "test-calendar.2",
                                "covers_to": extended.calendar.covers_to.isoformat()}
    assert [(m["deadline"], datetime.fromisoformat(m["from"]), datetime.fromisoformat(m["until"])) for m in moved] \
        == [("mediator_rule", datetime.fromisoformat(old_rule["due_at"]), expected)]

    async def notified() -> set[str]:
        return {m.recipient_id for m in stack.services.notifications.for_dispute(dispute_id)
                if m.data.get("event") == "calendar_updated"}

    # The change's messages are written together, after the answer.
    assert await eventually(notified, what="the recount's messages") == {"alice", "acme", "mediator-queue"}

    again = await stack.act(dispute_id, "calendar-update", PLATFORM, {"policy_version": "test-calendar.2"})
    assert again["deadlines"] == after["deadlines"] and len(again["events"]) == len(after["events"])
    assert [e["kind"] for e in (await stack.dispute(dispute_id))["events"]].count("calendar_updated") == 1


async def test_an_invalid_calendar_update_is_refused_and_changes_nothing(stack: Stack) -> None:
    stack.services.policy, extended = _policies(stack)
    dispute_id, _ = await _escalated(stack)
    before = await stack.dispute(dispute_id)
    path = f"/disputes/{dispute_id}/calendar-update"

    async def refused(token: str, body: dict, status: int, policy: Policy | None = None) -> dict:
        stack.services.policy = policy or extended
        response = await stack.call("POST", path, token, body)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        return response.json()

    await refused(BUYER, {"policy_version": "test-calendar.2"}, 403)
    assert "runs policy test-calendar.2" in (await refused(PLATFORM, {"policy_version": "cn-2099.1"}, 409))["detail"]
    await refused(PLATFORM, {"policy_version": "test-calendar.2", "extra": 1}, 422)
    other_window = extended.model_copy(update={"version": "test-calendar.3", "appeal": Window.days(11)})
    problem = await refused(PLATFORM, {"policy_version": "test-calendar.3"}, 422, other_window)
    assert "changes appeal, not only the calendar" in problem["detail"]
    shorter = extended.model_copy(update={"version": "test-calendar.4", "calendar": before_calendar(extended)})
    problem = await refused(PLATFORM, {"policy_version": "test-calendar.4"}, 422, shorter)
    assert "does not extend" in problem["detail"]
    assert await stack.dispute(dispute_id) == before


def before_calendar(policy: Policy) -> WorkingCalendar:
    """The extended calendar cut back to fewer days than the case's own."""
    calendar = policy.calendar
    return WorkingCalendar.model_validate(calendar.model_dump() | {
        "holidays": (), "covers_to": calendar.covers_from + timedelta(days=1)})


async def test_health_reports_calendar_coverage_and_warns_within_the_lead_time(stack: Stack) -> None:
    stack.services.policy, _ = _policies(stack)
    calendar = (await stack.ok("GET", "/healthz", None))["calendar"]
    covers_to = stack.services.policy.calendar.covers_to
    assert calendar["covers_to"] == covers_to.isoformat() and calendar["days_left"] == 10
    assert calendar["status"] == "expiring" and calendar["warn_within_days"] == 60
    assert calendar["policy_version"] == "test-calendar.1"
    stack.services.settings = stack.services.settings.model_copy(update={"calendar_warning_days": 10})
    assert (await stack.ok("GET", "/healthz", None))["calendar"]["status"] == "ok"
    assert date.fromisoformat(calendar["covers_to"]) == covers_to


async def test_the_cli_moves_every_open_case_of_the_task_queue_once(stack: Stack) -> None:
    stack.services.policy, extended = _policies(stack)
    flagged, _ = await _escalated(stack)
    order_id = await stack.register_order()
    waiting = (await stack.open_dispute(order_id))["dispute_id"]
    # A case on another policy, which the extended one does not extend: refused, untouched.
    stack.services.policy = default_policy()
    other = (await stack.open_dispute(await stack.register_order()))["dispute_id"]
    other_before = await stack.dispute(other)
    client, queue = stack.services.temporal, stack.task_queue

    async def listed() -> bool:
        query = f"WorkflowType = 'DisputeWorkflow' AND ExecutionStatus = 'Running' AND TaskQueue = '{queue}'"
        return len([e async for e in client.list_workflows(query)]) == 3

    await eventually(listed, what="three open cases visible")
    operator = Actor(role=Role.PLATFORM, party_id="marketplace")
    report = await update_open_cases(client, queue, extended, operator)
    assert sorted(report.updated) == sorted([flagged, waiting])
    assert report.moved == {flagged: 1}
    assert list(report.refused) == [other] and "not only the calendar" in report.refused[other]
    assert (await stack.dispute(waiting))["policy_version"] == "test-calendar.2"
    assert await stack.dispute(other) == other_before

    again = await update_open_cases(client, queue, extended, operator)
    assert sorted(again.updated) == sorted([flagged, waiting]) and again.moved == {flagged: 1}
    kinds = [e["kind"] for e in (await stack.dispute(flagged))["events"]]
    assert kinds.count("calendar_updated") == 1

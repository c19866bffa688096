"""The seller standing on the real dev server: class B's tiers and class A's repeating shield on
second-long penalties, a reset instant from policy, a violation delivered twice, and a standing
that continues as new and keeps counting."""

from datetime import UTC, datetime, timedelta

from complaints.models import StandingInput, Violation
from complaints.policy import ClassRule, PenaltyTier, Reset, StandingPolicy, ViolationClass
from complaints.standing import standing_id
from complaints.workflows import SellerStandingWorkflow
from tests.complaint_support import complaint_policy, file, new_seller, standing, wait_standing
from tests.support import ACTING_ROOM, PLATFORM, Stack, eventually


async def _deliver(stack: Stack, seller_id: str, policy: StandingPolicy, violation_id: str, points: int,
                   violation_class: ViolationClass = ViolationClass.A) -> None:
    """What the complaint's `deliver_violation` activity does: signal-with-start the standing."""
    violation = Violation(violation_id=violation_id, rule="fake_shipment", violation_class=violation_class,
                          points=points, at=datetime.now(UTC))
    await stack.services.temporal.start_workflow(
        SellerStandingWorkflow.run, StandingInput(seller_id=seller_id, policy=policy), id=standing_id(seller_id),
        task_queue=stack.task_queue, start_signal="deliver_violation", start_signal_args=[violation])


def _lasts(penalty: dict) -> timedelta | None:
    if penalty["ends_at"] is None:
        return None
    return datetime.fromisoformat(penalty["ends_at"]) - datetime.fromisoformat(penalty["started_at"])


async def test_class_b_tiers_from_upheld_complaints(stack: Stack) -> None:
    # Each seed "day" of a class B penalty lasts 0.5 s: 7 days is 3.5 s, 14 is 7 s, 21 is 10.5 s.
    stack.services.complaint_policy = complaint_policy(seller_response=1, b_day=0.5)
    seller = new_seller(stack)
    expected = {12: (["shop_shielded", "new_listings_restricted"], timedelta(seconds=3.5)),
                24: (["shop_shielded", "new_listings_restricted", "messaging_restricted", "community_restricted"],
                     timedelta(seconds=7)),
                36: (["all_goods_delisted", "shop_closed", "new_listings_restricted", "messaging_restricted",
                      "community_restricted"], timedelta(seconds=10.5)),
                48: (["permanent_ban"], None)}
    for points, (measures, lasts) in expected.items():
        order_id = await stack.register_order(seller=seller.party_id)
        await file(stack, order_id, "illegal_goods", token=PLATFORM)
        view = await wait_standing(stack, seller.party_id, lambda v, p=points: v["points"]["B"] == p,
                                   f"{points} class B points")
        [penalty] = [p for p in view["active_penalties"] + view["ended_penalties"] if p["threshold"] == points]
        assert (penalty["violation_class"], penalty["measures"], _lasts(penalty)) == ("B", measures, lasts)
    # Class B never resets by default; the first tier lifted on its own timer; the ban stays.
    view = await wait_standing(stack, seller.party_id, lambda v: v["ended_penalties"], "the 7-day tier to end")
    assert view["next_reset"]["B"] is None and view["ended_penalties"][0]["end_reason"] == "expired"
    assert view["ended_penalties"][0]["threshold"] == 12
    assert any(p["threshold"] == 48 and p["ends_at"] is None for p in view["active_penalties"])

    async def announced_ends() -> list:
        # The announcement is the standing's activity after the change its view already shows.
        return [m for m in stack.services.notifications.for_party("marketplace")
                if m.data.get("seller_id") == seller.party_id and m.kind == "penalty_ended"]

    ended = await eventually(announced_ends, what="the marketplace told the 7-day tier ended")
    assert ended[0].data["threshold"] == 12


async def test_class_a_shields_every_12_points_and_resets_at_the_policy_instant(stack: Stack) -> None:
    # The points reset ACTING_ROOM from now instead of at Chinese New Year's midnight; "12 days"
    # (a shield) is 18 s: room to see both shields before the reset, and after it both still
    # running while a third is imposed.
    reset_at = datetime.now(UTC) + timedelta(seconds=ACTING_ROOM)
    a_day = 1.5
    shield = 12 * timedelta(seconds=a_day)
    policy = complaint_policy(a_day=a_day).standing
    classes = {**policy.classes, ViolationClass.A: policy.classes[ViolationClass.A].model_copy(
        update={"reset": Reset(yearly=False, at=(reset_at,))})}
    policy = policy.model_copy(update={"classes": classes})
    seller = new_seller(stack).party_id
    for violation_id, points in (("v1", 6), ("v2", 6), ("v3", 12)):
        await _deliver(stack, seller, policy, violation_id, points)
    view = await wait_standing(stack, seller, lambda v: v["points"]["A"] == 24 and len(v["active_penalties"]) == 2,
                               "two shields at 12 and 24 points")
    assert [p["threshold"] for p in view["active_penalties"]] == [12, 24]
    assert all(_lasts(p) == shield for p in view["active_penalties"])
    assert datetime.fromisoformat(view["next_reset"]["A"]) == reset_at

    after = await wait_standing(stack, seller, lambda v: v["points"]["A"] == 0, "the reset")
    # The shields imposed before the reset run their term; a new period counts from zero.
    assert after["next_reset"]["A"] is None and len(after["active_penalties"]) == 2
    assert all(v["reset"] for v in after["violations"])
    await _deliver(stack, seller, policy, "v4", 12)
    again = await wait_standing(stack, seller, lambda v: v["points"]["A"] == 12 and len(v["active_penalties"]) == 3,
                                "a shield in the new period")
    assert again["active_penalties"][-1]["threshold"] == 12


def test_class_a_points_reset_at_midnight_china_time_each_new_year() -> None:
    reset = Reset()
    last_minute = datetime(2026, 12, 31, 15, 59, tzinfo=UTC)  # 23:59 in Beijing
    assert reset.next_after(last_minute) == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
    assert reset.next_after(datetime(2026, 12, 31, 16, 0, tzinfo=UTC)) == datetime(2027, 12, 31, 16, 0, tzinfo=UTC)
    every_12 = ClassRule(repeating=True, tiers=(PenaltyTier(points=12, measures=("shop_shielded",)),))
    assert [t for t, _ in every_12.crossed(10, 37)] == [12, 24, 36]
    assert every_12.crossed(12, 23) == []


async def test_a_violation_delivered_twice_counts_once_across_continue_as_new(stack: Stack) -> None:
    policy = complaint_policy().standing.model_copy(update={"history_events_per_run": 50})
    seller = new_seller(stack).party_id
    for n in range(1, 9):
        await _deliver(stack, seller, policy, f"v{n}", 1)
        await _deliver(stack, seller, policy, f"v{n}", 1)
        await wait_standing(stack, seller, lambda v, n=n: v["violations_total"] == n, f"{n} violations")
    handle = stack.services.temporal.get_workflow_handle(standing_id(seller))

    async def continued() -> bool:
        # At its first quiet point past the limit (a signal arriving meanwhile defers it).
        first = (await handle.fetch_history()).events[0]
        return bool(first.workflow_execution_started_event_attributes.continued_execution_run_id)

    await eventually(continued, what="the standing to continue as new")
    # The next run still knows v1: delivered once more, it counts for nothing.
    await _deliver(stack, seller, policy, "v1", 1)
    await _deliver(stack, seller, policy, "v9", 1)
    view = await wait_standing(stack, seller, lambda v: v["violations_total"] == 9, "the ninth violation")
    assert view["points"]["A"] == 9 and [v["violation_id"] for v in view["violations"]][-2:] == ["v8", "v9"]
    assert (await standing(stack, seller))["revision"] == view["revision"]

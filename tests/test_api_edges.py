"""The API at its edges: concurrent opens and closes, and input that used to answer 500."""

import asyncio
import time

import pytest
from temporalio.client import WorkflowExecutionStatus

from tests.support import AUDITOR, BUYER, PLATFORM, SELLER, Stack

PROBLEM = "application/problem+json"


def _open_body(order_id: str, amount: int) -> dict:
    return {"order_id": order_id, "kind": "refund_only", "reason": "quality",
            "amount": {"amount": amount, "currency": "CNY"}, "description": f"Claim of {amount}"}


async def test_two_concurrent_opens_without_a_key_one_wins_the_other_is_told_which_dispute_is_open(
        stack: Stack) -> None:
    # The race shows about one trial in five on old code; 25 trials miss it with p < 0.4%.
    for trial in range(25):
        order_id = await stack.register_order(amount=10_000)
        big, small = await asyncio.gather(
            stack.call("POST", "/disputes", BUYER, _open_body(order_id, 10_000)),
            stack.call("POST", "/disputes", BUYER, _open_body(order_id, 3_000)),
        )
        by_status = sorted([(big.status_code, big), (small.status_code, small)], key=lambda pair: pair[0])
        assert [status for status, _ in by_status] == [201, 409], f"trial {trial}: {big.text} / {small.text}"
        (_, winner), (_, loser) = by_status
        claimed = 10_000 if winner is big else 3_000
        assert winner.json()["request"]["amount"]["amount"] == claimed, f"trial {trial}: {winner.text}"
        assert winner.json()["escrow_frozen"]["amount"] == 10_000
        assert loser.headers["content-type"] == PROBLEM
        assert loser.json()["dispute_id"] == winner.json()["dispute_id"], loser.text


async def test_a_keyed_open_that_lost_the_race_stays_lost_on_retry(stack: Stack) -> None:
    """The loser's Idempotency-Key never answers with the winner's dispute as if it were its own."""
    for trial in range(10):
        order_id = await stack.register_order(amount=10_000)
        key = {"Idempotency-Key": f"open-{order_id}"}
        keyed, unkeyed = await asyncio.gather(
            stack.call("POST", "/disputes", BUYER, _open_body(order_id, 10_000), headers=key),
            stack.call("POST", "/disputes", BUYER, _open_body(order_id, 3_000)),
        )
        assert sorted([keyed.status_code, unkeyed.status_code]) == [201, 409], f"{keyed.text} / {unkeyed.text}"
        retried = await stack.call("POST", "/disputes", BUYER, _open_body(order_id, 10_000), headers=key)
        if keyed.status_code == 409:
            assert retried.status_code == 409, f"trial {trial}: lost, then {retried.text}"
        else:
            assert retried.status_code in (200, 201), f"trial {trial}: won, then {retried.text}"
            assert retried.json()["request"]["amount"]["amount"] == 10_000


async def test_actions_racing_the_close_are_409_dispute_closed_never_404(stack: Stack) -> None:
    """Ten agree-refunds and ten withdrawals at once, and withdrawals three at a time until the
    workflow has completed: those Temporal aborts as the workflow closes are 409 too. (On old
    code a trial answers 404 about one time in four.)"""
    for trial in range(12):
        order_id = await stack.register_order(amount=10_000)
        dispute_id = (await stack.open_dispute(order_id, amount=10_000))["dispute_id"]
        handle = stack.services.temporal.get_workflow_handle(dispute_id)
        racing = asyncio.gather(
            *[stack.call("POST", f"/disputes/{dispute_id}/seller-agree-refund", SELLER, {}) for _ in range(10)],
            *[stack.call("POST", f"/disputes/{dispute_id}/buyer-withdraw", BUYER, {}) for _ in range(10)],
        )
        late = []
        give_up = time.monotonic() + 120
        while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            assert time.monotonic() < give_up, f"trial {trial}: {dispute_id} still running"
            late += await asyncio.gather(*[stack.call("POST", f"/disputes/{dispute_id}/buyer-withdraw", BUYER, {})
                                           for _ in range(3)])
        responses = await racing + late
        assert 404 not in [r.status_code for r in responses], \
            f"trial {trial}: " + next(r.text for r in responses if r.status_code == 404)
        # Temporal takes only so many updates at once: the rest are told to retry.
        refused = [r for r in responses if r.status_code not in (200, 409)]
        assert all(r.status_code == 503 and "retry-after" in r.headers for r in refused), {r.text for r in refused}
        assert [r.status_code for r in responses].count(200) == 1
        assert all(r.headers["content-type"] == PROBLEM for r in responses if r.status_code != 200)
        winner = next(r for r in responses if r.status_code == 200).json()
        closed = await stack.wait_for_state(dispute_id, winner["state"])
        money = stack.money(order_id)
        assert money["escrow"] == 0 and money["escrow_pending"] == 0
        assert money["buyer_refunds"] == closed["refunded"]["amount"]
        assert money["buyer_refunds"] + money["seller_released"] == 10_000


def _assert_problem(response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == status


async def test_an_order_paid_nothing_is_refused_and_not_registered(stack: Stack) -> None:
    body = {"order_id": "ORD-zero-paid", "buyer_id": "alice", "seller_id": "acme",
            "paid": {"amount": 0, "currency": "CNY"}, "shipped": True}
    _assert_problem(await stack.call("POST", "/orders", PLATFORM, body), 422)
    _assert_problem(await stack.call("GET", "/orders/ORD-zero-paid", PLATFORM), 404)


async def test_an_unknown_account_kind_is_a_422(stack: Stack) -> None:
    _assert_problem(await stack.call("GET", "/ledger/accounts?kind=nonsense", AUDITOR), 422)


@pytest.mark.parametrize("instant", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
async def test_a_replay_filter_instant_outside_the_calendar_is_a_422(stack: Stack, instant: str) -> None:
    for field in ("started_after", "started_before"):
        response = await stack.call("POST", "/audit/replay", AUDITOR, {"filter": {field: instant}})
        _assert_problem(response, 422)


async def test_concurrent_registrations_of_one_order_with_different_amounts_one_wins_the_rest_conflict(
        stack: Stack) -> None:
    order_id = "ORD-raced-registration"
    bodies = [{"order_id": order_id, "buyer_id": "alice", "seller_id": "acme",
               "paid": {"amount": 1_000 + n, "currency": "CNY"}, "shipped": True} for n in range(20)]
    responses = await asyncio.gather(*[stack.call("POST", "/orders", PLATFORM, body) for body in bodies])
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 1 and statuses.count(409) == 19, [r.text for r in responses if r.status_code >= 500]
    winner = next(r for r in responses if r.status_code == 201).json()
    for response in responses:
        if response.status_code == 409:
            _assert_problem(response, 409)
    order = await stack.ok("GET", f"/orders/{order_id}", PLATFORM)
    assert order["paid"] == winner["paid"] and order["escrow"] == winner["paid"]

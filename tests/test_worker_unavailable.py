"""When no worker answers in time, the API says "try again" (503), as api/dispute_calls.py intends.

The wait is shortened from WORKER_ANSWER_TIMEOUT (20 s) to one second while no worker runs, and
restored for the retry: a worker back on a loaded machine may take longer than a second to answer.
"""

from datetime import timedelta

import pytest

from api import dispute_calls
from tests.support import BUYER, SELLER, Stack


class AnswerWait:
    """The API's wait for a worker's answer, shortened only while no worker runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self._monkeypatch = monkeypatch

    def shorten(self) -> None:
        self._monkeypatch.setattr(dispute_calls, "WORKER_ANSWER_TIMEOUT", timedelta(seconds=1))

    def restore(self) -> None:
        self._monkeypatch.undo()


@pytest.fixture
def answer_wait(monkeypatch: pytest.MonkeyPatch) -> AnswerWait:
    return AnswerWait(monkeypatch)


async def test_an_action_no_worker_answers_is_a_503_to_retry(stack: Stack, answer_wait: AnswerWait) -> None:
    order_id = await stack.register_order(amount=5_000)
    dispute_id = (await stack.open_dispute(order_id, amount=5_000))["dispute_id"]
    await stack.stop_worker()
    answer_wait.shorten()
    response = await stack.call("POST", f"/disputes/{dispute_id}/seller-refuse", SELLER, {"reason": "No"},
                                headers={"Idempotency-Key": "refuse-1"})
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    # The retry the answer asks for, once a worker is back, is the same action, done once.
    await stack.start_worker()
    answer_wait.restore()
    retried = await stack.call("POST", f"/disputes/{dispute_id}/seller-refuse", SELLER, {"reason": "No"},
                               headers={"Idempotency-Key": "refuse-1"})
    assert retried.status_code == 200, retried.text
    assert [e["kind"] for e in retried.json()["events"]].count("seller_refused") == 1


async def test_an_opening_no_worker_answers_is_a_503_to_retry(stack: Stack, answer_wait: AnswerWait) -> None:
    order_id = await stack.register_order(amount=5_000)
    await stack.stop_worker()
    answer_wait.shorten()
    body = {"order_id": order_id, "kind": "refund_only", "reason": "quality",
            "amount": {"amount": 5_000, "currency": "CNY"}, "description": "Leaks"}
    headers = {"Idempotency-Key": f"open-{order_id}"}
    response = await stack.call("POST", "/disputes", BUYER, body, headers=headers)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    await stack.start_worker()
    answer_wait.restore()
    retried = await stack.call("POST", "/disputes", BUYER, body, headers=headers)
    assert retried.status_code in (200, 201), retried.text
    assert retried.json()["escrow_frozen"]["amount"] == 5_000


async def test_a_reservation_whose_dispute_never_started_is_taken_over(stack: Stack) -> None:
    """Temporal was unreachable after the order was reserved: the next opening takes it over."""
    order_id = await stack.register_order(amount=5_000)
    orphan = stack.services.orders.reserve_dispute(order_id)
    opened = await stack.open_dispute(order_id, amount=5_000)
    assert opened["dispute_id"] == orphan
    assert opened["escrow_frozen"]["amount"] == 5_000
    again = await stack.call("POST", "/disputes", BUYER, {
        "order_id": order_id, "kind": "refund_only", "reason": "quality",
        "amount": {"amount": 5_000, "currency": "CNY"}, "description": "Leaks"})
    assert again.status_code == 409 and again.json()["dispute_id"] == orphan

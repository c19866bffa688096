"""`Prefer: return=minimal` (RFC 7240) on opening and acting: the small answer the Update gave,
the same state, allowed actions and deadlines as the view, and no read of the case behind it."""

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.support import BUYER, SELLER, Stack
from tests.test_worker_unavailable import AnswerWait

MINIMAL = {"Prefer": "return=minimal"}
SMALL_FIELDS = {"dispute_id", "state", "event_seq", "allowed_actions", "deadlines"}


def _open_body(order_id: str) -> dict:
    return {"order_id": order_id, "kind": "refund_only", "reason": "quality",
            "amount": {"amount": 10_000, "currency": "CNY"}, "description": "The kettle leaks."}


def _small_of(view: dict) -> dict:
    """What the small answer says of a case, read from its view."""
    return {"dispute_id": view["dispute_id"], "state": view["state"], "event_seq": view["events_total"],
            "allowed_actions": view["allowed_actions"],
            "deadlines": [{key: d[key] for key in ("kind", "role", "party_id", "due_at")} for d in view["deadlines"]]}


@contextmanager
def _rpcs(stack: Stack) -> Iterator[Counter]:
    """Counts the describes and queries the API sends Temporal while inside."""
    service = stack.services.temporal.workflow_service
    counted: Counter = Counter()
    originals = {name: getattr(service, name) for name in ("describe_workflow_execution", "query_workflow")}

    def counting(name: str, call: Any) -> Any:
        async def send(*args: Any, **kwargs: Any) -> Any:
            counted[name] += 1
            return await call(*args, **kwargs)
        return send

    for name, call in originals.items():
        setattr(service, name, counting(name, call))
    try:
        yield counted
    finally:
        for name, call in originals.items():
            setattr(service, name, call)


async def test_open_minimal_is_the_views_small_answer_without_a_describe_or_a_query(stack: Stack) -> None:
    order_id = await stack.register_order()
    with _rpcs(stack) as rpcs:
        response = await stack.call("POST", "/disputes", BUYER, _open_body(order_id), headers=MINIMAL)
    assert response.status_code == 201, response.text
    assert response.headers["Preference-Applied"] == "return=minimal"
    small = response.json()
    assert response.headers["Location"] == f"/disputes/{small['dispute_id']}"
    assert set(small) == SMALL_FIELDS
    assert rpcs == Counter()
    view = await stack.dispute(small["dispute_id"])
    assert small == _small_of(view)
    assert small["state"] == "WAIT_SELLER_AGREE"
    assert [d["kind"] for d in small["deadlines"]] == ["seller_response"]
    assert small["allowed_actions"]["seller"] == view["allowed_actions"]["seller"] != []


async def test_open_without_the_preference_is_the_view_with_one_query_and_no_describe(stack: Stack) -> None:
    order_id = await stack.register_order()
    with _rpcs(stack) as rpcs:
        response = await stack.call("POST", "/disputes", BUYER, _open_body(order_id),
                                    headers={"Prefer": "return=representation"})
    assert response.status_code == 201, response.text
    assert "Preference-Applied" not in response.headers
    assert rpcs == Counter({"query_workflow": 1})
    full = response.json()
    assert full["escrow_frozen"] == {"amount": 10_000, "currency": "CNY"}
    assert _small_of(full) == _small_of(await stack.dispute(full["dispute_id"]))


async def test_a_retried_keyed_open_with_return_minimal_answers_the_same(stack: Stack) -> None:
    order_id = await stack.register_order()
    headers = {**MINIMAL, "Idempotency-Key": f"open-{order_id}"}
    first = await stack.ok("POST", "/disputes", BUYER, _open_body(order_id), headers=headers, status=201)
    with _rpcs(stack) as rpcs:
        again = await stack.call("POST", "/disputes", BUYER, _open_body(order_id), headers=headers)
    assert again.status_code == 201, again.text
    assert again.json() == first
    assert rpcs == Counter()


async def test_an_action_minimal_and_full_say_the_same_as_the_view(stack: Stack) -> None:
    order_id = await stack.register_order()
    dispute_id = (await stack.open_dispute(order_id))["dispute_id"]
    path = f"/disputes/{dispute_id}/seller-refuse"
    # Several preferences, the return one among them (RFC 7240's list form).
    with _rpcs(stack) as rpcs:
        response = await stack.call("POST", path, SELLER, {"reason": "Nothing wrong with it"},
                                    headers={"Prefer": "respond-async, return=minimal; x=1",
                                             "Idempotency-Key": f"refuse-{dispute_id}"})
    assert response.status_code == 200, response.text
    assert response.headers["Preference-Applied"] == "return=minimal"
    assert rpcs == Counter()
    small = response.json()
    view = await stack.dispute(dispute_id)
    assert small == _small_of(view)
    assert small["state"] == "SELLER_REFUSED"
    assert [d["kind"] for d in small["deadlines"]] == ["buyer_response_after_refusal"]
    assert [(d["role"], d["party_id"]) for d in small["deadlines"]] == [("buyer", "alice")]
    # The same key again: the first answer, as the full view when asked without the preference.
    again = await stack.ok("POST", path, SELLER, {"reason": "Nothing wrong with it"},
                           headers={"Idempotency-Key": f"refuse-{dispute_id}"})
    assert _small_of(again) == small


async def test_a_refused_action_is_the_same_problem_with_or_without_the_preference(stack: Stack) -> None:
    order_id = await stack.register_order()
    dispute_id = (await stack.open_dispute(order_id))["dispute_id"]
    await stack.act(dispute_id, "seller-agree-refund", SELLER)
    path = f"/disputes/{dispute_id}/seller-refuse"
    answers = [await stack.call("POST", path, SELLER, {"reason": "Too late"}, headers=headers)
               for headers in (MINIMAL, {})]
    for response in answers:
        assert response.status_code == 409, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "Preference-Applied" not in response.headers
    assert answers[0].json() == answers[1].json()
    # From the wrong party, too.
    wrong = await stack.call("POST", f"/disputes/{dispute_id}/buyer-withdraw", SELLER, {}, headers=MINIMAL)
    assert wrong.status_code == 403, wrong.text
    assert "Preference-Applied" not in wrong.headers


async def test_a_minimal_action_no_worker_answers_is_a_503_and_its_retry_acts_once(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    order_id = await stack.register_order()
    dispute_id = (await stack.open_dispute(order_id))["dispute_id"]
    path = f"/disputes/{dispute_id}/seller-refuse"
    headers = {**MINIMAL, "Idempotency-Key": f"refuse-{dispute_id}"}
    await stack.stop_worker()
    answer_wait = AnswerWait(monkeypatch)
    answer_wait.shorten()
    response = await stack.call("POST", path, SELLER, {"reason": "No"}, headers=headers)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    await stack.start_worker()
    answer_wait.restore()
    retried = await stack.call("POST", path, SELLER, {"reason": "No"}, headers=headers)
    assert retried.status_code == 200, retried.text
    assert retried.headers["Preference-Applied"] == "return=minimal"
    view = await stack.dispute(dispute_id)
    assert retried.json() == _small_of(view)
    assert [e["kind"] for e in view["events"]].count("seller_refused") == 1

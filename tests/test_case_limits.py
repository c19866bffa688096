"""A case stays bounded whatever its parties send: every limit is refused with a 422 naming it,
nothing refused changes the case, and a case driven to every limit still closes normally."""

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from temporalio.api.enums.v1 import EventType

from audit import history as histories
from devstack import cli
from ledger import accounts
from policy import Window
from workflows.dispute import DisputeWorkflow
from tests.support import AUDITOR, BUYER, MEDIATOR, OTHER_BUYER, PLATFORM, SELLER, Stack, eventually


def _limits(stack: Stack):
    return getattr(stack.services.policy, "limits", None)


def _largest_evidence(stack: Stack, n: int) -> dict:
    limits = _limits(stack)
    attachments = limits.attachments_per_submission if limits else 20
    url_chars = limits.attachment_url_chars if limits else 2000
    text_chars = limits.evidence_text_chars if limits else 2000
    return {
        "text": (f"{n:04d} " + "x" * text_chars)[:text_chars],
        "attachments": [{"url": (f"https://files.example/{n}/{i}/" + "a" * url_chars)[:url_chars]}
                        for i in range(attachments)],
    }


async def _escalated(stack: Stack) -> tuple[str, str]:
    order_id = await stack.register_order(amount=10_000)
    dispute_id = (await stack.open_dispute(order_id, amount=10_000))["dispute_id"]
    await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "Item left us in perfect condition"})
    await stack.act(dispute_id, "buyer-escalate", BUYER, {"reason": "Seller ignores clear photos"})
    return order_id, dispute_id


async def test_one_party_cannot_brick_a_case(stack: Stack) -> None:
    """Issue 9 item 5: the largest accepted evidence, again and again, until a limit refuses it."""
    order_id, dispute_id = await _escalated(stack)
    refused = None
    for n in range(60):
        response = await stack.call("POST", f"/disputes/{dispute_id}/party-submit-evidence", BUYER,
                                    _largest_evidence(stack, n))
        assert response.status_code in (200, 422), f"submission {n + 1}: {response.status_code} {response.text}"
        if response.status_code == 422:
            refused = response.json()
            break
    assert refused is not None, "no limit refused 60 maximal submissions"
    assert "limit" in refused["detail"]
    view = await stack.call("GET", f"/disputes/{dispute_id}", PLATFORM)
    assert view.status_code == 200, view.text
    await stack.act(dispute_id, "mediator-take", MEDIATOR)
    await stack.act(dispute_id, "mediator-rule", MEDIATOR,
                    {"decision": "partial_refund", "amount": {"amount": 4000, "currency": "CNY"},
                     "rationale": "Defect shown on the evidence"})
    closed = await stack.wait_for_state(dispute_id, "SUCCESS")
    assert closed["refunded"] == {"amount": 4000, "currency": "CNY"}
    assert stack.money(order_id)["buyer_refunds"] == 4000


NOAH = "dev-mediator-noah"
SENIOR = "dev-senior-sam"


def _set_limits(stack: Stack, **limits: int) -> None:
    policy = stack.services.policy
    stack.services.policy = policy.model_copy(update={"limits": policy.limits.model_copy(update=limits)})


async def _refused(stack: Stack, dispute_id: str, action: str, token: str, body: dict, limit: str) -> dict:
    """One past `limit`: a 422 problem naming it, and the case exactly as it was."""
    before = await stack.dispute(dispute_id)
    response = await stack.call("POST", f"/disputes/{dispute_id}/{action}", token, body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["limit"] == limit and f"limit {limit} = {problem['max']}" in problem["detail"], problem
    assert await stack.dispute(dispute_id) == before
    return problem


def _evidence(text: str, attachments: int = 0, url_chars: int = 40) -> dict:
    return {"text": text, "attachments": [{"url": (f"https://files.example/{text[:8]}/{i}/" + "u" * url_chars)[:url_chars]}
                                          for i in range(attachments)]}


async def test_a_case_driven_to_every_limit_still_closes_normally(stack: Stack) -> None:
    _set_limits(stack, evidence_submissions_per_party=4, attachments_per_submission=2, evidence_text_chars=100,
                attachment_url_chars=200, evidence_bytes_per_case=2_000, evidence_requests_per_party=1,
                deadline_extensions=1, hand_overs=1, escalations=1)
    order_id = await stack.register_order(amount=10_000)
    too_many = await stack.call("POST", "/disputes", BUYER, {
        "order_id": order_id, "kind": "return_and_refund", "reason": "quality",
        "amount": {"amount": 10_000, "currency": "CNY"}, "description": "Leaks",
        "evidence": _evidence("opening", attachments=3)["attachments"]})
    assert too_many.status_code == 422 and too_many.json()["limit"] == "attachments_per_submission", too_many.text
    assert (await stack.ok("GET", f"/disputes?order_id={order_id}", PLATFORM))["items"] == []
    dispute_id = (await stack.open_dispute(order_id, amount=10_000, kind="return_and_refund"))["dispute_id"]
    await _refused(stack, dispute_id, "seller-refuse", SELLER,
                   {"reason": "No", "evidence": _evidence("refusal", attachments=3)["attachments"]},
                   "attachments_per_submission")
    await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "Item left us in perfect condition"})
    await stack.act(dispute_id, "buyer-escalate", BUYER, {"reason": "Seller ignores clear photos"})
    await stack.act(dispute_id, "mediator-take", MEDIATOR)

    # Evidence requests: one per party.
    await stack.act(dispute_id, "mediator-request-evidence", MEDIATOR, {"party": "seller", "request": "Photos"})
    await stack.act(dispute_id, "party-submit-evidence", SELLER, _evidence("seller 1"))
    await _refused(stack, dispute_id, "mediator-request-evidence", MEDIATOR, {"party": "seller", "request": "More"},
                   "evidence_requests_per_party")
    # Deadline extensions: one per case.
    requested = await stack.act(dispute_id, "mediator-request-evidence", MEDIATOR,
                                {"party": "buyer", "request": "Video"})
    due = datetime.fromisoformat(next(d for d in requested["deadlines"] if d["kind"] == "buyer_evidence")["due_at"])
    await stack.act(dispute_id, "mediator-extend-deadline", MEDIATOR, {
        "deadline": "buyer_evidence", "until": (due + timedelta(hours=1)).isoformat(), "reason": "Courier strike"})
    await _refused(stack, dispute_id, "mediator-extend-deadline", MEDIATOR, {
        "deadline": "buyer_evidence", "until": (due + timedelta(hours=2)).isoformat(), "reason": "Again"},
        "deadline_extensions")

    # Evidence submissions per party, and what one submission may carry.
    for n in range(2, 5):
        await stack.act(dispute_id, "party-submit-evidence", SELLER, _evidence(f"seller {n}"))
    await _refused(stack, dispute_id, "party-submit-evidence", SELLER, _evidence("seller 5"),
                   "evidence_submissions_per_party")
    await _refused(stack, dispute_id, "party-submit-evidence", BUYER, _evidence("b" * 101), "evidence_text_chars")
    await _refused(stack, dispute_id, "party-submit-evidence", BUYER, _evidence("buyer", attachments=3),
                   "attachments_per_submission")
    await _refused(stack, dispute_id, "party-submit-evidence", BUYER, _evidence("buyer", 1, url_chars=201),
                   "attachment_url_chars")
    # Evidence bytes per case: the largest accepted submissions until the total would pass it.
    largest = [_evidence(f"buyer {n} " + "b" * 100, attachments=2, url_chars=200) for n in range(4)]
    for n, body in enumerate(largest):
        body["text"] = body["text"][:100]
        response = await stack.call("POST", f"/disputes/{dispute_id}/party-submit-evidence", BUYER, body)
        if response.status_code != 200:
            break
    assert n < 4 and response.status_code == 422, response.text
    await _refused(stack, dispute_id, "party-submit-evidence", BUYER, largest[n], "evidence_bytes_per_case")

    # The evidence bodies, a page at a time, for the parties and staff only.
    view = await stack.dispute(dispute_id)
    submitted = view["intervention"]["evidence"]
    assert [e["text"] for e in submitted[:4]] == [f"seller {n}" for n in range(1, 5)]
    assert all(e["evidence_id"] and e["size"] > 0 for e in submitted)
    page = await stack.ok("GET", f"/disputes/{dispute_id}/evidence?offset=3&limit=2", BUYER)
    assert page["total"] == len(submitted) and [e["seq"] for e in page["items"]] == [4, 5]
    assert page["items"] == submitted[3:5]
    assert (await stack.call("GET", f"/disputes/{dispute_id}/evidence", OTHER_BUYER)).status_code == 403

    # Hand-overs: one per case.
    await stack.act(dispute_id, "mediator-hand-over", MEDIATOR, {"to_mediator_id": "noah", "reason": "Leave"})
    await _refused(stack, dispute_id, "mediator-hand-over", NOAH, {"to_mediator_id": "mia", "reason": "Back"},
                   "hand_overs")
    # Escalations: one per case, so the seller's report of the return closes nothing by itself.
    await stack.act(dispute_id, "mediator-rule", NOAH, {"decision": "refund_after_return", "rationale": "Return it",
                                                         "return_address": "Returns desk, 1 Warehouse Rd"})
    await stack.act(dispute_id, "buyer-ship-return", BUYER, {"carrier": "SF", "tracking_number": "SF00112233"})
    await _refused(stack, dispute_id, "seller-report-return-problem", SELLER,
                   {"problem": "damaged", "description": "Dented"}, "escalations")

    await stack.act(dispute_id, "seller-confirm-return", SELLER)
    closed = await stack.wait_for_state(dispute_id, "SUCCESS")
    assert closed["refunded"] == {"amount": 10_000, "currency": "CNY"}
    assert stack.money(order_id) == {"escrow": 0, "escrow_pending": 0, "buyer_refunds": 10_000,
                                     "seller_released": 0}


async def test_a_long_case_continues_as_new_and_keeps_everything(
        stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A short history threshold forces continue-as-new: the timers, deadlines, keyed actions,
    money and the audit tools carry on across the run boundary."""
    _set_limits(stack, history_events_per_run=100)
    stack.set_windows(evidence_response=Window.seconds(40), evidence_response_after_buyer=Window.seconds(40))
    order_id, dispute_id = await _escalated(stack)
    await stack.act(dispute_id, "mediator-take", MEDIATOR)
    requested = await stack.act(dispute_id, "mediator-request-evidence", MEDIATOR,
                                {"party": "seller", "request": "Dispatch photos"})
    seller_due = next(d for d in requested["deadlines"] if d["kind"] == "seller_evidence")
    rule_due = next(d for d in requested["deadlines"] if d["kind"] == "mediator_rule")
    keyed = {"Idempotency-Key": "evidence-1"}
    path = f"/disputes/{dispute_id}/party-submit-evidence"
    first = await stack.ok("POST", path, BUYER, _evidence("buyer 1"), headers=keyed)

    async def runs() -> list:
        return await histories.fetch_runs(stack.services.temporal, dispute_id)

    for n in range(2, 21):
        if len(await runs()) > 1:
            break
        await stack.act(dispute_id, "party-submit-evidence", BUYER, _evidence(f"buyer {n}"))
    chain = await eventually(lambda: _more_than_one(runs), what="a second run")
    assert chain[0].events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW

    view = await stack.dispute(dispute_id)
    assert view["state"] == "PLATFORM_INTERVENING" and view["intervention"]["mediator_id"] == "mia"
    assert next(d for d in view["deadlines"] if d["kind"] == "mediator_rule") == rule_due
    assert next(d for d in view["deadlines"] if d["kind"] == "seller_evidence")["due_at"] <= seller_due["due_at"]
    assert [e["seq"] for e in view["events"]] == list(range(view["events_total"] - len(view["events"]) + 1,
                                                            view["events_total"] + 1))
    # The keyed action of the first run, retried in the second: its answer again, nothing new.
    again = await stack.ok("POST", path, BUYER, _evidence("buyer 1"), headers=keyed)
    assert again["events_total"] == view["events_total"]
    assert len(again["intervention"]["evidence"]) == len(view["intervention"]["evidence"])
    assert again["intervention"]["evidence"][0] == first["intervention"]["evidence"][0]
    # The seller's evidence timer, set in the first run, fires in the second.
    missed = await eventually(lambda: _event(stack, dispute_id, "evidence_missed"), timeout=90,
                              what="the seller's evidence deadline to lapse")
    assert missed["timer"] == "seller_evidence"

    await stack.act(dispute_id, "mediator-rule", MEDIATOR,
                    {"decision": "partial_refund", "amount": {"amount": 4000, "currency": "CNY"},
                     "rationale": "Defect shown on the evidence"})
    closed = await stack.wait_for_state(dispute_id, "SUCCESS")
    assert closed["refunded"] == {"amount": 4000, "currency": "CNY"}
    assert stack.money(order_id) == {"escrow": 0, "escrow_pending": 0, "buyer_refunds": 4000,
                                     "seller_released": 6000}

    async def listed() -> list[str] | None:
        # The list is visibility's, which follows the case's state shortly.
        states = [d["state"] for d in (await stack.ok("GET", f"/disputes?order_id={order_id}", PLATFORM))["items"]]
        return states if states == ["SUCCESS"] else None

    await eventually(listed, what="the case listed once, in SUCCESS")

    # Export, trail and replay cover every run. The histories compared below are read apart: the
    # case is quiet first (the ruling's messages are written after its money has settled).
    await stack.wait_until_quiet(dispute_id)
    chain = await runs()
    exported = await stack.ok("GET", f"/audit/disputes/{dispute_id}/history", AUDITOR)
    assert [len(run["events"]) for run in exported["runs"]] == [len(run.events) for run in chain]
    trail = await stack.ok("GET", f"/audit/disputes/{dispute_id}/trail", AUDITOR)
    assert trail["runs"] == [run.run_id for run in chain]
    assert {e["run_id"] for e in trail["entries"]} == set(trail["runs"])
    assert trail["opened_by"]["party_id"] == "alice" and "continued" in [e["category"] for e in trail["entries"]]
    assert any(e["name"] == "mediator_rule" for e in trail["entries"] if e["run_id"] == chain[-1].run_id)
    report = await stack.ok("POST", "/audit/replay", AUDITOR, {"dispute_ids": [dispute_id]})
    assert report["ok"] and report["replayed"] == len(chain) >= 2, report
    # The CLI's export is read back by its trail and offline replay, every run.
    connection = ["--address", stack.services.temporal.service_client.config.target_host,
                  "--namespace", stack.services.temporal.namespace]
    exported_file = tmp_path / f"{dispute_id}.json"
    assert await asyncio.to_thread(cli.main, ["audit", "export", dispute_id, "-o", str(exported_file), *connection]) == 0
    assert [len(run.events) for run in histories.read_runs(exported_file)] == [len(run.events) for run in chain]
    capsys.readouterr()
    assert await asyncio.to_thread(cli.main, ["audit", "trail", "--history", str(exported_file)]) == 0
    assert ", ".join(run.run_id for run in chain) in capsys.readouterr().out
    assert await asyncio.to_thread(cli.main, ["audit", "replay", "--histories", str(exported_file)]) == 0
    assert f"{len(chain)} replayed" in capsys.readouterr().out


async def _more_than_one(runs) -> list | None:
    chain = await runs()
    return chain if len(chain) > 1 else None


async def _event(stack: Stack, dispute_id: str, kind: str) -> dict | None:
    view = await stack.dispute(dispute_id)
    return next((e for e in view["events"] if e["kind"] == kind), None)


async def test_the_longest_case_the_policy_allows_stays_well_inside_temporals_limits(stack: Stack) -> None:
    """Every repeatable action to its default limit, with the largest bodies accepted: each run's
    history and every payload stay far below Temporal's limits (2 MiB per payload; 51,200 events
    and 50 MiB per history, with warnings from 10,240 events and 10 MiB)."""
    limits = stack.services.policy.limits
    attachments = [{"url": (f"https://files.example/{i}/" + "a" * 2000)[:limits.attachment_url_chars]}
                   for i in range(limits.attachments_per_submission)]
    order_id = await stack.register_order(amount=10_000)
    opened = await stack.ok("POST", "/disputes", BUYER, {
        "order_id": order_id, "kind": "refund_only", "reason": "quality", "amount": {"amount": 10_000, "currency": "CNY"},
        "description": "d" * 2000, "evidence": attachments}, status=201)
    dispute_id = opened["dispute_id"]
    request = {"kind": "refund_only", "reason": "quality", "amount": {"amount": 9_000, "currency": "CNY"},
               "description": "r" * 2000, "evidence": attachments}
    for _ in range(stack.services.policy.max_resubmissions):
        await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "n" * 2000, "evidence": attachments})
        await stack.act(dispute_id, "buyer-revise", BUYER, {"request": request})
    await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "n" * 2000, "evidence": attachments})
    await stack.act(dispute_id, "buyer-escalate", BUYER, {"reason": "e" * 2000, "evidence": attachments})
    await stack.act(dispute_id, "mediator-take", MEDIATOR)

    per_party = limits.evidence_submissions_per_party
    size = limits.evidence_bytes_per_case // (2 * per_party) - 100  # JSON framing of each body
    url_count = max(0, (size - limits.evidence_text_chars) // limits.attachment_url_chars)

    def body(party: str, n: int) -> dict:
        return {"text": (f"{party} {n} " + "t" * 2000)[:limits.evidence_text_chars],
                "attachments": [{"url": (f"https://files.example/{party}/{n}/{i}/" + "a" * 2000)[
                    :limits.attachment_url_chars]} for i in range(url_count)]}

    extensions = 0
    for n in range(per_party):
        for party, token in (("buyer", BUYER), ("seller", SELLER)):
            if n < limits.evidence_requests_per_party:
                asked = await stack.act(dispute_id, "mediator-request-evidence", MEDIATOR,
                                        {"party": party, "request": "q" * 2000})
                due = next(d for d in asked["deadlines"] if d["kind"] == f"{party}_evidence")["due_at"]
                for _ in range(limits.deadline_extensions // limits.evidence_requests_per_party // 2):
                    due = (datetime.fromisoformat(due) + timedelta(hours=1)).isoformat()
                    await stack.act(dispute_id, "mediator-extend-deadline", MEDIATOR,
                                    {"deadline": f"{party}_evidence", "until": due, "reason": "x" * 2000})
                    extensions += 1
            await stack.act(dispute_id, "party-submit-evidence", token, body(party, n))
    mediators = [("noah", NOAH), ("mia", MEDIATOR)]
    current = MEDIATOR
    for n in range(limits.hand_overs):
        to, token = mediators[n % 2]
        await stack.act(dispute_id, "mediator-hand-over", current, {"to_mediator_id": to, "reason": "h" * 2000})
        current = token
    await stack.act(dispute_id, "mediator-rule", current,
                    {"decision": "partial_refund", "amount": {"amount": 4000, "currency": "CNY"}, "rationale": "w" * 2000})
    await stack.act(dispute_id, "party-appeal", BUYER,
                    {"reason": "a" * 2000, "new_information": "i" * 2000, "attachments": attachments})
    await stack.act(dispute_id, "mediator-take", SENIOR)
    view_bytes = len((await stack.call("GET", f"/disputes/{dispute_id}", PLATFORM)).content)
    queried = await stack.services.temporal.get_workflow_handle(dispute_id).query(DisputeWorkflow.view)
    query_bytes = len(queried.model_dump_json())
    await stack.act(dispute_id, "mediator-rule", SENIOR,
                    {"decision": "partial_refund", "amount": {"amount": 6000, "currency": "CNY"}, "rationale": "f" * 2000})
    closed = await stack.wait_for_state(dispute_id, "SUCCESS")
    assert closed["refunded"] == {"amount": 6000, "currency": "CNY"}
    # The first ruling refunded 4000 and released 6000; the final one moves the 2000 difference.
    assert stack.money(order_id) == {"escrow": 0, "escrow_pending": 0, "buyer_refunds": 4000,
                                     "seller_released": 6000}
    adjustment = next(t for t in stack.services.ledger.transfers(dispute_id=dispute_id)
                      if t.code == "appeal_adjustment")
    assert (adjustment.debit_account_id, adjustment.credit_account_id, adjustment.amount) == (
        accounts.seller("acme", "CNY"), accounts.buyer("alice", "CNY"), 2000)

    runs = await histories.fetch_runs(stack.services.temporal, dispute_id)
    measured = [(len(run.events), sum(e.ByteSize() for e in run.events), max(e.ByteSize() for e in run.events))
                for run in runs]
    print(f"\nlongest case: {len(runs)} runs, (events, bytes, largest event) per run {measured}; "
          f"view {view_bytes} bytes with every evidence body (query {query_bytes} bytes), "
          f"{closed['events_total']} events, {extensions} extensions")
    assert all(events < 10_240 and size < 10 * 2**20 and largest < 512 * 1024 for events, size, largest in measured)
    assert view_bytes < 512 * 1024 and query_bytes < 256 * 1024


async def test_a_neglected_case_lists_only_its_newest_sla_breaches(stack: Stack) -> None:
    """A case nobody takes breaches its take SLA again and again, for as long as it waits."""
    _set_limits(stack, sla_breaches_listed=2)
    stack.set_windows(mediator_take=Window.seconds(1))
    _, dispute_id = await _escalated(stack)

    async def breached_often() -> dict | None:
        view = await stack.dispute(dispute_id)
        return view if view["intervention"]["sla_breach_count"] >= 4 else None

    view = await eventually(breached_often, timeout=60, what="four take SLA breaches")
    assert view["intervention"]["sla_breaches"] == ["mediator_take", "mediator_take"]
    assert view["intervention"]["flagged"] is True
    last = [e for e in view["events"] if e["kind"] == "sla_breached"][-1]
    assert last["details"]["breaches"] == view["intervention"]["sla_breach_count"]

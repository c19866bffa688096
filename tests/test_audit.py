"""Auditors: history export, replay (live, filtered, offline, committed histories, an
incompatible change) and the readable trail, against the real Temporal dev server."""

import asyncio
import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.protobuf.json_format import ParseDict
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.worker import Worker

from audit import history as histories
from audit import replay
from audit.record_scenarios import SCENARIOS
from audit.trail import build_trail
from devstack import cli
from devstack.stack import temporal_binary
from policy import Window, versions
from policy.versions import PolicyRef
from config.temporal import SearchAttributes
from tests.audit_variants import BEFORE_SETTLEMENT_ATTRIBUTE, INCOMPATIBLE, PATCH_ID, PATCHED
from identity import Actor, Role
from money import Money
from workflows.dispute import ARCHIVE_PATCH, NOTIFY_ALL_PATCH, SETTLEMENT_PATCH, DisputeWorkflow
from workflows.models import DisputeInput, DisputeKind, OrderSnapshot, ReasonCategory, RefundRequest
from tests.support import AUDITOR, BUYER, MEDIATOR, PLATFORM, SELLER, Stack, eventually

HISTORIES = Path(__file__).parent / "histories"
PROBLEM = "application/problem+json"


def _connection(client: Client) -> list[str]:
    return ["--address", client.service_client.config.target_host, "--namespace", client.namespace]


async def _cli(*argv: str) -> int:
    """The `disputeflow` command, in a thread: it runs its own event loop."""
    return await asyncio.to_thread(cli.main, list(argv))


async def _closed_history(stack: Stack, dispute_id: str) -> WorkflowHistory:
    handle = stack.services.temporal.get_workflow_handle(dispute_id)
    await asyncio.wait_for(handle.result(), timeout=30)
    return await handle.fetch_history()


async def _asleep_on_a_timer(stack: Stack, dispute_id: str) -> None:
    """Wait until the workflow sleeps on its first timer, its opening's activities done (the
    notifications are written after the answer)."""
    handle = stack.services.temporal.get_workflow_handle(dispute_id)

    async def asleep() -> bool:
        events = (await handle.fetch_history()).events
        kinds = [e.event_type for e in events]
        return (EventType.EVENT_TYPE_TIMER_STARTED in kinds
                and kinds.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
                == kinds.count(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
                and kinds[-1] == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)

    await eventually(asleep, what=f"{dispute_id} asleep on a timer")


# ---- export ----------------------------------------------------------------------------


async def test_export_is_the_standard_history_json(stack: Stack, tmp_path: Path) -> None:
    order_id = await stack.register_order()
    dispute_id = (await stack.open_dispute(order_id, amount=4_000))["dispute_id"]
    await stack.act(dispute_id, "seller-agree-refund", SELLER)
    fetched = await _closed_history(stack, dispute_id)

    response = await stack.call("GET", f"/audit/disputes/{dispute_id}/history", AUDITOR)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert dispute_id in response.headers["content-disposition"]
    exported = WorkflowHistory.from_json(dispute_id, response.json())
    # The auditors' copy: the recorded events, with the payloads in the clear.
    in_clear = list(histories.decoded(fetched).events)
    assert list(exported.events) == in_clear
    assert exported.events[0].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    assert exported.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED

    # What the Temporal CLI writes for the same workflow parses to the same events.
    shown = await asyncio.to_thread(subprocess.run, [
        temporal_binary(), "workflow", "show", "--workflow-id", dispute_id, "--output", "json",
        *_connection(stack.services.temporal)], capture_output=True, text=True, timeout=30, check=True)
    assert list(WorkflowHistory.from_json(dispute_id, shown.stdout).events) == list(fetched.events)
    cli_json = json.loads(shown.stdout)
    assert [e["eventType"] for e in cli_json["events"]] == [e["eventType"] for e in response.json()["events"]]

    # The command line writes the same document.
    out = tmp_path / f"{dispute_id}.json"
    assert await _cli("audit", "export", dispute_id, "-o", str(out), *_connection(stack.services.temporal)) == 0
    assert json.loads(out.read_text()) == response.json()
    assert list(WorkflowHistory.from_json(dispute_id, out.read_text()).events) == in_clear


# ---- the trail -------------------------------------------------------------------------


async def test_trail_tells_who_did_what_which_timer_fired_and_where_the_money_went(stack: Stack) -> None:
    stack.set_windows(buyer_response_after_refusal=Window.seconds(2))
    order_id = await stack.register_order(amount=5_000)
    dispute_id = (await stack.open_dispute(order_id, amount=5_000))["dispute_id"]
    await _asleep_on_a_timer(stack, dispute_id)
    request_id = f"req-{uuid.uuid4().hex[:12]}"
    refused = await stack.ok("POST", f"/disputes/{dispute_id}/seller-refuse", SELLER,
                             {"reason": "Item was fine on dispatch"},
                             headers={"X-Request-ID": request_id, "Idempotency-Key": f"{request_id}-key"})
    assert refused["state"] == "SELLER_REFUSED"
    await stack.wait_for_state(dispute_id, "CLOSED")
    await _closed_history(stack, dispute_id)

    trail = await stack.ok("GET", f"/audit/disputes/{dispute_id}/trail", AUDITOR)
    entries = trail["entries"]
    assert trail["dispute_id"] == dispute_id
    assert trail["status"] == "completed" and trail["final_state"] == "CLOSED"
    assert trail["policy_version"] == stack.services.policy.version
    assert trail["opened_by"]["role"] == "buyer" and trail["opened_by"]["party_id"] == "alice"
    assert trail["opened_by"]["request_id"]
    opened = entries[0]
    assert (opened["category"], opened["event_id"]) == ("opened", 1)
    assert opened["data"]["policy_version"] == stack.services.policy.version

    [refusal] = [e for e in entries if e["category"] == "action" and e["name"] == "seller_refuse"]
    assert refusal["actor"] == {"role": "seller", "party_id": "acme", "senior": False, "request_id": request_id}
    # The Idempotency-Key, scoped to its caller, is the Temporal update id.
    assert refusal["data"]["update_id"] == f"seller:acme:{request_id}-key"
    assert refusal["data"]["arguments"][0]["reason"] == "Item was fine on dispatch"
    assert "seller acme" in refusal["text"] and request_id in refusal["text"]

    # The seller's window was running when the seller acted: its timer was superseded.
    cancelled = [e for e in entries if e["category"] == "timer_canceled"]
    assert cancelled and all(e["event_id"] > refusal["event_id"] for e in cancelled)
    assert any(e["data"].get("cause_event_id") == refusal["event_id"] and "seller_response" in e["name"]
               for e in cancelled)
    # Then the buyer stayed silent and the shortened window's timer decided.
    [fired] = [e for e in entries if e["category"] == "timer_fired"]
    assert fired["name"] == "deadline buyer_response_after_refusal"
    started = next(e for e in entries if e["event_id"] == fired["related_event_ids"][0])
    assert started["category"] == "timer_started" and started["name"] == fired["name"]
    assert fired["event_id"] > refusal["event_id"]
    [closed] = [e for e in entries if e["category"] == "closed"]
    assert closed["data"]["resolution"]["timer"] == "buyer_response_after_refusal"
    assert "buyer_response_after_refusal" in closed["text"]

    # Every notification in the outbox and every ledger transfer, and nothing else.
    outbox = [m.id for m in stack.services.notifications.for_dispute(dispute_id)]
    assert sorted(trail["notification_ids"]) == sorted(outbox) and outbox
    ledger = [t.id for t in stack.services.ledger.transfers(dispute_id=dispute_id)]
    assert sorted(trail["transfer_ids"]) == sorted(ledger) and ledger
    for notification_id in outbox:
        [entry] = [e for e in entries if notification_id in e["notification_ids"]]
        assert entry["category"] == "activity" and notification_id in entry["text"]
    # Entries are in history order and each points at a real event.
    ids = [e["event_id"] for e in entries]
    assert ids == sorted(ids) and ids[-1] == trail["event_count"]
    detailed = await stack.ok("GET", f"/audit/disputes/{dispute_id}/trail?mechanics=true", AUDITOR)
    assert len(detailed["entries"]) > len(entries)
    assert {"WorkflowTaskCompleted", "ActivityTaskStarted"} <= {e["event_type"] for e in detailed["entries"]}

    # A mediator reads the same story as the case's timeline, page by page, without the raw payloads.
    timeline = await stack.ok("GET", f"/disputes/{dispute_id}/timeline?limit=3", MEDIATOR)
    assert (timeline["total"], timeline["offset"], timeline["limit"]) == (len(entries), 0, 3)
    assert (timeline["status"], timeline["final_state"]) == ("completed", "CLOSED")
    pages = [timeline["entries"]]
    while sum(map(len, pages)) < timeline["total"]:
        pages.append((await stack.ok("GET", f"/disputes/{dispute_id}/timeline?limit=3&offset={3 * len(pages)}",
                                     MEDIATOR))["entries"])
    read = [e for page in pages for e in page]
    assert read == [{k: v for k, v in e.items() if k not in ("data", "event_type")} for e in entries]
    assert [i for e in read for i in e["transfer_ids"]] and fired["event_id"] in [e["event_id"] for e in read]
    assert (await stack.ok("GET", f"/disputes/{dispute_id}/timeline", AUDITOR))["total"] == len(entries)
    for token in (BUYER, SELLER):
        forbidden = await stack.call("GET", f"/disputes/{dispute_id}/timeline", token)
        assert forbidden.status_code == 403 and forbidden.headers["content-type"] == PROBLEM
    bad = await stack.call("GET", f"/disputes/{dispute_id}/timeline?offset=-1", MEDIATOR)
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM


async def test_trail_command_prints_the_same_story(stack: Stack, capsys: pytest.CaptureFixture) -> None:
    order_id = await stack.register_order()
    dispute_id = (await stack.open_dispute(order_id, amount=3_000))["dispute_id"]
    await stack.act(dispute_id, "seller-agree-refund", SELLER, {"note": "Sorry"})
    await _closed_history(stack, dispute_id)
    capsys.readouterr()
    assert await _cli("audit", "trail", dispute_id, *_connection(stack.services.temporal)) == 0
    text = capsys.readouterr().out
    assert "seller acme" in text and "seller_agree_refund" in text and "final state SUCCESS" in text
    for transfer in stack.services.ledger.transfers(dispute_id=dispute_id):
        assert transfer.id in text
    assert await _cli("audit", "trail", dispute_id, "--json", *_connection(stack.services.temporal)) == 0
    assert json.loads(capsys.readouterr().out)["dispute_id"] == dispute_id


def test_trail_renders_what_it_does_not_know() -> None:
    """New update names, activities and event types appear as the workflow grows: the
    trail names them from the history and renders unknown events generically."""
    path = HISTORIES / "seller_agrees_refund.json"
    document = json.loads(path.read_text())
    for event in document["events"]:
        request = event.get("workflowExecutionUpdateAcceptedEventAttributes", {}).get("acceptedRequest", {})
        if request.get("input", {}).get("name") == "seller_agree_refund":
            request["input"]["name"] = "mediator_rule"
    last = int(document["events"][-1]["eventId"])
    marker = {"eventId": str(last + 1), "eventTime": document["events"][-1]["eventTime"],
              "eventType": "EVENT_TYPE_MARKER_RECORDED",
              "markerRecordedEventAttributes": {"markerName": "core_patch", "workflowTaskCompletedEventId": "4"}}
    signal = {"eventId": str(last + 2), "eventTime": document["events"][-1]["eventTime"],
              "eventType": "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED",
              "workflowExecutionSignaledEventAttributes": {"signalName": "evidence_uploaded", "input": {"payloads": [
                  {"metadata": {"encoding": "anNvbi9wbGFpbg=="},  # json/plain
                   "data": "eyJhY3RvciI6IHsicm9sZSI6ICJidXllciIsICJwYXJ0eV9pZCI6ICJhbGljZSJ9fQ=="}]}}}
    document["events"] += [marker, signal]
    trail = build_trail(WorkflowHistory.from_json("x", document))
    by_id = {e.event_id: e for e in trail.entries}
    assert any(e.category == "action" and e.name == "mediator_rule" and e.actor.party_id == "acme"
               for e in trail.entries)
    assert by_id[last + 1].category == "event" and by_id[last + 1].event_type == "MarkerRecorded"
    assert by_id[last + 1].data["markerName"] == "core_patch"
    assert by_id[last + 2].category == "signal" and by_id[last + 2].name == "evidence_uploaded"
    assert by_id[last + 2].actor.party_id == "alice"
    # An event type this SDK has no name for still gets an entry.
    unknown = HistoryEvent()
    ParseDict(document["events"][-1], unknown)
    unknown.event_type = 999
    odd = build_trail(WorkflowHistory("x", [*WorkflowHistory.from_json("x", document).events, unknown]))
    assert (odd.entries[-1].category, odd.entries[-1].event_type) == ("event", "WorkflowExecutionSignaled")
    assert odd.entries[-1].data["signalName"] == "evidence_uploaded"


# ---- replay ----------------------------------------------------------------------------


async def test_replay_of_live_disputes_by_id_and_by_filter(stack: Stack, capsys: pytest.CaptureFixture) -> None:
    since = datetime.now(UTC) - timedelta(seconds=5)
    seller = f"audit-{uuid.uuid4().hex[:8]}"
    stack.set_windows(seller_response_shipped_refund_only=Window.seconds(1))
    quick = await stack.open_dispute(await stack.register_order(seller=seller), amount=2_000)
    stack.set_windows(seller_response_shipped_refund_only=Window.hours(36))
    waiting = await stack.open_dispute(await stack.register_order(seller=seller), amount=2_000)
    acme = await stack.open_dispute(await stack.register_order(), amount=2_000)
    await stack.act(acme["dispute_id"], "seller-refuse", SELLER, {"reason": "No"})
    await stack.wait_for_state(quick["dispute_id"], "SUCCESS")
    ids = [quick["dispute_id"], waiting["dispute_id"], acme["dispute_id"]]

    report = await stack.ok("POST", "/audit/replay", AUDITOR, {"dispute_ids": ids})
    assert report["ok"] is True and report["total"] == 3 and report["replayed"] == 3
    assert [o["dispute_id"] for o in report["outcomes"]] == ids
    assert all(o["status"] == "replayed" and o["events"] > 0 for o in report["outcomes"])

    missing = await stack.ok("POST", "/audit/replay", AUDITOR, {"dispute_ids": [ids[1], "dsp-NOPE-1"]})
    assert missing["ok"] is False and missing["not_found"] == 1
    assert [o["status"] for o in missing["outcomes"]] == ["replayed", "not_found"]

    # By filter: the visibility store catches up with search-attribute changes shortly.
    async def by_filter(**conditions) -> dict | None:
        body = await stack.ok("POST", "/audit/replay", AUDITOR, {"filter": {
            "seller_id": seller, "started_after": since.isoformat(), **conditions}})
        return body

    async def both() -> dict | None:
        body = await by_filter()
        return body if body["total"] == 2 else None

    everything = await eventually(both, what="both disputes of the seller listed")
    assert everything["ok"] and {o["dispute_id"] for o in everything["outcomes"]} == set(ids[:2])
    assert f"SellerId = '{seller}'" in everything["query"] and "StartTime >=" in everything["query"]

    async def waiting_only() -> dict | None:
        body = await by_filter(state="WAIT_SELLER_AGREE")
        return body if [o["dispute_id"] for o in body["outcomes"]] == [ids[1]] else None

    assert (await eventually(waiting_only, what="only the waiting dispute"))["ok"]
    future = await by_filter(started_before=(since - timedelta(hours=1)).isoformat())
    assert future["total"] == 0 and future["ok"]

    # The command line: the same filter, progress per dispute, exit 0.
    capsys.readouterr()
    assert await _cli("audit", "replay", "--seller", seller, "--since", since.isoformat(),
                      *_connection(stack.services.temporal)) == 0
    captured = capsys.readouterr()
    assert "[1/2]" in captured.err and "[2/2]" in captured.err and " ok" in captured.err
    assert "2 replayed" in captured.out
    assert await _cli("audit", "replay", *ids, *_connection(stack.services.temporal)) == 0
    assert await _cli("audit", "replay", ids[0], "dsp-NOPE-1", *_connection(stack.services.temporal)) == 1


async def test_committed_histories_replay_on_the_current_code(capsys: pytest.CaptureFixture) -> None:
    files = sorted(HISTORIES.glob("*.json"))
    assert {f.stem for f in files} >= set(SCENARIOS), "record the missing scenarios (see README, Auditing)"
    report = await replay.DisputeReplayer().replay(replay.from_files(files))
    failures = [(o.source, o.status, o.reason) for o in report.outcomes if not o.ok]
    assert report.ok and not failures, failures
    assert report.total == len(files) and report.replayed == len(files)
    assert await _cli("audit", "replay", "--histories", str(HISTORIES)) == 0
    assert f"{len(files)} replayed" in capsys.readouterr().out


async def test_a_case_under_a_shipped_version_replays_from_its_export_where_the_code_lacks_it(
        stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    dispute_id = (await stack.open_dispute(await stack.register_order()))["dispute_id"]
    await stack.act(dispute_id, "seller-agree-refund", SELLER)
    recorded = await _closed_history(stack, dispute_id)
    shipped = versions.ref_or_body(stack.services.policy)
    assert isinstance(shipped, PolicyRef)
    assert histories.policy_refs([recorded]) == [shipped]  # the input holds the ref, not the body
    export = tmp_path / "exports"
    export.mkdir()
    assert await _cli("audit", "export", dispute_id, "-o", str(export / f"{dispute_id}.json"),
                      *_connection(stack.services.temporal)) == 0
    [body] = (export / "policies").glob("*.json")
    shipped_file = Path(versions.__file__).with_name(f"{shipped.version}.json")
    assert json.loads(body.read_text()) == json.loads(shipped_file.read_text())

    # Code that does not ship the version cannot replay the case: the task fails, visibly.
    monkeypatch.setattr(versions, "_BODIES", {sha: held for sha, held in versions._BODIES.items()
                                              if sha != shipped.sha256})
    committed = HISTORIES / "policy_ref_seller_agrees_refund.json"
    [outcome] = (await replay.DisputeReplayer().replay(replay.from_files([committed]))).outcomes
    assert outcome.status == "failed" and f"policy {shipped.version} (sha256 {shipped.sha256}) is not held here" \
        in outcome.detail
    # With the body exported beside the history, it replays.
    capsys.readouterr()
    assert await _cli("audit", "replay", "--histories", str(export)) == 0
    assert "1 replayed" in capsys.readouterr().out


async def test_a_file_in_policies_that_is_no_policy_export_is_a_named_failure_not_a_crash(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    export = tmp_path / "exports"
    (export / "policies").mkdir(parents=True)
    committed = HISTORIES / "policy_ref_seller_agrees_refund.json"
    (export / committed.name).write_text(committed.read_text())
    shipped = Path(versions.__file__).with_name("cn-2026.2.json")
    bad = {
        "notes.json": shipped.read_text(),  # not named <version>.<sha256>
        f"cn-2026.2.{'0' * 64}.json": "[]",  # no object
        f"cn-2026.2.{'1' * 64}.json": "{not json",
        f"cn-2099.1.{'2' * 64}.json": shipped.read_text(),  # a body of another version
    }
    for name, text in bad.items():
        (export / "policies" / name).write_text(text)

    report = await replay.DisputeReplayer().replay(replay.from_files([export / committed.name]))
    failed = {Path(o.source).name: o.reason for o in report.outcomes if not o.ok}
    assert set(failed) == set(bad), failed
    assert all("not a policy export named <version>.<sha256>.json" in reason for reason in failed.values())
    # The case itself, under a version the code ships, still replays.
    assert [o.source for o in report.outcomes if o.ok] == [str(export / committed.name)]
    capsys.readouterr()
    assert await _cli("audit", "replay", "--histories", str(export)) == 1
    printed = capsys.readouterr()
    assert "Traceback" not in printed.err and "notes.json" in printed.out + printed.err


async def test_a_ref_the_worker_cannot_resolve_fails_the_workflow_task_visibly(stack: Stack) -> None:
    unknown = PolicyRef(version="cn-2099.1", sha256="0" * 64)
    money = Money(amount=1_000, currency="CNY")
    dispute = DisputeInput(
        dispute_id=f"dsp-ORD-{uuid.uuid4().hex[:8]}-1",
        order=OrderSnapshot(order_id="ORD-unknown-policy", buyer_id="alice", seller_id="acme", paid=money,
                            shipped=True),
        request=RefundRequest(kind=DisputeKind.REFUND_ONLY, reason=ReasonCategory.QUALITY, amount=money,
                              description="Leaks"),
        opened_by=Actor(role=Role.BUYER, party_id="alice"), policy=unknown)
    handle = await stack.services.temporal.start_workflow(
        DisputeWorkflow.run, dispute, id=dispute.dispute_id, task_queue=stack.task_queue)
    try:
        async def task_failed() -> str | None:
            for event in (await handle.fetch_history()).events:
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                    return event.workflow_task_failed_event_attributes.failure.message
            return None

        message = await eventually(task_failed, what="the workflow task's failure")
        assert message.startswith("policy cn-2099.1 (sha256 0000") and "is not held here" in message
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING  # retried, not failed
    finally:
        await handle.terminate("test over")


async def test_an_incompatible_change_fails_replay_with_a_clear_report(
        stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    report = await replay.DisputeReplayer(INCOMPATIBLE).replay(replay.from_files(sorted(HISTORIES.glob("*.json"))))
    assert not report.ok and report.total == len(SCENARIOS) == report.nondeterministic
    for outcome in report.outcomes:
        assert outcome.status == "nondeterministic"
        assert "Nondeterminism" in outcome.reason
        assert "freeze_escrow" in outcome.reason and "notify" in outcome.reason
        assert outcome.source and outcome.dispute_id.startswith("dsp-")

    # A deployment gate: export live disputes, replay the files on the candidate code.
    dispute_id = (await stack.open_dispute(await stack.register_order()))["dispute_id"]
    export = tmp_path / "exports"
    export.mkdir()
    connection = _connection(stack.services.temporal)
    assert await _cli("audit", "export", dispute_id, "-o", str(export / f"{dispute_id}.json"), *connection) == 0
    capsys.readouterr()
    assert await _cli("audit", "trail", "--history", str(export / f"{dispute_id}.json")) == 0
    assert f"Dispute {dispute_id}" in capsys.readouterr().out
    assert await _cli("audit", "replay", "--histories", str(export)) == 0
    assert await _cli("audit", "replay", "--histories", str(export), "--histories", str(HISTORIES),
                      "--workflows", "tests.audit_variants:INCOMPATIBLE") == 1
    captured = capsys.readouterr()
    assert f"{dispute_id} NONDETERMINISTIC: [TMPRL1100] Nondeterminism error" in captured.err
    assert f"0 replayed, {len(SCENARIOS) + 1} nondeterministic" in captured.out
    assert "REPLAY FAILED" in captured.out
    assert await _cli("audit", "replay", dispute_id, "--workflows", "tests.audit_variants:INCOMPATIBLE",
                      "--json", *connection) == 1
    assert json.loads(capsys.readouterr().out)["outcomes"][0]["status"] == "nondeterministic"


async def test_the_same_change_behind_workflow_patched_keeps_old_cases_replaying(stack: Stack) -> None:
    committed = sorted(HISTORIES.glob("*.json"))
    old_cases = await replay.DisputeReplayer(PATCHED).replay(replay.from_files(committed))
    assert old_cases.ok and old_cases.replayed == len(committed), [o.reason for o in old_cases.outcomes]

    # Deploy it: the worker now runs the patched code, and a new case takes the new path.
    assert stack.worker is not None
    config = stack.worker.config()
    await stack.stop_worker()
    stack.worker = Worker(**{**config, "workflows": PATCHED})
    stack._worker_run = asyncio.create_task(stack.worker.run())
    dispute_id = (await stack.open_dispute(await stack.register_order()))["dispute_id"]
    await stack.act(dispute_id, "seller-agree-refund", SELLER)
    new_case = await _closed_history(stack, dispute_id)
    assert f"{dispute_id}-ack" in [m.id for m in stack.services.notifications.for_dispute(dispute_id)]
    trail = build_trail(new_case)
    [patched] = [e for e in trail.entries if e.category == "code_version" and e.name == PATCH_ID]
    assert (patched.name, patched.event_type) == (PATCH_ID, "MarkerRecorded") and PATCH_ID in patched.text
    assert trail.notification_ids[0] == f"{dispute_id}-ack"

    # The patched code replays both; the code before the change cannot follow the new case.
    assert (await replay.DisputeReplayer(PATCHED).replay(_one(new_case))).ok
    [before] = (await replay.DisputeReplayer().replay(_one(new_case))).outcomes
    assert before.status == "nondeterministic" and PATCH_ID in before.reason


async def _one(history: WorkflowHistory):
    yield history


# ---- who may ---------------------------------------------------------------------------


async def test_only_auditors_read_histories_and_they_change_nothing(stack: Stack) -> None:
    order_id = await stack.register_order()
    dispute_id = (await stack.open_dispute(order_id))["dispute_id"]
    await _asleep_on_a_timer(stack, dispute_id)  # then it sleeps: its history only grows if someone acts
    reads = [("GET", f"/audit/disputes/{dispute_id}/history", None),
             ("GET", f"/audit/disputes/{dispute_id}/trail", None),
             ("POST", "/audit/replay", {"dispute_ids": [dispute_id]})]
    for token in (PLATFORM, BUYER, SELLER, MEDIATOR):
        for method, path, body in reads:
            response = await stack.call(method, path, token, body)
            assert response.status_code == 403, (token, path, response.text)
            assert response.headers["content-type"] == PROBLEM
            assert response.json()["status"] == 403 and "auditor" in response.json()["detail"]
    for method, path, body in reads:
        response = await stack.call(method, path, None, body)
        assert response.status_code == 401 and response.headers["content-type"] == PROBLEM

    before = len((await stack.services.temporal.get_workflow_handle(dispute_id).fetch_history()).events)
    for method, path, body in reads:
        assert (await stack.call(method, path, AUDITOR, body)).status_code == 200
    # Auditors may not act on a dispute, open one or register orders.
    for action, body in (("seller-agree-refund", {}), ("buyer-withdraw", {})):
        response = await stack.call("POST", f"/disputes/{dispute_id}/{action}", AUDITOR, body)
        assert response.status_code == 403 and response.headers["content-type"] == PROBLEM
    assert (await stack.call("POST", "/orders", AUDITOR, {
        "order_id": f"ORD-{uuid.uuid4().hex[:8]}", "buyer_id": "alice", "seller_id": "acme",
        "paid": {"amount": 100, "currency": "CNY"}, "shipped": True})).status_code == 403
    after = len((await stack.services.temporal.get_workflow_handle(dispute_id).fetch_history()).events)
    assert after == before
    assert (await stack.dispute(dispute_id))["state"] == "WAIT_SELLER_AGREE"


async def test_unknown_disputes_and_bad_requests_are_problems(stack: Stack) -> None:
    for path in ("/audit/disputes/dsp-NOPE-1/history", "/audit/disputes/dsp-NOPE-1/trail"):
        response = await stack.call("GET", path, AUDITOR)
        assert response.status_code == 404 and response.headers["content-type"] == PROBLEM
        assert "dsp-NOPE-1" in response.json()["detail"]
    for body in ({}, {"dispute_ids": ["dsp-A-1"], "filter": {}}, {"dispute_ids": []},
                 {"dispute_ids": ["not a dispute"]}, {"filter": {"seller_id": "x' OR 1=1"}},
                 {"filter": {"started_after": "2026-01-01T00:00:00"}}, {"filter": {"limit": 100_000}}):
        response = await stack.call("POST", "/audit/replay", AUDITOR, body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == PROBLEM
    assert await _cli("audit", "export", "dsp-NOPE-1", *_connection(stack.services.temporal)) == 1
    assert await _cli("audit", "replay") == 2


async def test_the_settlement_patch_keeps_recorded_cases_replaying_and_marks_new_ones(stack: Stack) -> None:
    """The real `workflow.patched` change in workflows/dispute.py: settled cases say so in visibility."""
    committed = sorted(HISTORIES.glob("*.json"))
    recorded = await replay.DisputeReplayer().replay(replay.from_files(committed))
    assert recorded.ok and recorded.replayed == len(committed), [o.reason for o in recorded.outcomes]

    order_id = await stack.register_order()
    dispute_id = (await stack.open_dispute(order_id))["dispute_id"]
    await stack.act(dispute_id, "seller-agree-refund", SELLER)
    new_case = await _closed_history(stack, dispute_id)
    markers = [e for e in build_trail(new_case).entries if e.category == "code_version"]
    assert [m.name for m in markers] == [NOTIFY_ALL_PATCH, SETTLEMENT_PATCH, ARCHIVE_PATCH]

    async def settled_in_visibility() -> bool:
        execution = await stack.services.temporal.get_workflow_handle(dispute_id).describe()
        return execution.typed_search_attributes.get(SearchAttributes.SETTLEMENT) == "settled"

    await eventually(settled_in_visibility, what="the Settlement search attribute")
    assert (await replay.DisputeReplayer().replay(_one(new_case))).ok
    [before] = (await replay.DisputeReplayer(BEFORE_SETTLEMENT_ATTRIBUTE).replay(_one(new_case))).outcomes
    assert before.status == "nondeterministic", "the code before the change cannot follow a new case"


COMPLAINT_HISTORIES = HISTORIES / "complaints"


async def test_committed_complaint_and_standing_histories_replay_on_the_current_code(
        capsys: pytest.CaptureFixture) -> None:
    from complaints.record_scenarios import SCENARIOS as COMPLAINT_SCENARIOS

    files = sorted(COMPLAINT_HISTORIES.glob("*.json"))
    assert {f.stem for f in files} >= set(COMPLAINT_SCENARIOS), "record the missing complaint scenarios"
    report = await replay.DisputeReplayer().replay(replay.from_files(files))
    assert report.ok and report.replayed == len(files), [(o.source, o.reason) for o in report.outcomes if not o.ok]
    assert await _cli("audit", "replay", "--histories", str(COMPLAINT_HISTORIES)) == 0
    assert f"{len(files)} replayed" in capsys.readouterr().out
    # The readable trail tells a complaint's story too: who acted, which timer fired.
    assert await _cli("audit", "trail", "--history", str(COMPLAINT_HISTORIES / "complaint_appeal_upheld.json")) == 0
    trail = capsys.readouterr().out
    assert "senior_decide_appeal (decision=uphold_appeal" in trail and "reverse_complaint_compensation" in trail

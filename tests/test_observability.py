"""Metrics, traces and logs, as an operator reads them: a mediator's case driven through the
real API and worker, then the Prometheus counters, one trace of the ruling, and every log line."""

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from temporalio.client import Client
from temporalio.contrib.opentelemetry import OpenTelemetryPlugin, ReplaySafeTracerProvider, create_tracer_provider
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from config.temporal import data_converter
from observability.domain import DomainGauges, count_case_event
from observability.logs import json_handler
from policy import Window
from policy.coverage import calendar_coverage
from tests.conftest import StackFactory
from tests.support import BUYER, MEDIATOR, SELLER, Stack, eventually
from worker import WORKFLOWS
from workflows.models import CaseSnapshot, DisputeState

SENIOR = "dev-senior-sam"
# Personal data a case carries: none of it may reach a log line.
PII = ["Wilhelmina Gruber-Okonkwo", "+86 138 0013 8000", "17 Quayside Lane, Flat 9", "leaks-from-the-base-XYZZY",
       "photo-of-receipt-QUUX.jpg"]


# What the case below moves, each by its labels.
WATCHED = [
    ("disputeflow_disputes_opened_total", {"reason": "quality"}),
    ("disputeflow_disputes_closed_total", {"outcome": "SUCCESS", "reason": "quality", "event": "mediator_ruled"}),
    ("disputeflow_sla_breaches_total", {"reason": "quality"}),
    ("disputeflow_http_requests_total", {"method": "POST", "route": "/disputes/{dispute_id}/mediator-rule",
                                         "status": "200"}),
    ("disputeflow_ledger_posting_seconds_count", {}),
    ("disputeflow_activity_attempt_count", {"activity": "settle_dispute"}),
]


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _samples() -> dict[str, float]:
    return {name: _sample(name, **labels) for name, labels in WATCHED}


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Everything any logger writes during the test, as the processes write it (JSON lines)."""
    captured = io.StringIO()
    handler = json_handler(captured)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield captured
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def _escalated_with_pii(stack: Stack) -> str:
    order_id = await stack.register_order()
    dispute_id = (await stack.ok("POST", "/disputes", BUYER, {
        "order_id": order_id, "kind": "refund_only", "reason": "quality",
        "amount": {"amount": 10_000, "currency": "CNY"},
        "description": f"{PII[0]} ({PII[1]}), {PII[2]}: {PII[3]}",
        "evidence": [{"url": f"https://files.example/{PII[4]}", "media_type": "image/jpeg"}],
    }, status=201))["dispute_id"]
    await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": f"We never shipped to {PII[2]}"})
    await stack.act(dispute_id, "buyer-escalate", BUYER, {"reason": f"Call me on {PII[1]}, {PII[0]}"})
    return dispute_id


async def _rule(stack: Stack, dispute_id: str, mediator: str) -> dict:
    await stack.act(dispute_id, "mediator-take", mediator)
    await stack.act(dispute_id, "mediator-rule", mediator,
                    {"decision": "full_refund", "rationale": f"{PII[0]} showed {PII[4]}; {PII[3]}"})
    return await stack.wait_for_state(dispute_id, "SUCCESS")


async def test_a_case_counts_once_logs_json_with_its_ids_and_no_personal_data(
        stack: Stack, log_lines: io.StringIO) -> None:
    before = _samples()
    # The take SLA lapses once: the case goes to a senior, who rules.
    stack.set_windows(mediator_take=Window.seconds(2))
    dispute_id = await _escalated_with_pii(stack)
    await eventually(lambda: _flagged(stack, dispute_id), what="the take SLA to lapse")
    stack.set_windows(mediator_take=Window.working(2))
    await _rule(stack, dispute_id, SENIOR)
    # Refused input that carries personal data is not logged either.
    refused = await stack.call("POST", f"/disputes/{dispute_id}/mediator-rule", SENIOR,
                               {"decision": "no-such-decision", "rationale": PII[0]})
    assert refused.status_code in (409, 422), refused.text

    async def closing_counted() -> bool:
        # Counted by the closing's notifications, written after the ruling's answer.
        return _samples()["disputeflow_disputes_closed_total"] > before["disputeflow_disputes_closed_total"]

    await eventually(closing_counted, what="the closing counted")
    after = _samples()
    deltas = {name: after[name] - before[name] for name in before}
    assert deltas["disputeflow_disputes_opened_total"] == 1
    assert deltas["disputeflow_disputes_closed_total"] == 1
    assert deltas["disputeflow_sla_breaches_total"] >= 1  # the senior queue's own take SLA may lapse too
    assert deltas["disputeflow_http_requests_total"] == 1
    assert deltas["disputeflow_ledger_posting_seconds_count"] >= 3  # order payment, freeze, settlement
    assert deltas["disputeflow_activity_attempt_count"] == 1

    # Replaying the case (as a worker does after a restart, or `audit replay`) counts nothing.
    counted = _sample("disputeflow_disputes_opened_total", reason="quality")
    history = await stack.services.temporal.get_workflow_handle(dispute_id).fetch_history()
    await Replayer(workflows=WORKFLOWS, data_converter=data_converter()).replay_workflow(history)
    assert _sample("disputeflow_disputes_opened_total", reason="quality") == counted

    exposed = await stack.http.get("/metrics")
    assert exposed.status_code == 200 and exposed.headers["content-type"].startswith("text/plain")
    assert 'disputeflow_disputes_closed_total{event="mediator_ruled",outcome="SUCCESS",reason="quality"}' in exposed.text
    assert 'route="/disputes/{dispute_id}/mediator-rule"' in exposed.text

    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    assert lines, "nothing was logged"
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys(), line
    text = log_lines.getvalue()
    for personal in PII:
        assert personal not in text, f"{personal!r} reached the logs"
    requests = [line for line in lines if line["logger"] == "disputeflow.api.requests" and
                line.get("dispute_id") == dispute_id]
    assert requests and all(line["request_id"] and line["route"].startswith("/disputes/{dispute_id}")
                            for line in requests)
    settled = [line for line in lines if line["message"].startswith("settled at mediator_ruled")]
    assert settled and settled[0]["dispute_id"] == dispute_id
    assert settled[0]["workflow_id"] == dispute_id and settled[0]["run_id"] and settled[0]["activity_type"]


@pytest.mark.parametrize("engine", ["app_engine", pytest.param("app_postgres_engine", marks=pytest.mark.postgres)])
def test_database_errors_that_get_logged_carry_no_statement_values(engine: str, request: pytest.FixtureRequest) -> None:
    with request.getfixturevalue(engine).connect() as connection, pytest.raises(DBAPIError) as raised:
        connection.execute(text("SELECT no_such_column FROM ledger_accounts WHERE id = :id"), {"id": PII[0]})
    assert PII[0] not in str(raised.value) and "hidden due to hide_parameters" in str(raised.value)


async def _flagged(stack: Stack, dispute_id: str) -> bool:
    return (await stack.dispute(dispute_id))["intervention"]["flagged"]


def test_evidence_missed_and_lapsed_closings_are_counted_by_their_event() -> None:
    case = CaseSnapshot.model_validate({
        "seq": 9, "order_id": "ORD-1", "buyer_id": "alice", "seller_id": "acme", "state": "PLATFORM_INTERVENING",
        "reason": "damaged", "requested": {"amount": 100, "currency": "CNY"}, "opened_at": "2026-01-01T00:00:00Z"})
    missed = _sample("disputeflow_evidence_requests_missed_total", reason="damaged")
    count_case_event("evidence_missed", case)
    assert _sample("disputeflow_evidence_requests_missed_total", reason="damaged") == missed + 1
    lapsed = {"outcome": "CLOSED", "reason": "damaged", "event": "deadline_lapsed"}
    closed = _sample("disputeflow_disputes_closed_total", **lapsed)
    count_case_event("deadline_lapsed", case)  # a lapse that leaves the case open closes nothing
    count_case_event("deadline_lapsed", case.model_copy(update={"state": DisputeState.CLOSED}))
    assert _sample("disputeflow_disputes_closed_total", **lapsed) == closed + 1


async def test_gauges_read_the_fund_and_the_calendar(stack: Stack) -> None:
    currency = "ISK"
    await stack.ok("POST", "/guarantee-fund/top-ups", "dev-platform",
                   {"amount": {"amount": 50_000, "currency": currency}, "reference": f"obs-{stack.task_queue}"},
                   status=201)
    policy = stack.services.policy
    families = {family.name: family for family in
                DomainGauges(stack.services.ledger, policy, warn_within_days=60).collect()}
    advances = {sample.labels["currency"]: sample.value for sample in families["disputeflow_advances_outstanding"].samples}
    assert advances[currency] == (await stack.ok("GET", f"/guarantee-fund/{currency}", "dev-platform"))[
        "outstanding_advances"]["amount"]
    [days] = families["disputeflow_calendar_coverage_days_left"].samples
    assert days.value == calendar_coverage(policy, 60).days_left and days.labels["calendar"] == policy.calendar.name


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider, replay-safe as the Temporal plugin needs, into memory
    (a provider is set once per process: later tests' spans are dropped)."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, ReplaySafeTracerProvider):
        provider = create_tracer_provider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


async def test_a_mediator_ruling_is_one_trace_from_request_to_ledger(
        spans: InMemorySpanExporter, stack_factory: StackFactory, app_engine, temporal_env: WorkflowEnvironment) -> None:
    traced = Client(**{**temporal_env.client.config(), "plugins": [OpenTelemetryPlugin(add_temporal_spans=True)]})
    async with stack_factory(app_engine, temporal=traced,
                             settings={"otlp_endpoint": "http://127.0.0.1:1/v1/traces"}) as stack:
        dispute_id = await _escalated_with_pii(stack)
        await stack.act(dispute_id, "mediator-take", MEDIATOR)
        spans.clear()
        await stack.act(dispute_id, "mediator-rule", MEDIATOR, {"decision": "full_refund", "rationale": "as shown"})
        await stack.wait_for_state(dispute_id, "SUCCESS")

    finished = spans.get_finished_spans()
    [request] = [s for s in finished if s.name == "POST /disputes/{dispute_id}/mediator-rule" and s.parent is None]
    ruling = [s for s in finished if s.context.trace_id == request.context.trace_id]
    names = {s.name for s in ruling}
    assert {"StartWorkflowUpdate:mediator_rule", "HandleUpdate:mediator_rule", "StartActivity:settle_dispute",
            "RunActivity:settle_dispute", "ledger.create_transfers"} <= names, names
    # One tree: every span but the request's hangs off another span of the same trace.
    ids = {s.context.span_id for s in ruling}
    assert all(s.parent.span_id in ids for s in ruling if s is not request)
    [ledger_write] = [s for s in ruling if s.name == "ledger.create_transfers"]
    assert ledger_write.attributes["ledger.transfers"] >= 1

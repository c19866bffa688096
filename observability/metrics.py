"""Every Prometheus metric disputeflow itself defines (README "Operating disputeflow"), on the
default registry. The Temporal SDK's own metrics are the worker's runtime's (observability.worker).

Domain metrics are counted in activities and services, never in workflow code: a replay runs
no activity, so nothing is counted twice; a case's events are counted when their notification
first reaches the outbox, which a retried activity never writes again.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter("disputeflow_http_requests", "API requests answered, by route template and status",
                        ["method", "route", "status"])
HTTP_LATENCY = Histogram("disputeflow_http_request_duration_seconds", "API request latency, by route template",
                         ["method", "route"])

DISPUTES_OPENED = Counter("disputeflow_disputes_opened", "Disputes opened, by reason category", ["reason"])
DISPUTES_CLOSED = Counter("disputeflow_disputes_closed",
                          "Disputes closed (again after an appeal), by outcome, reason category and closing event",
                          ["outcome", "reason", "event"])
SLA_BREACHES = Counter("disputeflow_sla_breaches", "Mediator SLAs (take or rule) that passed, by reason category",
                       ["reason"])
EVIDENCE_MISSED = Counter("disputeflow_evidence_requests_missed",
                          "Mediators' evidence requests whose deadline passed unanswered, by reason category",
                          ["reason"])

ACTIVITY_ATTEMPT = Histogram("disputeflow_activity_attempt", "The attempt number of each activity attempt started",
                             ["activity"], buckets=(1, 2, 3, 5, 10, 20, 50, 100))
ACTIVITY_RETRIES = Counter("disputeflow_activity_retries", "Activity attempts after the first (retries)",
                           ["activity"])

LEDGER_POSTING = Histogram("disputeflow_ledger_posting_seconds",
                           "Time to apply one batch of ledger transfers, retries on lost races included")


_tracer = trace.get_tracer("disputeflow")


@contextmanager
def ledger_posting(transfers: int) -> Iterator[None]:
    """A latency observation and a trace span (a no-op while tracing is off) around one batch
    of ledger transfers."""
    with _tracer.start_as_current_span("ledger.create_transfers", attributes={"ledger.transfers": transfers}):
        with LEDGER_POSTING.time():
            yield

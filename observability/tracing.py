"""OpenTelemetry tracing, off unless `otlp_endpoint` is set: one trace from an HTTP request
through the Temporal update or start it makes, into the workflow, its activities and their
ledger writes (FastAPI's instrumentation, the Temporal SDK's OpenTelemetry plugin on the
client, which the worker built on that client inherits, and a span per ledger batch)."""

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio.contrib.opentelemetry import OpenTelemetryPlugin, ReplaySafeTracerProvider, create_tracer_provider
from temporalio.plugin import SimplePlugin

from config.settings import Settings


def enable_tracing(settings: Settings, service_name: str) -> bool:
    """Install the process's tracer provider, exporting to the OTLP endpoint, once. The
    workflow side of the Temporal plugin needs a replay-safe provider (no span is emitted twice
    when a case replays); one already installed, such as a test's in-memory one, is kept."""
    if settings.otlp_endpoint is None:
        return False
    if not isinstance(trace.get_tracer_provider(), ReplaySafeTracerProvider):
        provider = create_tracer_provider(resource=Resource.create({"service.name": service_name}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
        trace.set_tracer_provider(provider)
    return True


def temporal_plugins(settings: Settings) -> list[SimplePlugin]:
    """For `Client.connect(plugins=...)`: separate from the data converter, so it composes with
    any payload codec."""
    return [OpenTelemetryPlugin(add_temporal_spans=True)] if settings.otlp_endpoint else []


def instrument_app(app: FastAPI) -> None:
    FastAPIInstrumentor.instrument_app(app, tracer_provider=trace.get_tracer_provider(), excluded_urls="metrics,healthz",
                                       exclude_spans=["receive", "send"])

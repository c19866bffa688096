"""One setup function per process: the API's, the worker's and the dispatcher's metrics,
traces and logs (README "Operating disputeflow")."""

import logging
import time
from typing import Any

from fastapi import Depends, FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest, start_http_server
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio import activity
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from config.settings import Settings
from ledger import Ledger
from observability.domain import DomainGauges
from observability.logs import DISPUTE_ID, REQUEST_ID, configure_logging
from observability.metrics import ACTIVITY_ATTEMPT, ACTIVITY_RETRIES, HTTP_LATENCY, HTTP_REQUESTS
from observability.tracing import enable_tracing, instrument_app, temporal_plugins
from policy import Policy

log = logging.getLogger("disputeflow.api.requests")


def setup_api(app: FastAPI, settings: Settings) -> None:
    """Before the routers are included: every request is counted, timed and logged by its route
    template (never its raw path or query), logs inside it carry its request and dispute ids,
    `/metrics` serves the process's metrics, and requests are traced when tracing is on."""
    app.router.dependencies.append(Depends(_log_context))
    app.add_route("/metrics", _metrics, include_in_schema=False)

    app.add_middleware(_Observed)

    if enable_tracing(settings, "disputeflow-api"):
        instrument_app(app)


def configure_api_process(settings: Settings) -> None:
    """The server's own process (not an app a test builds): JSON logs."""
    configure_logging(settings.log_level)


class _Observed:
    """Counts, times and logs each request by its route template once its response starts. Plain
    ASGI: Starlette's `BaseHTTPMiddleware` would run every request in a task group of its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                _observe(scope, message["status"], time.perf_counter() - started)
            await send(message)

        await self.app(scope, receive, observed)


def _observe(scope: Scope, status: int, elapsed: float) -> None:
    method = scope["method"]
    route = getattr(scope.get("route"), "path", "unmatched")
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_LATENCY.labels(method, route).observe(elapsed)
    log.info("%s %s %s", method, route, status, extra={
        "method": method, "route": route, "status": status, "duration_ms": round(elapsed * 1000, 1),
        "request_id": scope.get("state", {}).get("request_id"),
        "dispute_id": scope.get("path_params", {}).get("dispute_id")})


async def _log_context(request: Request) -> None:
    REQUEST_ID.set(getattr(request.state, "request_id", None))
    DISPUTE_ID.set(request.path_params.get("dispute_id"))


async def _metrics(request: Request) -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def setup_worker(settings: Settings, ledger: Ledger, policy: Policy) -> dict[str, Any]:
    """JSON logs, tracing if on, and the two metrics listeners: ours (the domain's, the
    activities' attempts, the ledger's latency) and the Temporal SDK's own exporter, which the
    runtime serves itself. Returns the keyword arguments for `config.temporal.connect`."""
    configure_logging(settings.log_level)
    enable_tracing(settings, "disputeflow-worker")
    if settings.worker_metrics_port:
        REGISTRY.register(DomainGauges(ledger, policy, settings.calendar_warning_days))
        start_http_server(settings.worker_metrics_port, addr=settings.metrics_host)
    runtime = None
    if settings.worker_sdk_metrics_port:
        runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(
            bind_address=f"{settings.metrics_host}:{settings.worker_sdk_metrics_port}")))
    return {"runtime": runtime, "plugins": temporal_plugins(settings)}


def setup_dispatcher(settings: Settings) -> None:
    configure_logging(settings.log_level)


class ActivityAttempts(Interceptor):
    """Counts each activity attempt by its number, so a money activity stuck retrying shows."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CountAttempts(next)


class _CountAttempts(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        ACTIVITY_ATTEMPT.labels(info.activity_type).observe(info.attempt)
        if info.attempt > 1:
            ACTIVITY_RETRIES.labels(info.activity_type).inc()
        return await super().execute_activity(input)

"""The metric names the README's Metrics section and example alerts name, checked against what a
real worker process (`python -m worker`, both listeners on) and the API really export after one
case: a money activity's attempts, an SLA breach, the calendar gauge and the SDK's own."""

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from policy import Window
from tests.conftest import StackFactory
from tests.support import eventually
from tests.test_observability import SENIOR, _escalated_with_pii, _flagged, _rule
from tests.test_scale_out import _free_port

PROJECT = Path(__file__).resolve().parents[1]
METRICS_SECTION = (PROJECT / "README.md").read_text().split("### Metrics", 1)[1].split("\n### ", 1)[0]
ALERTS = METRICS_SECTION.split("```yaml", 1)[1].split("```", 1)[0]
# The README says these appear only once one has happened: one clean case has none.
ONLY_AFTER_A_FAILURE = {"temporal_activity_execution_failed", "temporal_workflow_task_execution_failed",
                        "temporal_sticky_cache_miss", "disputeflow_activity_retries_total",
                        "disputeflow_evidence_requests_missed_total"}


@contextmanager
def worker_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """`python -m worker` as deployed, stopped as a deployment stops it (SIGTERM)."""
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "worker"], cwd=PROJECT, env=env, stdout=output,
                                   stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _scrape(http: httpx.AsyncClient, url: str) -> str:
    async def served() -> str | None:
        try:
            return (await http.get(url)).text
        except httpx.TransportError:
            return None
    return await eventually(served, what=f"{url} to answer")


def _declared(exposition: str) -> set[str]:
    """Every family and sample name an exposition declares (a family may have no samples yet)."""
    return set(re.findall(r"^# TYPE (\w+)", exposition, re.MULTILINE)) | set(
        re.findall(r"^(\w+)[{ ]", exposition, re.MULTILINE))


def _matches(exposition: str, name: str, matchers: str) -> bool:
    """Whether a sample of `name` matches the PromQL label matchers `matchers` (`=` and `=~`)."""
    wanted = re.findall(r'(\w+)(=~|=)"([^"]*)"', matchers)
    return any(sample.name == name and all(
        re.fullmatch(value, sample.labels.get(label, "")) if op == "=~" else sample.labels.get(label) == value
        for label, op, value in wanted)
        for family in text_string_to_metric_families(exposition) for sample in family.samples)


async def test_every_metric_the_readme_names_is_exported(
        stack_factory: StackFactory, app_engine: Engine, temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    ours, sdk = _free_port(), _free_port()
    async with stack_factory(app_engine) as stack:
        await stack.stop_worker()  # the worker process below runs the case
        client = temporal_env.client
        env = {k: v for k, v in os.environ.items() if not k.startswith("DISPUTEFLOW_")} | {
            "DISPUTEFLOW_HOME": str(tmp_path),
            "DISPUTEFLOW_PAYLOAD_KEYS": os.environ["DISPUTEFLOW_PAYLOAD_KEYS"],  # the API's (conftest)
            "DISPUTEFLOW_DATABASE_URL": app_engine.url.render_as_string(hide_password=False),
            "DISPUTEFLOW_TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "DISPUTEFLOW_TEMPORAL_NAMESPACE": client.namespace,
            "DISPUTEFLOW_TASK_QUEUE": stack.task_queue,
            "DISPUTEFLOW_WORKER_METRICS_PORT": str(ours),
            "DISPUTEFLOW_WORKER_SDK_METRICS_PORT": str(sdk),
        }
        with worker_process(env, tmp_path / "worker.log"):
            async with httpx.AsyncClient(timeout=10) as http:
                # A case with a lapsed take SLA, a money activity (freeze, settlement) and a ruling.
                stack.set_windows(mediator_take=Window.seconds(2))
                dispute_id = await _escalated_with_pii(stack)
                await eventually(lambda: _flagged(stack, dispute_id), what="the take SLA to lapse", timeout=60)
                stack.set_windows(mediator_take=Window.working(2))
                await _rule(stack, dispute_id, SENIOR)

                async def closing_counted() -> str | None:
                    # Counted by the closing's notifications, written after the ruling's answer and
                    # after every earlier change's (the breach's among them).
                    exposition = await _scrape(http, f"http://127.0.0.1:{ours}/metrics")
                    return exposition if _matches(exposition, "disputeflow_disputes_closed_total",
                                                  'event="mediator_ruled"') else None

                worker_metrics = await eventually(closing_counted, what="the worker to count the closing")
                sdk_metrics = await _scrape(http, f"http://127.0.0.1:{sdk}/metrics")
        api_metrics = (await stack.http.get("/metrics")).text

    # Every series an example alert queries exists, with the label values it selects.
    selectors = re.findall(r"\b(disputeflow_\w+)(?:\{([^}]*)\})?", ALERTS)
    assert len(selectors) >= 4, ALERTS
    for name, matchers in selectors:
        assert _matches(worker_metrics, name, matchers), f"no {name}{{{matchers}}} on the worker's listener"
    # Every metric the section names is declared by the listener it is listed on.
    named = set(re.findall(r"`((?:disputeflow|temporal)_\w+)`", METRICS_SECTION)) - ONLY_AFTER_A_FAILURE
    sdk_named = {name for name in named if name.startswith("temporal_")}
    assert len(sdk_named) >= 15 and not sdk_named - _declared(sdk_metrics), sdk_named - _declared(sdk_metrics)
    ours_named = named - sdk_named
    assert not ours_named - _declared(worker_metrics), ours_named - _declared(worker_metrics)
    assert {"disputeflow_http_requests_total", "disputeflow_ledger_posting_seconds"} <= _declared(api_metrics)
    # The SDK's own conventions the README warns of: no `_total`, milliseconds, `activity_type`.
    assert _matches(sdk_metrics, "temporal_activity_execution_latency_bucket", 'activity_type="settle_dispute",le="60000"')
    assert "temporal_request" in _declared(sdk_metrics) and "temporal_request_total" not in _declared(sdk_metrics)

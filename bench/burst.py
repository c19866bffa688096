"""A burst of deadlines: `python -m bench.burst [--cases 10000] [--window SECONDS] [tuning]`.

Opens N disputes through the API (in-process, as the tests drive it) on a fresh Temporal dev
server and SQLite database, under a policy whose seller-response window is short, so their
deadlines fall due over the next minutes at the rate they were opened; one worker runs them
as its own process (`python -m worker`, tuned by the flags below through its settings).
Nobody answers, so every case lapses: the buyer is refunded and the parties notified.

From each case's history it then prints timer lateness (TimerFired minus the deadline's
due_at) and closing lateness (the closing's last activity: money settled, notifications
written, order released; minus due_at) p50/p99, the cases not closed 5 s after their due
time and at the end, the worker's RSS (peak, and per cached workflow) and CPU per case.
Targets: closing within 5 s of due at p99, worker RSS < 1 GiB at 10,000 cases.
"""

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from config.settings import Settings, get_settings
from config.temporal import SearchAttributes, Visibility, data_converter
from devstack.stack import temporal_binary

# A refund-only dispute on a shipped order waits on this window of the policy (the deadline
# kind seller_response); the benchmark shortens it.
WINDOW = "seller_response_shipped_refund_only"
DEADLINE = "seller_response"
# The activities of a closing; the archive write after it is not part of the target.
CLOSING_ACTIVITIES = {"settle_dispute", "notify", "release_order"}
BUYER, PLATFORM = "dev-buyer-alice", "dev-platform"
LATE = timedelta(seconds=5)


@dataclass
class Case:
    dispute_id: str
    due_at: datetime
    timer_fired: datetime | None = None
    closed: datetime | None = None
    # The activities after the timer fired: type -> (scheduled, started, completed).
    after_timer: dict[str, tuple[datetime, datetime | None, datetime | None]] = field(default_factory=dict)


@dataclass
class WorkerWatch:
    """The worker process's RSS, sampled until stopped."""

    process: psutil.Process
    peak_rss: int = 0

    def sample(self) -> int:
        rss = self.process.memory_info().rss
        self.peak_rss = max(self.peak_rss, rss)
        return rss

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(0.5)

    def cpu(self) -> float:
        times = self.process.cpu_times()
        return times.user + times.system


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _sticky_cache(port: int) -> dict[str, float]:
    """The worker's sticky-cache figures from its SDK metrics: size, hits, misses, evictions."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    figures: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("temporal_sticky_cache"):
            name, value = line.rsplit(" ", 1)
            name = name.split("{")[0].removeprefix("temporal_sticky_cache_")
            figures[name] = figures.get(name, 0) + float(value)
    return figures


def _cache_line(figures: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.0f}" for name, value in sorted(figures.items()))


def _tuning_env(args: argparse.Namespace) -> dict[str, str]:
    chosen = {
        "DISPUTEFLOW_WORKER_STICKY_CACHE_SIZE": args.cache,
        "DISPUTEFLOW_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS": args.workflow_tasks,
        "DISPUTEFLOW_WORKER_MAX_CONCURRENT_ACTIVITIES": args.activities,
        "DISPUTEFLOW_WORKER_ACTIVITY_EXECUTOR_SIZE": args.executor,
        "DISPUTEFLOW_WORKER_MAX_CONCURRENT_WORKFLOW_TASK_POLLS": args.workflow_polls,
        "DISPUTEFLOW_WORKER_MAX_CONCURRENT_ACTIVITY_TASK_POLLS": args.activity_polls,
    }
    return {name: str(value) for name, value in chosen.items() if value is not None}


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def _lateness(label: str, values: list[float]) -> str:
    if not values:
        return f"{label:<34} none"
    return (f"{label:<34} p50 {_percentile(values, 0.5):7.2f}s  p99 {_percentile(values, 0.99):7.2f}s  "
            f"max {max(values):7.2f}s  ({len(values)} cases)")


async def _read_case(client: Client, case: Case) -> None:
    history = await client.get_workflow_handle(case.dispute_id).fetch_history()
    scheduled: dict[int, str] = {}
    for event in history.events:
        at = event.event_time.ToDatetime(tzinfo=UTC)
        if event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            case.timer_fired = at
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = name
            if case.timer_fired is not None:
                case.after_timer[name] = (at, None, None)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            name = scheduled.get(event.activity_task_started_event_attributes.scheduled_event_id)
            if name in case.after_timer:
                case.after_timer[name] = (case.after_timer[name][0], at, None)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            name = scheduled.get(event.activity_task_completed_event_attributes.scheduled_event_id)
            if name in case.after_timer:
                case.after_timer[name] = (*case.after_timer[name][:2], at)
            if case.timer_fired is not None and name in CLOSING_ACTIVITIES:
                case.closed = at


def _phases(cases: list[Case]) -> list[str]:
    """Where a closing's time goes, per activity after the timer: fired -> scheduled (the
    workflow tasks before it), scheduled -> started (waiting for an activity slot) and
    started -> completed (running), p50 / p99 in seconds."""
    lines = []
    names = sorted({name for c in cases for name in c.after_timer},
                   key=lambda n: _percentile([(c.after_timer[n][0] - c.timer_fired).total_seconds()
                                              for c in cases if n in c.after_timer], 0.5))
    for name in names:
        spans = [c.after_timer[name] for c in cases if name in c.after_timer and c.after_timer[name][2]]
        fired = [(s[0] - c.timer_fired).total_seconds() for c in cases if name in c.after_timer
                 for s in [c.after_timer[name]]]
        waiting = [(started - scheduled).total_seconds() for scheduled, started, _ in spans if started]
        running = [(done - started).total_seconds() for _, started, done in spans if started]
        lines.append(f"  {name:<20} fired->scheduled {_percentile(fired, 0.5):5.2f} / {_percentile(fired, 0.99):5.2f}s"
                     f"  schedule-to-start {_percentile(waiting, 0.5):5.2f} / {_percentile(waiting, 0.99):5.2f}s"
                     f"  start-to-close {_percentile(running, 0.5):5.2f} / {_percentile(running, 0.99):5.2f}s")
    return lines


async def _post(http: httpx.AsyncClient, path: str, token: str, body: dict, key: str) -> dict:
    """POST as a client should: a 503 (the service did not confirm in time) is retried with
    the same Idempotency-Key, which resumes the same request."""
    while True:
        response = await http.post(path, json=body, headers={"Authorization": f"Bearer {token}",
                                                              "Idempotency-Key": key})
        if response.status_code != 503:
            assert response.status_code in (200, 201), response.text
            return response.json()
        await asyncio.sleep(float(response.headers.get("Retry-After", 1)))


async def _open(http: httpx.AsyncClient, number: int) -> Case:
    order_id = f"ORD-burst-{number}-{uuid.uuid4().hex[:6]}"
    await _post(http, "/orders", PLATFORM, {
        "order_id": order_id, "buyer_id": "alice", "seller_id": "acme",
        "paid": {"amount": 10_000, "currency": "CNY"}, "shipped": True}, key=f"order-{order_id}")
    view = await _post(http, "/disputes", BUYER, {
        "order_id": order_id, "kind": "refund_only", "reason": "quality",
        "amount": {"amount": 10_000, "currency": "CNY"}, "description": "The kettle leaks from the base."},
        key=f"open-{order_id}")
    [deadline] = [d for d in view["deadlines"] if d["kind"] == DEADLINE]
    return Case(view["dispute_id"], datetime.fromisoformat(deadline["due_at"]))


async def _open_all(http: httpx.AsyncClient, cases: int, concurrency: int) -> list[Case]:
    numbers = iter(range(cases))
    opened: list[Case] = []

    async def client() -> None:
        for number in numbers:
            opened.append(await _open(http, number))
            if len(opened) % 1000 == 0:
                print(f"  {len(opened)} opened", flush=True)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return opened


def _services(settings: Settings, temporal: Client, window: timedelta):
    from api.services import Services
    from archive.service import open_archive
    from database import make_engine
    from ledger import Ledger
    from notifications.service import NotificationService
    from orders import OrderService
    from policy import Window, default_policy

    engine = make_engine(settings.database_url)
    ledger = Ledger(engine)
    policy = default_policy().model_copy(update={WINDOW: Window.seconds(window.total_seconds())})
    return Services(settings=settings, temporal=temporal, engine=engine, ledger=ledger,
                    orders=OrderService(engine, ledger), notifications=NotificationService(engine),
                    policy=policy, archive=open_archive(settings, engine))


async def _worker_ready(log: Path, worker: subprocess.Popen) -> None:
    while "worker polling" not in log.read_text(errors="replace"):
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited:\n{log.read_text(errors='replace')}")
        await asyncio.sleep(0.2)


async def bench(args: argparse.Namespace, home: Path) -> None:
    task_queue = f"burst-{uuid.uuid4().hex[:8]}"
    sdk_metrics = _free_port()
    env = {"DISPUTEFLOW_HOME": str(home), "DISPUTEFLOW_TASK_QUEUE": task_queue,
           "DISPUTEFLOW_WORKER_METRICS_PORT": "0", "DISPUTEFLOW_WORKER_SDK_METRICS_PORT": str(sdk_metrics),
           **_tuning_env(args)}
    os.environ.update(env)
    os.environ.pop("DISPUTEFLOW_PAYLOAD_KEYS", None)
    get_settings.cache_clear()
    settings = get_settings()
    from database import make_engine, migrate
    from devstack.namespace_setup import prepare_namespace

    migrate(make_engine(settings.database_url))
    temporal = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(), search_attributes=SearchAttributes.ALL,
        data_converter=data_converter(), dev_server_log_level="error")
    worker_log = home / "worker.log"
    worker = None
    watcher = None
    try:
        await prepare_namespace(temporal.client, settings)
        address = temporal.client.service_client.config.target_host
        with worker_log.open("w") as output:
            worker = subprocess.Popen([sys.executable, "-m", "worker"], stdout=output, stderr=subprocess.STDOUT,
                                      env={**os.environ, "DISPUTEFLOW_TEMPORAL_ADDRESS": address})
        await _worker_ready(worker_log, worker)
        watch = WorkerWatch(psutil.Process(worker.pid))
        watcher = asyncio.create_task(watch.run())
        worker_settings = Settings()  # what the worker read: the same environment
        print(f"worker settings: sticky cache {worker_settings.worker_sticky_cache_size}, "
              f"workflow tasks {worker_settings.worker_max_concurrent_workflow_tasks}, "
              f"activities {worker_settings.worker_max_concurrent_activities}, "
              f"activity executor {worker_settings.worker_activity_executor_size}, "
              f"workflow task polls {worker_settings.worker_max_concurrent_workflow_task_polls}, "
              f"activity task polls {worker_settings.worker_max_concurrent_activity_task_polls}")
        window = timedelta(seconds=args.window or max(60, round(args.cases * 0.07)))
        print(f"{args.cases} disputes, seller-response window {window.total_seconds():.0f}s, "
              f"{args.concurrency} concurrent API clients, PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')}")
        services = _services(settings, temporal.client, window)
        from api.main import create_app

        idle_rss, cpu_before = watch.sample(), watch.cpu()
        transport = httpx.ASGITransport(app=create_app(services), raise_app_exceptions=False)
        started = time.monotonic()
        async with httpx.AsyncClient(transport=transport, base_url="http://disputeflow.bench", timeout=120) as http:
            cases = await _open_all(http, args.cases, args.concurrency)
        opening = time.monotonic() - started
        opened_rss, cpu_opened = watch.sample(), watch.cpu()
        cache = await _sticky_cache(sdk_metrics)
        cached = cache.get("size", 0)
        print(f"opened {len(cases)} in {opening:.0f}s ({len(cases) / opening:.1f}/s); worker RSS idle "
              f"{idle_rss / 2**20:.0f} MiB, after opening {opened_rss / 2**20:.0f} MiB "
              f"(~{(opened_rss - idle_rss) / max(cached, 1) / 1024:.0f} KiB per cached workflow); "
              f"worker CPU {1000 * (cpu_opened - cpu_before) / len(cases):.1f} ms per opening", flush=True)
        print(f"sticky cache after opening: {_cache_line(cache)}", flush=True)

        last_due = max(c.due_at for c in cases)
        give_up = last_due + timedelta(seconds=args.grace)
        running = str(Visibility.of("DisputeWorkflow").on_task_queue(task_queue).running())
        while datetime.now(UTC) < give_up and (await temporal.client.count_workflows(running)).count:
            await asyncio.sleep(2)
        ended = datetime.now(UTC)
        cpu_closed = watch.cpu()
        watcher.cancel()
        print(f"sticky cache at the end: {_cache_line(await _sticky_cache(sdk_metrics))}")
        print(f"last deadline {last_due:%H:%M:%S}, run ended {ended:%H:%M:%S}; worker CPU "
              f"{1000 * (cpu_closed - cpu_opened) / len(cases):.1f} ms per closing (incl. archive), "
              f"peak RSS {watch.peak_rss / 2**20:.0f} MiB", flush=True)
        worker.terminate()
        worker.wait(timeout=60)

        reading = asyncio.Semaphore(16)

        async def read(case: Case) -> None:
            async with reading:
                await _read_case(temporal.client, case)

        await asyncio.gather(*(read(c) for c in cases))
        timer = [(c.timer_fired - c.due_at).total_seconds() for c in cases if c.timer_fired]
        closing = [(c.closed - c.due_at).total_seconds() for c in cases if c.closed]
        print(_lateness("timer lateness (fired - due)", timer))
        print(_lateness("closing lateness (settled - due)", closing))
        print("after the timer, per activity, p50 / p99:", *_phases([c for c in cases if c.timer_fired]), sep="\n")
        late = sum(1 for c in cases if c.closed is None or c.closed - c.due_at > LATE)
        print(f"cases still open 5 s after their deadline: {late}; at the end: "
              f"{sum(1 for c in cases if c.closed is None)}")
        print(f"worker RSS peak {watch.peak_rss / 2**20:.0f} MiB (target < 1024 MiB at 10,000); closing p99 "
              f"{_percentile(closing, 0.99):.2f}s (target <= 5 s)")
    except BaseException:
        if worker_log.exists():
            print("worker log (last lines):", *worker_log.read_text(errors="replace").splitlines()[-15:], sep="\n")
        raise
    finally:
        if watcher is not None:
            watcher.cancel()
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.wait()
        await temporal.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--window", type=float, help="seconds from opening to the deadline (default: "
                        "0.07 s per case, at least 60: about the time the opening takes here)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent API clients opening cases")
    parser.add_argument("--grace", type=float, default=300, help="seconds after the last deadline to wait")
    tuning = parser.add_argument_group("worker tuning (default: the settings' defaults)")
    tuning.add_argument("--cache", type=int, help="sticky cache size (cached workflows)")
    tuning.add_argument("--workflow-tasks", type=int, help="max concurrent workflow tasks")
    tuning.add_argument("--activities", type=int, help="max concurrent activities")
    tuning.add_argument("--executor", type=int, help="activity executor threads")
    tuning.add_argument("--workflow-polls", type=int, help="concurrent workflow task polls")
    tuning.add_argument("--activity-polls", type=int, help="concurrent activity task polls")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="disputeflow-burst-") as home:
        asyncio.run(bench(args, Path(home)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

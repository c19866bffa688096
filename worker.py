"""The disputeflow worker: runs dispute workflows and their activities.

It can be killed at any moment; Temporal hands its work to the next worker, and every
activity is idempotent, so nothing is lost and nothing happens twice.
"""

import asyncio
import compileall
import logging
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.worker import Worker

from activities.archive import ArchiveActivities
from activities.ledger import LedgerActivities
from activities.notifications import NotificationActivities
from activities.orders import OrderActivities
from archive.service import Archive, open_archive
from archive.sweeper import ensure_sweep_schedule
from casebook.service import Casebook
from complaints.activities import ComplaintActivities
from complaints.service import ComplaintService
from complaints.workflows import ComplaintWorkflow, SellerStandingWorkflow
from config.settings import Settings, get_settings
from config.temporal import connect
from database import SchemaNotReady, open_database
from ledger import Ledger
from notifications.service import NotificationService
from observability.processes import ActivityAttempts, setup_worker
from orders import OrderService
from policy import load_policy
from policy.coverage import log_calendar_coverage
from workflows.archive_sweep import ArchiveSweepWorkflow
from workflows.dispute import DisputeWorkflow

# The dispute workflow first: replays and listings take the first as the disputes' type.
WORKFLOWS = [DisputeWorkflow, ArchiveSweepWorkflow, ComplaintWorkflow, SellerStandingWorkflow]

log = logging.getLogger("disputeflow.worker")


def build_worker(client: Client, task_queue: str, engine: Engine, executor: ThreadPoolExecutor,
                 ledger: Ledger | None = None, archive: Archive | None = None, **tuning: Any) -> Worker:
    """`tuning`: more Worker options, such as `tuning_options(settings)`."""
    compile_workflow_modules(WORKFLOWS)
    ledger = ledger or Ledger(engine)
    archive = archive or open_archive(get_settings(), engine)
    orders = OrderService(engine, ledger)
    notifications = NotificationService(engine)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[
            *_activity_methods(LedgerActivities(ledger)),
            OrderActivities(orders).release_order,
            *_activity_methods(NotificationActivities(notifications, Casebook(engine))),
            *_activity_methods(ArchiveActivities(archive, ledger, client, DisputeWorkflow.__name__,
                                                 ComplaintWorkflow.__name__)),
            *_activity_methods(ComplaintActivities(ledger, ComplaintService(engine), client)),
        ],
        activity_executor=executor,
        interceptors=[ActivityAttempts()],
        **tuning,
    )


def tuning_options(settings: Settings) -> dict[str, Any]:
    """The Worker options of the settings' worker tuning (config/settings.py)."""
    return {
        "max_concurrent_workflow_tasks": settings.worker_max_concurrent_workflow_tasks,
        "max_concurrent_activities": settings.worker_max_concurrent_activities,
        "max_cached_workflows": settings.worker_sticky_cache_size,
        "max_concurrent_workflow_task_polls": settings.worker_max_concurrent_workflow_task_polls,
        "max_concurrent_activity_task_polls": settings.worker_max_concurrent_activity_task_polls,
        "graceful_shutdown_timeout": settings.worker_shutdown_grace,
    }


def compile_workflow_modules(workflows: list[type]) -> None:
    """The sandbox loads each workflow's module afresh for every case it starts or rebuilds
    from history: from bytecode, or, where none was compiled and PYTHONDONTWRITEBYTECODE is
    set (as in many images), from source, about 8 ms more CPU per case. Compile them once
    here (compileall writes whatever that setting says, and skips what is up to date)."""
    for name in sorted({w.__module__ for w in workflows}):
        path = sys.modules[name].__file__
        if path and not compileall.compile_file(path, quiet=2):
            log.warning("cannot write the bytecode of %s: each new case compiles it from source; "
                        "compile it at install (python -m compileall)", path)


def _activity_methods(instance: object) -> list:
    return [getattr(instance, name) for name in dir(type(instance))
            if hasattr(getattr(type(instance), name), "__temporal_activity_definition")]


async def main() -> None:
    settings = get_settings()
    engine = open_database(settings.database_url)
    ledger = Ledger(engine)
    # Cases run on the policy recorded at opening; this is the one new cases get.
    policy = load_policy(settings.policy)
    observed = setup_worker(settings, ledger, policy)
    log_calendar_coverage(policy, settings.calendar_warning_days, log)
    client = await connect(settings.temporal_address, settings.temporal_namespace, **observed)
    await ensure_sweep_schedule(client, settings.task_queue, settings.archive_sweep_every)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    with ThreadPoolExecutor(max_workers=settings.worker_activity_executor_size) as executor:
        worker = build_worker(client, settings.task_queue, engine, executor, ledger=ledger,
                              **tuning_options(settings))
        async with worker:
            log.info("worker polling task queue %s", settings.task_queue)
            await stop.wait()
            log.info("worker stopping: finishing in-flight activities (up to %s)", settings.worker_shutdown_grace)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except SchemaNotReady as error:
        raise SystemExit(f"worker: {error}") from None

"""The bare worker: the bare workflow and its activities, each inserting one row into its own
table, on the product's engine settings and worker tuning (config/settings.py defaults).

    python -m bench.bare.worker --temporal ADDRESS --task-queue QUEUE --database URL [--schema S]
"""

import argparse
import asyncio
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import JSON, Column, DateTime, Engine, Integer, MetaData, String, Table, insert
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from bench.bare.workflow import WORKFLOWS, Row
from config.settings import Settings
from database import make_engine
from worker import tuning_options

ACTIVITIES = ("freeze_escrow", "notify", "settle_dispute", "release_order", "archive_final_case")

METADATA = MetaData()
TABLES = {name: Table(f"bare_{name}", METADATA,
                      Column("id", Integer, primary_key=True, autoincrement=True),
                      Column("dispute_id", String(100), nullable=False),
                      Column("step", String(50), nullable=False),
                      Column("detail", JSON, nullable=False),
                      Column("created_at", DateTime(timezone=True), nullable=False))
          for name in ACTIVITIES}


def one_row_writer(engine: Engine, name: str):
    table = TABLES[name]

    @activity.defn(name=name)
    def write(row: Row) -> None:
        with engine.begin() as connection:
            connection.execute(insert(table).values(dispute_id=row.dispute_id, step=row.step, detail=row.detail,
                                                    created_at=datetime.now(UTC)))

    return write


def build_worker(client: Client, task_queue: str, engine: Engine, executor: ThreadPoolExecutor,
                 workflows: list[type]) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=workflows,
                  activities=[one_row_writer(engine, name) for name in ACTIVITIES],
                  activity_executor=executor, **tuning_options(Settings()))


async def main() -> None:
    options = argparse.ArgumentParser()
    options.add_argument("--temporal", required=True)
    options.add_argument("--task-queue", required=True)
    options.add_argument("--database", required=True)
    options.add_argument("--schema")
    args = options.parse_args()
    engine = make_engine(args.database, schema=args.schema)
    METADATA.create_all(engine)
    client = await Client.connect(args.temporal)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    with ThreadPoolExecutor(max_workers=Settings().worker_activity_executor_size) as executor:
        async with build_worker(client, args.task_queue, engine, executor, WORKFLOWS):
            await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())

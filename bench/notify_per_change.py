"""Notifications per change against per recipient, side by side: `python -m bench.notify_per_change`.

Complete disputes on the seller-agree-refund path (register the order, open, the seller agrees,
until the workflow completes) through the API, against two workers, each in a process of its
own, on one SQLite database and one Temporal dev server: `after`, the current code (one
`notify_all` per change, after the answer and the money) and `before`, the workflow as it
notified before `notify-all-after-answer` (one `notify` per recipient, in line), both from
bench.notify_variants so that both load alike. Rounds A B B A; per dispute it prints the activities and events in the history, the
history's bytes, the worker's transactions (on SQLite every one takes the write lock) and
commits, and the worker's CPU-ms, with the ratio after/before."""

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest import mock

import httpx
from sqlalchemy import event
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

VARIANTS = ("after", "before")


# ---- the worker process --------------------------------------------------------------------

async def serve(variant: str, address: str, task_queue: str, database_url: str) -> None:
    """Run one worker; answer each line on stdin with its counters so far, as JSON."""
    import worker as worker_module
    from config.temporal import PLAIN_CONVERTER
    from database import make_engine

    engine = make_engine(database_url)
    counts = {"transactions": 0, "commits": 0}
    event.listen(engine, "begin", lambda _: counts.__setitem__("transactions", counts["transactions"] + 1))
    event.listen(engine, "commit", lambda _: counts.__setitem__("commits", counts["commits"] + 1))
    client = await Client.connect(address, data_converter=PLAIN_CONVERTER)
    from bench.notify_variants import NotifiesPerChange, NotifiesPerRecipient
    workflows = [NotifiesPerChange if variant == "after" else NotifiesPerRecipient, *worker_module.WORKFLOWS[1:]]
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=16) as executor:
        with mock.patch.object(worker_module, "WORKFLOWS", workflows):
            worker = worker_module.build_worker(client, task_queue, engine, executor)
        async with worker:
            print("ready", flush=True)
            while await loop.run_in_executor(None, sys.stdin.readline):
                print(json.dumps(counts | {"cpu_s": time.process_time()}), flush=True)


# ---- the driver ----------------------------------------------------------------------------

class Side:
    def __init__(self, variant: str, address: str, database_url: str, temporal: Client):
        from api.main import create_app
        from api.services import Services
        from config.settings import Settings
        from database import make_engine
        from ledger import Ledger
        from notifications.service import NotificationService
        from orders import OrderService
        from policy import default_policy

        self.variant = variant
        self.task_queue = f"bench-{variant}-{uuid.uuid4().hex[:6]}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.notify_per_change", "--serve", variant, "--address", address,
             "--task-queue", self.task_queue, "--database", database_url],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
        assert self.process.stdout.readline().strip() == "ready"
        engine = make_engine(database_url)
        ledger = Ledger(engine)
        self.services = Services(
            settings=Settings(task_queue=self.task_queue, database_url=database_url), temporal=temporal,
            engine=engine, ledger=ledger, orders=OrderService(engine, ledger),
            notifications=NotificationService(engine), policy=default_policy())
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(self.services)),
                                      base_url="http://bench.local")

    def counters(self) -> dict:
        self.process.stdin.write("report\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    async def call(self, method: str, path: str, token: str, body: dict, status: int) -> dict:
        response = await self.http.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
        if response.status_code != status:
            raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text}")
        return response.json()

    async def dispute(self, number: int) -> tuple[str, float]:
        """A complete dispute, and how long the seller's agreement took to answer."""
        from audit.record_scenarios import BUYER, PLATFORM, SELLER
        order_id = f"ORD-{self.variant}-{uuid.uuid4().hex[:8]}-{number}"
        await self.call("POST", "/orders", PLATFORM, {"order_id": order_id, "buyer_id": "alice",
                        "seller_id": "acme", "paid": {"amount": 10_000, "currency": "CNY"}, "shipped": True}, 201)
        opened = await self.call("POST", "/disputes", BUYER, {
            "order_id": order_id, "kind": "refund_only", "reason": "quality",
            "amount": {"amount": 10_000, "currency": "CNY"}, "description": "The kettle leaks from the base."}, 201)
        dispute_id = opened["dispute_id"]
        asked = time.perf_counter()
        await self.call("POST", f"/disputes/{dispute_id}/seller-agree-refund", SELLER, {"note": "Sorry"}, 200)
        answered = time.perf_counter() - asked
        await self.services.temporal.get_workflow_handle(dispute_id).result()
        return dispute_id, answered

    async def round(self, disputes: int, concurrency: int) -> dict:
        gate = asyncio.Semaphore(concurrency)

        async def one(number: int) -> tuple[str, float]:
            async with gate:
                return await self.dispute(number)

        before = self.counters()
        started = time.perf_counter()
        ids, answers = zip(*await asyncio.gather(*(one(n) for n in range(disputes))))
        elapsed = time.perf_counter() - started
        after = self.counters()
        histories = [await self.services.temporal.get_workflow_handle(i).fetch_history() for i in ids]
        scheduled = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        return {
            "disputes/s": disputes / elapsed,
            "agree p50 ms": statistics.median(answers) * 1000,
            "activities": statistics.mean(sum(e.event_type == scheduled for e in h.events) for h in histories),
            "events": statistics.mean(len(h.events) for h in histories),
            "history bytes": statistics.mean(sum(e.ByteSize() for e in h.events) for h in histories),
            "transactions": (after["transactions"] - before["transactions"]) / disputes,
            "commits": (after["commits"] - before["commits"]) / disputes,
            "worker CPU-ms": (after["cpu_s"] - before["cpu_s"]) * 1000 / disputes,
        }

    async def close(self) -> None:
        await self.http.aclose()
        self.process.stdin.close()
        self.process.wait(timeout=30)


async def compare(disputes: int, concurrency: int, repeats: int) -> None:
    from config.temporal import PLAIN_CONVERTER, SearchAttributes
    from database import make_engine, migrate
    from devstack.stack import temporal_binary

    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(), search_attributes=SearchAttributes.ALL,
        data_converter=PLAIN_CONVERTER, dev_server_log_level="error")
    sides: dict[str, Side] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            database_url = f"sqlite:///{tmp}/bench.db"
            migrate(make_engine(database_url))
            address = env.client.service_client.config.target_host
            sides = {v: Side(v, address, database_url, env.client) for v in VARIANTS}
            for side in sides.values():  # warm up: the first workflows load the sandbox
                await side.round(max(2, disputes // 10), concurrency)
            rounds: dict[str, list[dict]] = {v: [] for v in VARIANTS}
            for variant in ("after", "before", "before", "after") * repeats:
                rounds[variant].append(await sides[variant].round(disputes, concurrency))
            print(f"seller-agree-refund path, {disputes} disputes per round, {concurrency} at a time, "
                  f"rounds A B B A x{repeats} (A = after, B = before), SQLite; means over rounds")
            print(f"{'per dispute':<16}{'before':>10}{'after':>10}{'after/before':>14}")
            for figure in rounds["after"][0]:
                b = statistics.mean(r[figure] for r in rounds["before"])
                a = statistics.mean(r[figure] for r in rounds["after"])
                print(f"{figure:<16}{b:>10.1f}{a:>10.1f}{a / b:>14.2f}")
    finally:
        for side in sides.values():
            await side.close()
        await env.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.notify_per_change", description=__doc__.split("\n\n")[0])
    parser.add_argument("--disputes", type=int, default=40, help="disputes per round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1, help="how many times to run the rounds A B B A")
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--task-queue", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.address, args.task_queue, args.database))
    else:
        asyncio.run(compare(args.disputes, args.concurrency, args.repeats))


if __name__ == "__main__":
    main()

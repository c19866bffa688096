"""End-to-end disputes through disputeflow's API against the frozen bare workflow (`bench.bare`).

    .venv/bin/python -m bench.e2e [--clients 32] [--disputes 160] [--rounds 2] [--postgres URL] [--profile DIR]
        [--prefer-minimal]

Each dispute on the product side: register the order (POST /orders), open (POST /disputes,
with an Idempotency-Key), `seller-agree-refund`, and wait until the view says the money is
settled, with the development tokens, against the real worker and API processes. The bare
side opens by update-with-start and sends one update straight from a Temporal client; the
bare-http side makes the same two calls through a thin FastAPI endpoint. Each side has its own
fresh Temporal dev server (the two bare variants share theirs); rounds are interleaved
(product, bare, bare-http, then the reverse) so noise falls on all sides alike; one warm-up
round per side is not counted. After a round every workflow it started has completed
before the processes' CPU time is read, so the CPU per dispute counts the whole case.
"""

import argparse
import asyncio
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from temporalio.client import Client

from bench.bare import calls as bare_calls
from bench.bare.workflow import BareDispute, BareDisputeWorkflow
from bench.figures import Shape, latency_ms, percentile, ratio, verdict
from bench.stack import Process, Processes, free_port, on_each_database, start_both_sides, wait_healthy
from bench.stack import options as stack_options
from config.temporal import Visibility

PLATFORM, BUYER, SELLER = "Bearer dev-platform", "Bearer dev-buyer-alice", "Bearer dev-seller-acme"
AMOUNT = 10_000


@dataclass
class Round:
    disputes: int
    seconds: float
    opens: list[float]
    totals: list[float]
    cpu: dict[str, float]
    workflow_ids: list[str]


@dataclass
class Side:
    """One way of running disputes: `dispute(n)` runs the n-th and returns (open seconds, whole
    seconds, workflow id); `cpu` names the processes whose CPU time counts."""

    name: str
    temporal: Client
    workflow_type: str
    cpu: dict[str, Process]
    dispute: Callable[[int], Awaitable[tuple[float, float, str]]]
    rounds: list[Round] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(r.disputes for r in self.rounds)

    @property
    def throughput(self) -> float:
        return self.count / sum(r.seconds for r in self.rounds)

    def cpu_ms(self, role: str) -> float:
        return sum(r.cpu[role] for r in self.rounds) / self.count * 1000

    def cpu_ms_total(self) -> float:
        return sum(self.cpu_ms(role) for role in self.cpu)

    def latencies(self, which: str) -> list[float]:
        return [value for r in self.rounds for value in getattr(r, which)]


def prefer(minimal: bool) -> dict[str, str]:
    """The header asking the API for the Update's small answer instead of the view (RFC 7240)."""
    return {"Prefer": "return=minimal"} if minimal else {}


def product_side(http: httpx.AsyncClient, temporal: Client, cpu: dict[str, Process], run: str,
                 minimal: bool = False) -> Side:
    async def dispute(n: int) -> tuple[float, float, str]:
        order_id = f"ORD-{run}-{n}"
        started = time.perf_counter()
        await expect(http.post("/orders", headers={"Authorization": PLATFORM}, json={
            "order_id": order_id, "buyer_id": "alice", "seller_id": "acme",
            "paid": {"amount": AMOUNT, "currency": "CNY"}, "shipped": True}), 201)
        opening = time.perf_counter()
        opened = await expect(http.post("/disputes", headers={"Authorization": BUYER, "Idempotency-Key": f"open-{order_id}",
                                                        **prefer(minimal)},
                                     json={"order_id": order_id, "kind": "refund_only", "reason": "quality",
                                           "amount": {"amount": AMOUNT, "currency": "CNY"},
                                           "description": "The kettle leaks from the base.",
                                           "evidence": [{"url": "https://files.example/kettle.jpg",
                                                         "media_type": "image/jpeg"}]}), 201)
        opened_at = time.perf_counter()
        dispute_id = opened["dispute_id"]
        view = await expect(http.post(f"/disputes/{dispute_id}/seller-agree-refund",
                                      headers={"Authorization": SELLER, **prefer(minimal)}, json={}), 200)
        # The small answer has no resolution; the Update answers once the settlement it ordered
        # is done, so its closed state says the money moved.
        if minimal and view["state"] == "SUCCESS":
            view = {"resolution": {"settled": True}}
        while not (view["resolution"] or {}).get("settled"):
            await asyncio.sleep(0.05)  # a client polling the case until its money moved
            view = await expect(http.get(f"/disputes/{dispute_id}", headers={"Authorization": PLATFORM}), 200)
        return opened_at - opening, time.perf_counter() - started, dispute_id

    return Side("product", temporal, "DisputeWorkflow", cpu, dispute)


def bare_side(temporal: Client, task_queue: str, cpu: dict[str, Process], run: str) -> Side:
    async def dispute(n: int) -> tuple[float, float, str]:
        dispute_id = f"bare-{run}-{n}"
        started = time.perf_counter()
        await bare_calls.open_dispute(temporal, task_queue, bare_dispute(dispute_id))
        opened = time.perf_counter()
        await bare_calls.agree_refund(temporal, dispute_id)
        return opened - started, time.perf_counter() - started, dispute_id

    return Side("bare", temporal, BareDisputeWorkflow.__name__, cpu, dispute)


def bare_http_side(http: httpx.AsyncClient, temporal: Client, cpu: dict[str, Process], run: str) -> Side:
    async def dispute(n: int) -> tuple[float, float, str]:
        dispute_id = f"bare-http-{run}-{n}"
        started = time.perf_counter()
        body = bare_dispute(dispute_id).__dict__
        await expect(http.post("/disputes", json=body), 201)
        opened = time.perf_counter()
        await expect(http.post(f"/disputes/{dispute_id}/seller-agree-refund"), 200)
        return opened - started, time.perf_counter() - started, dispute_id

    return Side("bare-http", temporal, BareDisputeWorkflow.__name__, cpu, dispute)


def bare_dispute(dispute_id: str) -> BareDispute:
    return BareDispute(dispute_id=dispute_id, order_id=dispute_id, buyer_id="alice", seller_id="acme",
                       amount=AMOUNT, currency="CNY")


async def expect(request: Awaitable[httpx.Response], status: int) -> dict:
    """The JSON body of a response that must have `status`; any other ends the benchmark."""
    response = await request
    if response.status_code != status:
        raise SystemExit(f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text}")
    return response.json()


async def run_round(side: Side, first: int, disputes: int, clients: int) -> Round:
    """`disputes` disputes by `clients` concurrent clients; then wait until their workflows completed."""
    pending = iter(range(first, first + disputes))
    opens: list[float] = []
    totals: list[float] = []
    ids: list[str] = []

    async def client() -> None:
        for n in pending:
            opened, total, workflow_id = await side.dispute(n)
            opens.append(opened)
            totals.append(total)
            ids.append(workflow_id)

    cpu_before = {role: process.cpu_seconds() for role, process in side.cpu.items()}
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    seconds = time.perf_counter() - started
    await _drained(side)
    cpu = {role: process.cpu_seconds() - cpu_before[role] for role, process in side.cpu.items()}
    return Round(disputes, seconds, opens, totals, cpu, ids)


async def _drained(side: Side, timeout: float = 300) -> None:
    running = str(Visibility.of(side.workflow_type).running())
    deadline = time.monotonic() + timeout
    while (await side.temporal.count_workflows(running)).count:
        if time.monotonic() > deadline:
            raise SystemExit(f"{side.name}: workflows still running {timeout:.0f}s after the round")
        await asyncio.sleep(0.2)


async def shapes(side: Side, sample: int) -> list[Shape]:
    ids = [i for r in side.rounds for i in r.workflow_ids]
    chosen = random.Random(0).sample(ids, min(sample, len(ids)))
    return [Shape.of(await side.temporal.get_workflow_handle(i).fetch_history()) for i in chosen]


def report(database: str, sides: list[Side], samples: dict[str, list[Shape]], clients: int) -> None:
    product, bare = sides[0], sides[1]
    print(f"\n== end-to-end disputes on {database}, {clients} concurrent clients, "
          f"{product.count} disputes per side over {len(product.rounds)} rounds ==")
    for side in sides:
        shape = samples[side.name]
        per_round = ", ".join(f"{r.disputes / r.seconds:.1f}" for r in side.rounds)
        cpu = ", ".join(f"{role} {side.cpu_ms(role):.1f}" for role in side.cpu)
        print(f"{side.name:>10}: {side.throughput:6.2f} disputes/s (rounds: {per_round}); "
              f"open p50/p95/p99 {latency_ms(side.latencies('opens'))} ms; "
              f"dispute p50/p95/p99 {latency_ms(side.latencies('totals'))} ms")
        print(f"{'':>10}  CPU-ms per dispute: {cpu}; per dispute: "
              f"{sum(s.events for s in shape) / len(shape):.1f} history events, "
              f"{sum(s.payload_bytes for s in shape) / len(shape):,.0f} payload bytes")
        print(f"{'':>10}  shape of one: {shape[0].describe()}")
    product_bytes = sum(s.payload_bytes for s in samples["product"]) / len(samples["product"])
    bare_bytes = sum(s.payload_bytes for s in samples["bare"]) / len(samples["bare"])
    print(f"ratios product/bare: throughput {verdict(ratio(product.throughput, bare.throughput), 0.9, at_least=True)}; "
          f"payload bytes {verdict(ratio(product_bytes, bare_bytes), 1.2, at_least=False)}; "
          f"open p50 {ratio(_p50(product, 'opens'), _p50(bare, 'opens')):.2f}x; "
          f"dispute p50 {ratio(_p50(product, 'totals'), _p50(bare, 'totals')):.2f}x")
    for role in ("worker", "temporal"):
        print(f"  CPU per dispute, {role}: {ratio(product.cpu_ms(role), bare.cpu_ms(role)):.2f}x")
    # On a machine others load too, throughput follows each side's share of the cores as much as
    # its cost; the CPU a dispute takes in all its processes gives the rate each side would reach
    # on cores of its own.
    print(f"  CPU per dispute, all processes: product {product.cpu_ms_total():.1f} ms, bare {bare.cpu_ms_total():.1f} ms: "
          f"CPU-bound throughput {verdict(ratio(bare.cpu_ms_total(), product.cpu_ms_total()), 0.9, at_least=True)}")
    if len(sides) > 2:
        http = sides[2]
        print(f"ratio bare-http/bare throughput {ratio(http.throughput, bare.throughput):.2f}x "
              f"(what the HTTP hop alone costs); product/bare-http {ratio(product.throughput, http.throughput):.2f}x")


def _p50(side: Side, which: str) -> float:
    return percentile(side.latencies(which), 0.5)


async def drive(sides: list[Side], args: argparse.Namespace) -> dict[str, list[Shape]]:
    next_n = 0
    for side in sides:  # warm-up, not counted
        if args.warmup:
            await run_round(side, next_n, args.warmup, args.clients)
            next_n += args.warmup
    order = sides + sides[::-1]
    for _ in range(args.rounds):
        for side in order:
            side.rounds.append(await run_round(side, next_n, args.disputes, args.clients))
            next_n += args.disputes
    return {side.name: await shapes(side, args.histories) for side in sides}


def run_on(database: str, product_url: str, bare_url: tuple[str, str | None], running: Processes, home: Path,
           args: argparse.Namespace) -> None:
    run = uuid.uuid4().hex[:6]
    both = start_both_sides(running, database, product_url, bare_url, home)
    if not args.no_http:
        port = free_port()
        bare_http = running.python("bare-http", ["-m", "uvicorn", "bench.bare.http:app", "--no-access-log",
                                                 "--log-level", "warning", "--host", "127.0.0.1", "--port", str(port)],
                                   os.environ | {"BENCH_TEMPORAL": both.bare_temporal, "BENCH_TASK_QUEUE": both.bare_queue})
        bare_http_url = f"http://127.0.0.1:{port}"
        wait_healthy(bare_http_url + "/healthz", [both.bare_worker, bare_http])

    async def go() -> None:
        limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
        async with httpx.AsyncClient(base_url=both.api_url, timeout=120, limits=limits) as product_http:
            product_client = await Client.connect(both.product_temporal)
            bare_client = await Client.connect(both.bare_temporal)
            sides = [
                product_side(product_http, product_client,
                             {"worker": both.worker, "temporal": both.product_server, "api": both.api}, run,
                             args.prefer_minimal),
                bare_side(bare_client, both.bare_queue, {"worker": both.bare_worker, "temporal": both.bare_server},
                          run),
            ]
            if not args.no_http:
                sides.append(bare_http_side(httpx.AsyncClient(base_url=bare_http_url, timeout=120, limits=limits),
                                            bare_client,
                                            {"worker": both.bare_worker, "temporal": both.bare_server, "api": bare_http},
                                            run))
            samples = await drive(sides, args)
            report(database, sides, samples, args.clients)
            print(f"product answers: {'Prefer: return=minimal' if args.prefer_minimal else 'the full view (default)'}")

    asyncio.run(go())


def main(argv: list[str] | None = None) -> None:
    options = stack_options(__doc__)
    options.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    options.add_argument("--disputes", type=int, default=160, help="disputes per side per round (default 160)")
    options.add_argument("--rounds", type=int, default=1,
                         help="times the interleaved sequence (product, bare, bare-http, bare-http, bare, product) "
                              "runs (default 1)")
    options.add_argument("--warmup", type=int, help="disputes per side in the uncounted warm-up round "
                         "(default: one per client)")
    options.add_argument("--histories", type=int, default=40, help="histories per side measured (default 40)")
    options.add_argument("--no-http", action="store_true", help="leave out the bare-http side")
    options.add_argument("--prefer-minimal", action="store_true",
                         help="the product's opens and actions send `Prefer: return=minimal` (default: the full view)")
    args = options.parse_args(argv)
    if args.warmup is None:
        args.warmup = args.clients
    on_each_database(args, "e2e", lambda *database: run_on(*database, args))


if __name__ == "__main__":
    main()

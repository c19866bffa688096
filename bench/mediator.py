"""A mediator's action on taken cases through disputeflow's API against a bare update of the same
shape (`bench.bare.workflow.BareCaseWorkflow`), at 50 concurrent clients by default.

    .venv/bin/python -m bench.mediator [--clients 50] [--cycles 2] [--postgres URL] [--profile DIR]

Each client has its own case, taken by a mediator (opened, refused by the seller, escalated by
the buyer, taken: not measured). A cycle is `mediator-request-evidence` to a party, then that
party's `party-submit-evidence` (the parties take turns); every action's latency is measured.
After one warm-up cycle per case, rounds are interleaved (product, bare, bare, product),
`--cycles` cycles per case per round (a case takes at most five evidence requests per party).
"""

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path

import httpx
from temporalio.client import Client

from bench.bare.workflow import BareCaseWorkflow, BareDispute, EvidenceCall
from bench.e2e import AMOUNT, BUYER, PLATFORM, SELLER, _ok
from bench.figures import latency_ms, percentile, ratio, verdict
from bench.stack import Processes, processes, product_env, start_product, start_temporal_servers
from database import new_schema_name, throwaway_schema

MEDIATOR = "Bearer dev-mediator-mia"
PARTY_TOKEN = {"buyer": BUYER, "seller": SELLER}

# One action on case `case` (a client's own), in cycle `cycle`; the latencies of its calls.
Cycle = Callable[[str, int], Awaitable[list[float]]]


async def taken_case(http: httpx.AsyncClient, order_id: str) -> str:
    await _ok(http.post("/orders", headers={"Authorization": PLATFORM}, json={
        "order_id": order_id, "buyer_id": "alice", "seller_id": "acme",
        "paid": {"amount": AMOUNT, "currency": "CNY"}, "shipped": True}), 201)
    opened = await _ok(http.post("/disputes", headers={"Authorization": BUYER}, json={
        "order_id": order_id, "kind": "refund_only", "reason": "quality",
        "amount": {"amount": AMOUNT, "currency": "CNY"}, "description": "The kettle leaks from the base.",
        "evidence": [{"url": "https://files.example/kettle.jpg", "media_type": "image/jpeg"}]}), 201)
    dispute_id = opened["dispute_id"]
    for token, action, body in (
            (SELLER, "seller-refuse", {"reason": "The kettle was tested before shipping."}),
            (BUYER, "buyer-escalate", {"reason": "The seller will not refund a leaking kettle."}),
            (MEDIATOR, "mediator-take", {})):
        await _ok(http.post(f"/disputes/{dispute_id}/{action}", headers={"Authorization": token}, json=body), 200)
    return dispute_id


def product_cycle(http: httpx.AsyncClient) -> Cycle:
    async def cycle(dispute_id: str, n: int) -> list[float]:
        party = ("buyer", "seller")[n % 2]
        started = time.perf_counter()
        await _ok(http.post(f"/disputes/{dispute_id}/mediator-request-evidence", headers={"Authorization": MEDIATOR},
                            json={"party": party, "request": "Please send a photo of the base."}), 200)
        requested = time.perf_counter()
        await _ok(http.post(f"/disputes/{dispute_id}/party-submit-evidence", headers={"Authorization": PARTY_TOKEN[party]},
                            json={"text": f"Photo {n} of the base, as asked.",
                                  "attachments": [{"url": f"https://files.example/base-{n}.jpg",
                                                   "media_type": "image/jpeg"}]}), 200)
        return [requested - started, time.perf_counter() - requested]

    return cycle


def bare_cycle(temporal: Client) -> Cycle:
    async def cycle(case_id: str, n: int) -> list[float]:
        party = ("buyer", "seller")[n % 2]
        handle = temporal.get_workflow_handle(case_id)
        started = time.perf_counter()
        await handle.execute_update(BareCaseWorkflow.mediator_request_evidence,
                                    EvidenceCall(party, "Please send a photo of the base."))
        requested = time.perf_counter()
        await handle.execute_update(BareCaseWorkflow.party_submit_evidence,
                                    EvidenceCall(party, f"Photo {n} of the base, as asked."))
        return [requested - started, time.perf_counter() - requested]

    return cycle


async def run_round(cycle: Cycle, cases: list[str], first_cycle: int, cycles: int) -> list[float]:
    latencies: list[float] = []

    async def client(case: str) -> None:
        for n in range(first_cycle, first_cycle + cycles):
            latencies.extend(await cycle(case, n))

    await asyncio.gather(*(client(case) for case in cases))
    return latencies


def run_on(database: str, product_url: str, bare_url: tuple[str, str | None], args: argparse.Namespace,
           running: Processes, home: Path) -> None:
    run = uuid.uuid4().hex[:6]
    (product_temporal, _), (bare_temporal, _) = start_temporal_servers(
        running, f"temporal-product-{database}", f"temporal-bare-{database}")
    bare_queue = f"bare-{run}"
    bare_database, bare_schema = bare_url
    running.python("bare-worker", ["-m", "bench.bare.worker", "--temporal", bare_temporal, "--task-queue", bare_queue,
                                   "--database", bare_database, *(["--schema", bare_schema] if bare_schema else [])])
    env = product_env(home, product_temporal, product_url) | {"DISPUTEFLOW_TASK_QUEUE": f"bench-{run}"}
    api_url, _, _ = start_product(running, env)

    async def go() -> None:
        limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
        async with httpx.AsyncClient(base_url=api_url, timeout=120, limits=limits) as http:
            bare = await Client.connect(bare_temporal)
            product_cases = await asyncio.gather(*(taken_case(http, f"ORD-M{run}-{n}") for n in range(args.clients)))
            bare_cases = []
            for n in range(args.clients):
                case = BareDispute(dispute_id=f"bare-case-{run}-{n}", order_id=f"bare-case-{run}-{n}",
                                   buyer_id="alice", seller_id="acme", amount=AMOUNT, currency="CNY")
                await bare.start_workflow(BareCaseWorkflow.run, case, id=case.dispute_id, task_queue=bare_queue)
                bare_cases.append(case.dispute_id)
            sides = {"product": (product_cycle(http), product_cases), "bare": (bare_cycle(bare), bare_cases)}
            measured: dict[str, list[float]] = {"product": [], "bare": []}
            for cycle, cases in sides.values():  # warm-up, not counted
                await run_round(cycle, cases, 0, 1)
            next_cycle = {"product": 1, "bare": 1}
            for name in ("product", "bare", "bare", "product"):
                cycle, cases = sides[name]
                measured[name] += await run_round(cycle, cases, next_cycle[name], args.cycles)
                next_cycle[name] += args.cycles
            for case in bare_cases:
                await bare.get_workflow_handle(case).signal(BareCaseWorkflow.finish)
        print(f"\n== mediator actions on {database}, {args.clients} concurrent clients, "
              f"{len(measured['product'])} actions per side ==")
        for name, values in measured.items():
            print(f"{name:>10}: action p50/p95/p99 {latency_ms(values)} ms")
        p99 = ratio(percentile(measured["product"], 0.99), percentile(measured["bare"], 0.99))
        print(f"ratio product/bare: p99 {verdict(p99, 1.2, at_least=False)}; "
              f"p50 {ratio(percentile(measured['product'], 0.5), percentile(measured['bare'], 0.5)):.2f}x")

    asyncio.run(go())


def main(argv: list[str] | None = None) -> None:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--clients", type=int, default=50, help="concurrent clients, one case each (default 50)")
    options.add_argument("--cycles", type=int, default=2, choices=range(1, 5),
                         help="request/submit cycles per case per round (default 2)")
    options.add_argument("--postgres", metavar="URL", help="also on PostgreSQL, each side in a scratch schema")
    options.add_argument("--profile", metavar="DIR", type=Path,
                         help="record py-spy profiles (speedscope) of every Python process under test into DIR")
    args = options.parse_args(argv)
    print(f"machine: {os.cpu_count()} cores; PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}")
    with tempfile.TemporaryDirectory(prefix="disputeflow-bench-home-") as home:
        with processes(args.profile and args.profile / "sqlite") as running:
            run_on("SQLite", f"sqlite:///{home}/product.db", (f"sqlite:///{home}/bare.db", None), args, running,
                   Path(home) / "sqlite")
        if args.postgres:
            with ExitStack() as schemas, processes(args.profile and args.profile / "postgres") as running:
                product_schema, bare_schema = new_schema_name("bench_mediator"), new_schema_name("bench_bare")
                schemas.enter_context(throwaway_schema(args.postgres, product_schema))
                schemas.enter_context(throwaway_schema(args.postgres, bare_schema))
                sep = "&" if "?" in args.postgres else "?"
                run_on("PostgreSQL", f"{args.postgres}{sep}options=-csearch_path%3D{product_schema}",
                       (args.postgres, bare_schema), args, running, Path(home) / "postgres")


if __name__ == "__main__":
    main()

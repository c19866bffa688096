"""A mediator's action on taken cases through disputeflow's API against a bare update of the same
shape (`bench.bare.workflow.BareCaseWorkflow`), at 50 concurrent clients by default.

    .venv/bin/python -m bench.mediator [--clients 50] [--cycles 2] [--postgres URL] [--profile DIR] [--prefer-minimal]

Each client has its own case, taken by a mediator (opened, refused by the seller, escalated by
the buyer, taken: not measured). A cycle is `mediator-request-evidence` to a party, then that
party's `party-submit-evidence` (the parties take turns); every action's latency is measured.
After one warm-up cycle per case, rounds are interleaved (product, bare, bare, product),
`--cycles` cycles per case per round (a case takes at most five evidence requests per party).
"""

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from temporalio.client import Client

from bench.bare.workflow import BareCaseWorkflow, EvidenceCall
from bench.e2e import AMOUNT, BUYER, PLATFORM, SELLER, bare_dispute, expect, prefer
from bench.figures import latency_ms, percentile, ratio, verdict
from bench.stack import Processes, on_each_database, start_both_sides
from bench.stack import options as stack_options

MEDIATOR = "Bearer dev-mediator-mia"
PARTY_TOKEN = {"buyer": BUYER, "seller": SELLER}

# One action on case `case` (a client's own), in cycle `cycle`; the latencies of its calls.
Cycle = Callable[[str, int], Awaitable[list[float]]]


async def taken_case(http: httpx.AsyncClient, order_id: str) -> str:
    await expect(http.post("/orders", headers={"Authorization": PLATFORM}, json={
        "order_id": order_id, "buyer_id": "alice", "seller_id": "acme",
        "paid": {"amount": AMOUNT, "currency": "CNY"}, "shipped": True}), 201)
    opened = await expect(http.post("/disputes", headers={"Authorization": BUYER}, json={
        "order_id": order_id, "kind": "refund_only", "reason": "quality",
        "amount": {"amount": AMOUNT, "currency": "CNY"}, "description": "The kettle leaks from the base.",
        "evidence": [{"url": "https://files.example/kettle.jpg", "media_type": "image/jpeg"}]}), 201)
    dispute_id = opened["dispute_id"]
    for token, action, body in (
            (SELLER, "seller-refuse", {"reason": "The kettle was tested before shipping."}),
            (BUYER, "buyer-escalate", {"reason": "The seller will not refund a leaking kettle."}),
            (MEDIATOR, "mediator-take", {})):
        await expect(http.post(f"/disputes/{dispute_id}/{action}", headers={"Authorization": token}, json=body), 200)
    return dispute_id


def product_cycle(http: httpx.AsyncClient, minimal: bool) -> Cycle:
    async def cycle(dispute_id: str, n: int) -> list[float]:
        party = ("buyer", "seller")[n % 2]
        started = time.perf_counter()
        await expect(http.post(f"/disputes/{dispute_id}/mediator-request-evidence",
                               headers={"Authorization": MEDIATOR, **prefer(minimal)},
                               json={"party": party, "request": "Please send a photo of the base."}), 200)
        requested = time.perf_counter()
        await expect(http.post(f"/disputes/{dispute_id}/party-submit-evidence",
                               headers={"Authorization": PARTY_TOKEN[party], **prefer(minimal)},
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


def run_on(database: str, product_url: str, bare_url: tuple[str, str | None], running: Processes, home: Path,
           args: argparse.Namespace) -> None:
    run = uuid.uuid4().hex[:6]
    both = start_both_sides(running, database, product_url, bare_url, home)

    async def go() -> None:
        limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
        async with httpx.AsyncClient(base_url=both.api_url, timeout=120, limits=limits) as http:
            bare = await Client.connect(both.bare_temporal)
            product_cases = await asyncio.gather(*(taken_case(http, f"ORD-M{run}-{n}") for n in range(args.clients)))
            bare_cases = []
            for n in range(args.clients):
                case = bare_dispute(f"bare-case-{run}-{n}")
                await bare.start_workflow(BareCaseWorkflow.run, case, id=case.dispute_id, task_queue=both.bare_queue)
                bare_cases.append(case.dispute_id)
            sides = {"product": (product_cycle(http, args.prefer_minimal), product_cases), "bare": (bare_cycle(bare), bare_cases)}
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
              f"{len(measured['product'])} actions per side"
              f"{', product with Prefer: return=minimal' if args.prefer_minimal else ''} ==")
        for name, values in measured.items():
            print(f"{name:>10}: action p50/p95/p99 {latency_ms(values)} ms")
        p99 = ratio(percentile(measured["product"], 0.99), percentile(measured["bare"], 0.99))
        print(f"ratio product/bare: p99 {verdict(p99, 1.2, at_least=False)}; "
              f"p50 {ratio(percentile(measured['product'], 0.5), percentile(measured['bare'], 0.5)):.2f}x")

    asyncio.run(go())


def main(argv: list[str] | None = None) -> None:
    options = stack_options(__doc__)
    options.add_argument("--clients", type=int, default=50, help="concurrent clients, one case each (default 50)")
    options.add_argument("--cycles", type=int, default=2, choices=range(1, 5),
                         help="request/submit cycles per case per round (default 2)")
    options.add_argument("--prefer-minimal", action="store_true",
                         help="the product's actions send `Prefer: return=minimal` (default: the full view)")
    args = options.parse_args(argv)
    on_each_database(args, "mediator", lambda *database: run_on(*database, args))


if __name__ == "__main__":
    main()

"""What the API's two money-entering calls cost the database and the API process, per call:
`POST /orders` (through the app, in-process) and the opening of a dispute up to its start in
Temporal (`api.dispute_service.prepare_opening` and the archive lookup `open_dispute` makes;
Temporal itself is not called).

Per call it prints transactions begun, how many of them took SQLite's write lock, commits,
statements, the API process's CPU milliseconds and the wall-clock milliseconds, on SQLite and
(with --postgres) on a throwaway PostgreSQL schema:

    .venv/bin/python -m bench.api_paths --postgres postgresql://postgres@127.0.0.1/test

The counts are exact; the CPU figures are noisy on a shared machine: compare two trees by
running this script from each in turn (A B B A), never against a figure from another run.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from api import dispute_service
from api.main import create_app
from api.schemas import DisputeCreate
from api.services import Services
from archive.service import open_archive
from archive.source import archived_final
from config.settings import Settings
from database import migrate
from database.bench import Transactions, counted, on_each_database, parser
from identity import Actor, Role
from ledger import Ledger
from notifications.service import NotificationService
from orders import OrderService
from policy import default_policy

PLATFORM = {"Authorization": "Bearer dev-platform"}
BUYER = Actor(role=Role.BUYER, party_id="alice")


def services_on(engine: Engine) -> Services:
    """The API's services on `engine`, without Temporal: neither measured call reaches it."""
    settings = Settings(database_url=engine.url.render_as_string(hide_password=False))
    ledger = Ledger(engine)
    return Services(settings=settings, temporal=None, engine=engine, ledger=ledger,  # type: ignore[arg-type]
                    orders=OrderService(engine, ledger), notifications=NotificationService(engine),
                    policy=default_policy(), archive=open_archive(settings, engine))


def order_body(order_id: str) -> dict:
    return {"order_id": order_id, "buyer_id": "alice", "seller_id": "acme",
            "paid": {"amount": 5_000, "currency": "EUR"}, "shipped": True}


def opening_body(order_id: str) -> DisputeCreate:
    return DisputeCreate(order_id=order_id, kind="refund_only", reason="not_received",
                         amount={"amount": 5_000, "currency": "EUR"}, description="It never came.")


async def register(http: httpx.AsyncClient, order_id: str) -> None:
    response = await http.post("/orders", json=order_body(order_id), headers=PLATFORM)
    assert response.status_code == 201, response.text


async def open_up_to_temporal(services: Services, order_id: str) -> None:
    """What `dispute_service.open_dispute` does before it calls Temporal, with a key as the console sends."""
    dispute = await run_in_threadpool(dispute_service.prepare_opening, services, BUYER, opening_body(order_id),
                                      f"open-{order_id}")
    assert await archived_final(services.archive, dispute.dispute_id) is None


async def measure(engine: Engine, ids: list[str],
                  call: Callable[[str], Awaitable[None]]) -> tuple[Transactions, float, float]:
    """What `call` costs per id: the engine's counts, the process's CPU and the wall-clock milliseconds."""
    with counted(engine) as seen:
        cpu, wall = time.process_time(), time.perf_counter()
        for one in ids:
            await call(one)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return seen.per(len(ids)), cpu * 1000 / len(ids), wall * 1000 / len(ids)


async def bench(label: str, engine: Engine, cases: int, rounds: int) -> None:
    migrate(engine)
    services = services_on(engine)
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://disputeflow.bench") as http:
        warm = [f"WARM-{n}" for n in range(10)]
        for order_id in warm:
            await register(http, order_id)
            await open_up_to_temporal(services, order_id)
        measured: dict[str, list[tuple[Transactions, float, float]]] = {"POST /orders": [], "opening": []}
        for round_ in range(rounds):
            ids = [f"ORD-{round_}-{n}" for n in range(cases)]
            measured["POST /orders"].append(await measure(engine, ids, lambda one: register(http, one)))
            measured["opening"].append(await measure(engine, ids, lambda one: open_up_to_temporal(services, one)))
    # The counts are the same every round; of the times, the least disturbed round's.
    figures = {path: (runs[0][0], min(r[1] for r in runs), min(r[2] for r in runs)) for path, runs in measured.items()}
    print(f"{label}: per call, {rounds} round(s) of {cases} calls (times: the fastest round)")
    print(f"  {'path':<14}{'transactions':>13}{'write-locked':>13}{'commits':>9}{'statements':>12}{'CPU ms':>9}"
          f"{'wall ms':>9}")
    for path, (seen, cpu, wall) in figures.items():
        locked = f"{seen.write_locked:g}" if engine.dialect.name == "sqlite" else "-"
        print(f"  {path:<14}{seen.begun:>13g}{locked:>13}{seen.commits:>9g}{seen.statements:>12g}{cpu:>9.2f}"
              f"{wall:>9.2f}")


def main() -> None:
    options = parser(__doc__, cases=100, rounds=3).parse_args()
    on_each_database("api_paths", options.postgres,
                     lambda label, engine: asyncio.run(bench(label, engine, options.cases, options.rounds)))


if __name__ == "__main__":
    main()

"""Scaling out: two workers and two API processes (real subprocesses, as deployed) on one
Temporal server and one PostgreSQL. Disputes are driven through both APIs while one worker is
killed (SIGKILL) mid-run; every case still completes, its money moves once, and the ledger
reconciles. 35 s on a quiet machine, up to two and a half minutes on a loaded one: the processes
starting, an update on the dead worker answered 503 and retried, a killed activity's 30 s timeout.
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from ledger import Ledger
from tests.postgres import POSTGRES_URL, fresh_schema_engine, new_schema_name
from tests.support import AUDITOR, BUYER, PLATFORM, SELLER, eventually

pytestmark = [pytest.mark.postgres, pytest.mark.scale_out]

PROJECT = Path(__file__).resolve().parents[1]
CASES = 10
CURRENCY = "ISK"  # no other test uses it


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@asynccontextmanager
async def processes(env: dict[str, str], logs: Path) -> AsyncIterator[dict]:
    """`disputeflow migrate` once, then two workers and two APIs; all stopped (SIGTERM) at the end."""
    started: dict[str, subprocess.Popen] = {}

    def start(name: str, *args: str) -> subprocess.Popen:
        log = (logs / f"{name}.log").open("wb")
        started[name] = subprocess.Popen([sys.executable, *args], cwd=PROJECT, env=env, stdout=log,
                                         stderr=subprocess.STDOUT)
        return started[name]

    migrated = subprocess.run([sys.executable, "-m", "devstack.cli", "migrate"], cwd=PROJECT, env=env,
                              capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    ports = [_free_port(), _free_port()]
    try:
        for n in (1, 2):
            start(f"worker-{n}", "-m", "worker")
        for n, port in enumerate(ports, 1):
            start(f"api-{n}", "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port))
        yield {"started": started, "apis": [f"http://127.0.0.1:{port}" for port in ports]}
    finally:
        for process in started.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in started.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def test_two_workers_and_two_apis_lose_nothing_when_a_worker_is_killed(
        temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    task_queue = f"scale-{uuid.uuid4().hex[:10]}"
    client = temporal_env.client
    with fresh_schema_engine(new_schema_name("df_scale"), migrated=False) as engine:
        with engine.connect() as connection:
            schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DISPUTEFLOW_")} | {
            "DISPUTEFLOW_HOME": str(tmp_path),
            "DISPUTEFLOW_DATABASE_URL": f"{POSTGRES_URL}?options=-csearch_path%3D{schema}",
            "DISPUTEFLOW_TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "DISPUTEFLOW_TEMPORAL_NAMESPACE": client.namespace,
            "DISPUTEFLOW_TASK_QUEUE": task_queue,
            "DISPUTEFLOW_POLICY": "demo",
            # Two workers on one machine: their metrics listeners would share the default ports.
            "DISPUTEFLOW_WORKER_METRICS_PORT": "0",
            "DISPUTEFLOW_WORKER_SDK_METRICS_PORT": "0",
        }
        async with processes(env, tmp_path) as running, httpx.AsyncClient(timeout=90) as http:
            apis = running["apis"]

            async def call(api: int, method: str, path: str, token: str, json: dict | None = None) -> dict:
                """As a client does: a 503 (a case whose worker died mid-request) is retried after its
                Retry-After with the same Idempotency-Key, so the action happens once."""
                headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
                for _ in range(10):
                    response = await http.request(method, apis[api % 2] + path, json=json, headers=headers)
                    if response.status_code != 503:
                        break
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                assert response.status_code in (200, 201), (apis[api % 2], path, response.text)
                return response.json()

            async def ready(api: str) -> bool:
                for name, process in running["started"].items():
                    assert process.poll() is None, (tmp_path / f"{name}.log").read_text()
                try:
                    return (await http.get(api + "/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            for api in apis:
                await eventually(lambda api=api: ready(api), timeout=60, what=f"{api} to answer")

            async def open_and_agree(n: int) -> str:
                """Registered through one API, opened and agreed through the other."""
                order_id = f"ORD-SCALE-{uuid.uuid4().hex[:8]}"
                await call(n, "POST", "/orders", PLATFORM, {
                    "order_id": order_id, "buyer_id": "alice", "seller_id": "acme",
                    "paid": {"amount": 1_000 + n, "currency": CURRENCY}, "shipped": True})
                dispute = await call(n + 1, "POST", "/disputes", BUYER, {
                    "order_id": order_id, "kind": "refund_only", "reason": "quality",
                    "amount": {"amount": 1_000 + n, "currency": CURRENCY}, "description": "It broke.",
                    "evidence": []})
                await call(n, "POST", f"/disputes/{dispute['dispute_id']}/seller-agree-refund", SELLER, {})
                return dispute["dispute_id"]

            first = [asyncio.create_task(open_and_agree(n)) for n in range(CASES // 2)]

            async def one_agreed() -> bool:  # the others are still on their way: the kill lands mid-run
                return any(task.done() for task in first)

            await eventually(one_agreed, timeout=60, what="a first case agreed")
            killed = running["started"]["worker-1"]
            killed.send_signal(signal.SIGKILL)
            assert killed.wait(timeout=30) == -signal.SIGKILL
            disputes = [*await asyncio.gather(*first),
                        *await asyncio.gather(*[open_and_agree(n) for n in range(CASES // 2, CASES)])]
            assert len(set(disputes)) == CASES

            async def all_settled() -> list[dict] | None:
                views = [await call(n, "GET", f"/disputes/{d}", PLATFORM) for n, d in enumerate(disputes)]
                done = all(v["state"] == "SUCCESS" and v["resolution"]["settled"] for v in views)
                return views if done else None

            views = await eventually(all_settled, timeout=75, what="every case settled")
            for n, view in enumerate(views):
                assert view["refunded"] == {"amount": 1_000 + n, "currency": CURRENCY}
            report = await call(1, "GET", "/reconciliation", AUDITOR)
            assert report["ok"], report["findings"]

        # Money moved exactly once per case, whichever worker ran it.
        ledger = Ledger(engine)
        for n, dispute_id in enumerate(disputes):
            refunds = [t for t in ledger.transfers(dispute_id=dispute_id) if t.code == "refund"]
            assert [(t.id, t.amount) for t in refunds] == [(f"{dispute_id}-refund", 1_000 + n)]
        assert ledger.check_invariants() == []
    await client.get_schedule_handle(f"archive-sweep-{task_queue}").delete()


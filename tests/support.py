"""What the end-to-end tests share: the stack under test, tokens, and waiting on conditions."""

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from temporalio.worker import Worker

from api.services import Services
from ledger import accounts
from policy import Window

PLATFORM = "dev-platform"
BUYER = "dev-buyer-alice"
OTHER_BUYER = "dev-buyer-bob"
SELLER = "dev-seller-acme"
OTHER_SELLER = "dev-seller-zenith"
MEDIATOR = "dev-mediator-mia"
AUDITOR = "dev-auditor-ada"

# Seconds a test may need to act inside a running window on a loaded 2-core machine: a window
# the test must act within is at least this long (one it only waits out can be shorter).
ACTING_ROOM = 8

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T]], *, timeout: float = 30, what: str = "condition") -> T:
    """Poll `probe` until it returns something truthy; fail with its last value otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} not reached within {timeout}s; last value: {last!r}")


@dataclass
class Stack:
    services: Services
    http: httpx.AsyncClient
    task_queue: str
    # Builds a worker on this test's task queue, optionally around another Ledger.
    make_worker: Callable[..., Worker]
    worker: Worker | None = None
    _worker_run: asyncio.Task | None = None

    async def start_worker(self, **kwargs: Any) -> None:
        self.worker = self.make_worker(**kwargs)
        self._worker_run = asyncio.create_task(self.worker.run())

    async def stop_worker(self) -> None:
        """Stop the worker as a crash would leave things: in-flight work is picked up by the next."""
        if self.worker is not None:
            await self.worker.shutdown()
            assert self._worker_run is not None
            await self._worker_run
            self.worker = None

    def set_windows(self, **windows: Window) -> None:
        """Shorten policy windows (to seconds) for disputes opened from now on."""
        self.services.policy = self.services.policy.model_copy(update=windows)

    async def call(self, method: str, path: str, token: str | None, json: Any = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        return await self.http.request(method, path, json=json, headers=all_headers)

    async def ok(self, method: str, path: str, token: str | None, json: Any = None,
                 headers: dict[str, str] | None = None, status: int = 200) -> Any:
        response = await self.call(method, path, token, json, headers)
        assert response.status_code == status, response.text
        return response.json()

    async def register_order(self, *, amount: int = 10_000, currency: str = "CNY", shipped: bool = True,
                             buyer: str = "alice", seller: str = "acme") -> str:
        order_id = f"ORD-{uuid.uuid4().hex[:10]}"
        await self.ok("POST", "/orders", PLATFORM, {
            "order_id": order_id, "buyer_id": buyer, "seller_id": seller,
            "paid": {"amount": amount, "currency": currency}, "shipped": shipped,
        }, status=201)
        return order_id

    async def open_dispute(self, order_id: str, *, kind: str = "refund_only", amount: int = 10_000,
                           reason: str = "quality", token: str = BUYER, currency: str = "CNY") -> dict:
        return await self.ok("POST", "/disputes", token, {
            "order_id": order_id, "kind": kind, "reason": reason,
            "amount": {"amount": amount, "currency": currency},
            "description": "The kettle leaks from the base.",
            "evidence": [{"url": "https://files.example/kettle.jpg", "media_type": "image/jpeg"}],
        }, status=201)

    async def act(self, dispute_id: str, action: str, token: str, body: dict | None = None) -> dict:
        return await self.ok("POST", f"/disputes/{dispute_id}/{action}", token, body or {})

    async def dispute(self, dispute_id: str, token: str = PLATFORM) -> dict:
        return await self.ok("GET", f"/disputes/{dispute_id}", token)

    async def wait_for_state(self, dispute_id: str, state: str, timeout: float = 30) -> dict:
        async def probe() -> dict | None:
            view = await self.dispute(dispute_id)
            return view if view["state"] == state and settled(view) else None

        return await eventually(probe, timeout=timeout, what=f"{dispute_id} in {state}")

    async def wait_until_quiet(self, dispute_id: str, timeout: float = 30) -> None:
        """Until nothing of the case is in flight (no activity, no workflow task): its history then
        holds all it has done, the messages of its last change among them (they are written after
        the answer and its money)."""
        handle = self.services.temporal.get_workflow_handle(dispute_id)

        async def quiet() -> bool:
            raw = (await handle.describe()).raw_description
            return not raw.pending_activities and not raw.HasField("pending_workflow_task")

        await eventually(quiet, timeout=timeout, what=f"{dispute_id} quiet")

    def balance(self, account_id: str) -> int:
        return self.services.ledger.account(account_id).balance

    def money(self, order_id: str, buyer: str = "alice", seller: str = "acme", currency: str = "CNY") -> dict:
        """The three balances a dispute moves money between, plus what is still held."""
        escrow = self.services.ledger.account(accounts.escrow(order_id, currency))
        return {
            "escrow": escrow.balance,
            "escrow_pending": escrow.debits_pending,
            "buyer_refunds": sum(t.amount for t in self.services.ledger.transfers(order_id=order_id)
                                 if t.code == "refund" and t.credit_account_id == accounts.buyer(buyer, currency)),
            "seller_released": sum(t.amount for t in self.services.ledger.transfers(order_id=order_id)
                                   if t.credit_account_id == accounts.seller(seller, currency)
                                   and t.phase in ("single", "post_pending")),
        }


def settled(view: dict) -> bool:
    """A closed dispute is finished once the ledger has settled its money."""
    return view["state"] not in ("SUCCESS", "CLOSED") or view["resolution"]["settled"]

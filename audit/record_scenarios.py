"""Record the committed histories replayed in CI: `python -m audit.record_scenarios tests/histories`.

Drives one dispute per path of the life cycle (stages 1-3, platform intervention and the
appeal, advance payment) through the real HTTP API and worker on a throwaway Temporal dev
server (the same building blocks as the tests), waits for each to close and writes its
full history in the standard JSON format to `<dir>/<scenario>.json`. Windows are shortened
with `Policy.model_copy` for the timer paths (an appealable ruling's `appeal` window too,
so its case completes), so the whole recording takes a few seconds.

Record only from committed workflow code: a history recorded from work in progress
proves nothing about what production ran. To add a scenario, add a function to
SCENARIOS below, run the module with `--only NAME`, and commit the new file.
"""

import argparse
import asyncio
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from api.services import Services
from config.settings import Settings
from config.temporal import PLAIN_CONVERTER, SearchAttributes
from database import make_engine, migrate
from devstack.stack import temporal_binary
from ledger import Ledger
from notifications.service import NotificationService
from orders import OrderService
from policy import Policy, Window, default_policy
from policy.calendars import YearArrangement, extend_calendar
from worker import build_worker

PLATFORM = "dev-platform"
BUYER = "dev-buyer-alice"
SELLER = "dev-seller-acme"
MEDIATOR = "dev-mediator-mia"
SENIOR = "dev-senior-sam"

# The window a timer scenario lets lapse; long enough for the steps before it.
SHORT = Window.seconds(2)


@dataclass
class Recorder:
    services: Services
    http: httpx.AsyncClient
    base_policy: Policy
    _opening: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Entity workflows that never complete (a seller's standing): recorded as they stand.
    running_for_ever: set[str] = field(default_factory=set)

    async def call(self, method: str, path: str, token: str, body: Any = None, *, status: int = 200,
                   request_id: str | None = None, idempotency_key: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        if request_id:
            headers["X-Request-ID"] = request_id
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        response = await self.http.request(method, path, json=body, headers=headers)
        if response.status_code != status:
            raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text}")
        return response.json()

    async def open(self, scenario: str, *, kind: str = "refund_only", amount: int = 10_000, paid: int = 10_000,
                   shipped: bool = True, reminder_before: timedelta | None = None, currency: str = "CNY",
                   reason: str = "quality", complete_first: bool = False, **windows: Window) -> str:
        """Register an order and open a dispute on it under a policy with `windows` shortened.

        `complete_first`: the buyer confirmed receipt before disputing, so the escrow was
        already paid out to the seller."""
        order_id = f"ORD-{scenario.replace('_', '-')}"
        updates: dict[str, Any] = dict(windows)
        if reminder_before is not None:
            updates["reminder_before"] = reminder_before
        # The API puts services.policy into the workflow input when it opens a case.
        async with self._opening:
            self.services.policy = self.base_policy.model_copy(update=updates)
            await self.call("POST", "/orders", PLATFORM, {
                "order_id": order_id, "buyer_id": "alice", "seller_id": "acme",
                "paid": {"amount": paid, "currency": currency}, "shipped": shipped,
            }, status=201)
            if complete_first:
                await self.call("POST", f"/orders/{order_id}/complete", PLATFORM)
            opened = await self.call("POST", "/disputes", BUYER, {
                "order_id": order_id, "kind": kind, "reason": reason,
                "amount": {"amount": amount, "currency": currency},
                "description": "The kettle leaks from the base.",
                "evidence": [{"url": "https://files.example/kettle.jpg", "media_type": "image/jpeg"}],
            }, status=201, request_id=f"rec-{scenario}-open", idempotency_key=f"{scenario}-open")
        return opened["dispute_id"]

    async def act(self, dispute_id: str, action: str, token: str, body: dict | None = None, *,
                  step: str | None = None) -> dict:
        """One action. The idempotency key is also the Temporal update id: the second action of
        the same kind on a case (a second take or ruling after an appeal) needs its own `step`."""
        key = f"{dispute_id}-{action}" + (f"-{step}" if step else "")
        return await self.call("POST", f"/disputes/{dispute_id}/{action}", token, body or {},
                               request_id=f"rec-{key}", idempotency_key=key)

    async def top_up(self, amount: int, currency: str, reference: str) -> dict:
        """Fund the platform's guarantee fund in `currency` (one fund per currency)."""
        return await self.call("POST", "/guarantee-fund/top-ups", PLATFORM,
                               {"amount": {"amount": amount, "currency": currency}, "reference": reference},
                               status=201)

    async def wait_until(self, dispute_id: str, condition: Callable[[dict], bool], what: str,
                         timeout: float = 30) -> dict:
        """Poll the dispute's view until `condition` holds (a timer decides, nobody acts)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            view = await self.call("GET", f"/disputes/{dispute_id}", PLATFORM)
            if condition(view):
                return view
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{dispute_id}: {what} did not happen within {timeout}s")
            await asyncio.sleep(0.1)

    async def history(self, dispute_id: str) -> WorkflowHistory:
        """The complete history, once the workflow has finished."""
        handle = self.services.temporal.get_workflow_handle(dispute_id)
        if dispute_id not in self.running_for_ever:
            await asyncio.wait_for(handle.result(), timeout=60)
        return await handle.fetch_history()


Scenario = Callable[[Recorder], Awaitable[str]]


async def seller_agrees_refund(r: Recorder) -> str:
    d = await r.open("seller_agrees_refund")
    await r.act(d, "seller-agree-refund", SELLER, {"note": "Sorry about that"})
    return d


async def partial_offer_accepted(r: Recorder) -> str:
    d = await r.open("partial_offer_accepted", amount=8_000)
    await r.act(d, "seller-offer-partial", SELLER, {"amount": {"amount": 3_000, "currency": "CNY"}})
    await r.act(d, "buyer-accept-offer", BUYER, {"note": "Fine"})
    return d


async def refusal_revise_refused_offer_withdraw(r: Recorder) -> str:
    d = await r.open("refusal_revise_refused_offer_withdraw")
    await r.act(d, "seller-refuse", SELLER, {"reason": "Item was fine on dispatch"})
    await r.act(d, "buyer-revise", BUYER, {"request": {
        "kind": "refund_only", "reason": "quality", "amount": {"amount": 6_000, "currency": "CNY"},
        "description": "Half of it leaks; asking for part of the price.",
    }})
    await r.act(d, "seller-offer-partial", SELLER, {"amount": {"amount": 2_000, "currency": "CNY"}})
    await r.act(d, "buyer-refuse-offer", BUYER, {"note": "Too little"})
    await r.act(d, "buyer-withdraw", BUYER, {"reason": "Fixed it myself"})
    return d


async def return_shipped_and_confirmed(r: Recorder) -> str:
    d = await r.open("return_shipped_and_confirmed", kind="return_and_refund")
    await r.act(d, "seller-agree-return", SELLER, {"return_address": "Returns desk, 1 Warehouse Rd"})
    await r.act(d, "buyer-ship-return", BUYER, {"carrier": "SF Express", "tracking_number": "SF1234567890"})
    await r.act(d, "seller-confirm-return", SELLER, {})
    return d


async def timer_seller_silence(r: Recorder) -> str:
    # With a reminder before the deadline, so a reminder timer fires first.
    return await r.open("timer_seller_silence", seller_response_shipped_refund_only=Window.seconds(3),
                        reminder_before=timedelta(seconds=1.5))


async def timer_buyer_silence_after_refusal(r: Recorder) -> str:
    d = await r.open("timer_buyer_silence_after_refusal", buyer_response_after_refusal=SHORT)
    await r.act(d, "seller-refuse", SELLER, {"reason": "Item was fine on dispatch"})
    return d


async def timer_buyer_silence_on_offer(r: Recorder) -> str:
    d = await r.open("timer_buyer_silence_on_offer", buyer_response_to_offer=SHORT)
    await r.act(d, "seller-offer-partial", SELLER, {"amount": {"amount": 1_000, "currency": "CNY"}})
    return d


async def timer_no_return_shipped(r: Recorder) -> str:
    d = await r.open("timer_no_return_shipped", kind="return_and_refund", buyer_return_shipment=SHORT)
    await r.act(d, "seller-agree-return", SELLER, {"return_address": "Returns desk, 1 Warehouse Rd"})
    return d


async def timer_unconfirmed_return(r: Recorder) -> str:
    d = await r.open("timer_unconfirmed_return", kind="return_and_refund", amount=6_000, paid=7_000,
                     seller_confirm_return=SHORT)
    await r.act(d, "seller-agree-return", SELLER, {"return_address": "Returns desk, 1 Warehouse Rd"})
    await r.act(d, "buyer-ship-return", BUYER, {"carrier": "YTO", "tracking_number": "YT998877"})
    return d


# ---- platform intervention (stage 4) and the appeal -------------------------------------

# Rulings that may be appealed keep the case open for the appeal window: shortened so it lapses.
APPEAL_LAPSES = Window.seconds(2)
RETURN_ADDRESS = "Returns desk, 1 Warehouse Rd"


async def _escalated(r: Recorder, scenario: str, **open_args: Any) -> str:
    """Seller refuses, buyer asks the platform to step in (平台介入)."""
    d = await r.open(scenario, **open_args)
    await r.act(d, "seller-refuse", SELLER, {"reason": "Item left us in perfect condition"})
    await r.act(d, "buyer-escalate", BUYER, {"reason": "Seller ignores clear photos of the defect"})
    return d


async def escalated_full_refund(r: Recorder) -> str:
    d = await _escalated(r, "escalated_full_refund", amount=8_000, appeal=APPEAL_LAPSES)
    await r.act(d, "mediator-take", MEDIATOR)
    await r.act(d, "mediator-rule", MEDIATOR, {"decision": "full_refund", "rationale": "Defect proven"})
    return d


async def escalated_partial_refund(r: Recorder) -> str:
    d = await _escalated(r, "escalated_partial_refund", amount=8_000, appeal=APPEAL_LAPSES)
    await r.act(d, "mediator-take", MEDIATOR)
    await r.act(d, "mediator-rule", MEDIATOR, {"decision": "partial_refund", "rationale": "Minor defect",
                                               "amount": {"amount": 3_000, "currency": "CNY"}})
    return d


async def escalated_reject(r: Recorder) -> str:
    d = await _escalated(r, "escalated_reject", amount=8_000, appeal=APPEAL_LAPSES)
    await r.act(d, "mediator-take", MEDIATOR)
    await r.act(d, "mediator-rule", MEDIATOR, {"decision": "reject", "rationale": "No defect shown"})
    return d


async def refund_after_return_ruling(r: Recorder) -> str:
    d = await _escalated(r, "refund_after_return_ruling", kind="return_and_refund")
    await r.act(d, "mediator-take", MEDIATOR)
    await r.act(d, "mediator-rule", MEDIATOR, {"decision": "refund_after_return",
                                               "rationale": "Return it for a full refund",
                                               "return_address": RETURN_ADDRESS})
    await r.act(d, "buyer-ship-return", BUYER, {"carrier": "SF Express", "tracking_number": "SF00112233"})
    await r.act(d, "seller-confirm-return", SELLER, {})
    return d


async def evidence_requested_answered_and_missed(r: Recorder) -> str:
    # Once the buyer has submitted, the seller's request runs on evidence_response_after_buyer.
    d = await _escalated(r, "evidence_requested_answered_and_missed", amount=6_000,
                         evidence_response_after_buyer=SHORT, appeal=APPEAL_LAPSES)
    await r.act(d, "mediator-take", MEDIATOR)
    await r.act(d, "mediator-request-evidence", MEDIATOR, {"party": "buyer", "request": "A video of the leak, please"},
                step="buyer")
    await r.act(d, "party-submit-evidence", BUYER, {"text": "Video attached", "attachments": [
        {"url": "https://files.example/leak.mp4", "sha256": "a" * 64, "media_type": "video/mp4"}]})
    await r.act(d, "mediator-request-evidence", MEDIATOR, {"party": "seller", "request": "Your dispatch photos"},
                step="seller")
    await r.wait_until(d, lambda v: v["events"][-1]["kind"] == "evidence_missed",
                       "the seller's evidence request to lapse")
    await r.act(d, "mediator-rule", MEDIATOR, {
        "decision": "full_refund", "rationale": "The buyer's video shows the leak; the seller sent nothing"})
    return d


async def take_sla_breached_senior_takes(r: Recorder) -> str:
    d = await _escalated(r, "take_sla_breached_senior_takes", mediator_take=SHORT, appeal=APPEAL_LAPSES)
    await r.wait_until(d, lambda v: v["intervention"]["flagged"], "the take SLA to lapse")
    await r.act(d, "mediator-take", SENIOR)
    await r.act(d, "mediator-rule", SENIOR, {"decision": "partial_refund", "rationale": "Part of the set leaks",
                                             "amount": {"amount": 4_000, "currency": "CNY"}})
    return d


async def appeal_final_ruling(r: Recorder) -> str:
    d = await _escalated(r, "appeal_final_ruling")
    await r.act(d, "mediator-take", MEDIATOR, step="first")
    await r.act(d, "mediator-rule", MEDIATOR, {"decision": "reject", "rationale": "Photos unclear"}, step="first")
    await r.act(d, "party-appeal", BUYER, {"reason": "The ruling ignored the lab report",
                                          "new_information": "Independent lab report attached"})
    await r.act(d, "mediator-take", SENIOR, step="appeal")
    # Final: the escrow went to the seller at the first ruling; this moves the difference back.
    await r.act(d, "mediator-rule", SENIOR, {"decision": "full_refund",
                                             "rationale": "The lab report proves the defect"}, step="appeal")
    return d


async def appeal_withdrawn(r: Recorder) -> str:
    d = await _escalated(r, "appeal_withdrawn")
    await r.act(d, "mediator-take", MEDIATOR, step="first")
    await r.act(d, "mediator-rule", MEDIATOR, {"decision": "partial_refund", "rationale": "Part of the set leaks",
                                               "amount": {"amount": 4_000, "currency": "CNY"}})
    await r.act(d, "party-appeal", SELLER, {"reason": "The set works", "new_information": "Usage logs"})
    await r.act(d, "mediator-take", SENIOR, step="appeal")
    # The seller withdraws its appeal: the first ruling stands, final, and no money moves.
    await r.act(d, "party-withdraw-appeal", SELLER, {"reason": "Settled with the buyer"})
    return d


async def seller_reports_return_problem(r: Recorder) -> str:
    d = await r.open("seller_reports_return_problem", kind="return_and_refund", amount=5_000, paid=5_000,
                     appeal=APPEAL_LAPSES)
    await r.act(d, "seller-agree-return", SELLER, {"return_address": RETURN_ADDRESS})
    await r.act(d, "buyer-ship-return", BUYER, {"carrier": "SF Express", "tracking_number": "SF55667788"})
    await r.act(d, "seller-report-return-problem", SELLER, {"problem": "not_received",
                                                           "description": "Tracking shows nothing since pickup"})
    await r.act(d, "mediator-take", MEDIATOR)
    await r.act(d, "mediator-rule", MEDIATOR, {"decision": "reject",
                                               "rationale": "Carrier confirms no parcel was handed in"})
    return d


# ---- advance payment (先行垫付) from the guarantee fund ------------------------------------
# Each case pays in a currency of its own, so each has a guarantee fund of its own.


def _advance(amount: int, currency: str, *, return_goods: bool) -> dict:
    body = {"amount": {"amount": amount, "currency": currency}, "rationale": "Defect shown, seller unresponsive",
            "buyer_in_good_faith": True, "return_goods": return_goods}
    if return_goods:
        body["return_address"] = RETURN_ADDRESS
    return body


async def advance_return_confirmed(r: Recorder) -> str:
    await r.top_up(100_000, "EUR", "rec-advance-return-confirmed")
    d = await _escalated(r, "advance_return_confirmed", kind="return_and_refund", currency="EUR")
    await r.act(d, "mediator-take", MEDIATOR)
    await r.act(d, "mediator-order-advance", MEDIATOR, _advance(8_000, "EUR", return_goods=True))
    await r.act(d, "buyer-ship-return", BUYER, {"carrier": "DHL", "tracking_number": "DHL12345"})
    await r.act(d, "seller-confirm-return", SELLER, {})
    return d


async def advance_no_return_clawback(r: Recorder) -> str:
    await r.top_up(30_000, "GBP", "rec-advance-no-return-clawback")
    d = await _escalated(r, "advance_no_return_clawback", kind="return_and_refund", amount=9_000, paid=9_000,
                         currency="GBP", buyer_return_shipment=SHORT)
    await r.act(d, "mediator-take", MEDIATOR)
    await r.act(d, "mediator-order-advance", MEDIATOR, _advance(9_000, "GBP", return_goods=True))
    return d


async def advance_recovered_from_seller(r: Recorder) -> str:
    await r.top_up(20_000, "NZD", "rec-advance-recovered-from-seller")
    d = await _escalated(r, "advance_recovered_from_seller", amount=6_000, paid=6_000, currency="NZD",
                         reason="not_received", complete_first=True, appeal=APPEAL_LAPSES)
    await r.act(d, "mediator-take", MEDIATOR)
    await r.act(d, "mediator-order-advance", MEDIATOR, _advance(6_000, "NZD", return_goods=False))
    await r.act(d, "mediator-rule", MEDIATOR, {"decision": "full_refund", "rationale": "The seller never shipped"})
    return d


async def calendar_update_recounts_ruling_sla(r: Recorder) -> str:
    """A 30-working-day ruling SLA counted past the calendar's coverage; the platform moves the
    case to a policy whose calendar adds the next year, which re-counts it; then the ruling."""
    name = "calendar_update_recounts_ruling_sla"
    windows = {"mediator_rule": Window.working(30), "appeal": APPEAL_LAPSES}
    d = await _escalated(r, name, **windows)
    recorded = r.base_policy.model_copy(update=windows)
    calendar = recorded.calendar
    year = calendar.covers_to.year + 1
    # Illustrative, for the recording only, not the State Council's arrangement: the year's
    # statutory days off and one bridging day after New Year's Day.
    statutory = [d for d in calendar.provisional_holidays if d.year == year]
    illustrative = YearArrangement(year=year, published=True, source="recording: illustrative arrangement",
                                   holidays=[*statutory, calendar.next_working_day(date(year, 1, 1))])
    extended = recorded.model_copy(update={"version": f"{recorded.version}+{year}",
                                           "calendar": extend_calendar(calendar, illustrative)})
    async with r._opening:  # services.policy is what the API runs; no case opens meanwhile
        r.services.policy = extended
        await r.act(d, "calendar-update", PLATFORM, {"policy_version": extended.version})
    await r.act(d, "mediator-take", MEDIATOR)
    await r.act(d, "mediator-rule", MEDIATOR, {"decision": "full_refund", "rationale": "Defect proven"})
    return d


async def archived_seller_agrees_refund(r: Recorder) -> str:
    """Since `archive-final-case`: the case archives its final part before completing."""
    d = await r.open("archived_seller_agrees_refund")
    await r.act(d, "seller-agree-refund", SELLER, {"note": "Sorry about that"})
    return d


async def archived_escalated_full_refund(r: Recorder) -> str:
    """Since `archive-final-case`: archived once the appeal window lapsed and the money settled."""
    d = await _escalated(r, "archived_escalated_full_refund", amount=8_000, appeal=APPEAL_LAPSES)
    await r.act(d, "mediator-take", MEDIATOR)
    await r.act(d, "mediator-rule", MEDIATOR, {"decision": "full_refund", "rationale": "Defect proven"})
    return d


async def policy_ref_seller_agrees_refund(r: Recorder) -> str:
    """Opened under the shipped default policy unchanged: the input carries its `PolicyRef`
    (policy/versions), not the body; so does the final case's archive write."""
    d = await r.open("policy_ref_seller_agrees_refund")
    await r.act(d, "seller-agree-refund", SELLER, {"note": "Sorry about that"})
    return d


async def notified_all_seller_agrees_refund(r: Recorder) -> str:
    """Since `notify-all-after-answer`: each change's notifications in one `notify_all`, after the money."""
    d = await r.open("notified_all_seller_agrees_refund")
    await r.act(d, "seller-agree-refund", SELLER, {"note": "Sorry about that"})
    return d


async def notified_all_timer_seller_silence(r: Recorder) -> str:
    """Since `notify-all-after-answer`: the reminder and the lapse, each in one `notify_all`."""
    return await r.open("notified_all_timer_seller_silence", seller_response_shipped_refund_only=Window.seconds(3),
                        reminder_before=timedelta(seconds=1.5))


async def notified_all_escalated_full_refund(r: Recorder) -> str:
    """Since `notify-all-after-answer`: the mediator is told in the same `notify_all` as the parties."""
    d = await _escalated(r, "notified_all_escalated_full_refund", amount=8_000, appeal=APPEAL_LAPSES)
    await r.act(d, "mediator-take", MEDIATOR)
    await r.act(d, "mediator-rule", MEDIATOR, {"decision": "full_refund", "rationale": "Defect proven"})
    return d


SCENARIOS: dict[str, Scenario] = {f.__name__: f for f in (
    seller_agrees_refund,
    partial_offer_accepted,
    refusal_revise_refused_offer_withdraw,
    return_shipped_and_confirmed,
    timer_seller_silence,
    timer_buyer_silence_after_refusal,
    timer_buyer_silence_on_offer,
    timer_no_return_shipped,
    timer_unconfirmed_return,
    escalated_full_refund,
    escalated_partial_refund,
    escalated_reject,
    refund_after_return_ruling,
    evidence_requested_answered_and_missed,
    take_sla_breached_senior_takes,
    appeal_final_ruling,
    appeal_withdrawn,
    seller_reports_return_problem,
    advance_return_confirmed,
    advance_no_return_clawback,
    advance_recovered_from_seller,
    calendar_update_recounts_ruling_sla,
    archived_seller_agrees_refund,
    archived_escalated_full_refund,
    policy_ref_seller_agrees_refund,
    notified_all_seller_agrees_refund,
    notified_all_timer_seller_silence,
    notified_all_escalated_full_refund,
)}


async def record(out_dir: Path, names: list[str], scenarios: dict[str, Scenario] = SCENARIOS) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        search_attributes=SearchAttributes.ALL,
        # Committed histories stay plain JSON, so they replay anywhere without a key.
        data_converter=PLAIN_CONVERTER,
        dev_server_log_level="error",
    )
    written: list[Path] = []
    try:
        with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=16) as executor:
            engine = make_engine(f"sqlite:///{tmp}/disputeflow.db")
            migrate(engine)
            task_queue = f"record-{uuid.uuid4().hex[:8]}"
            ledger = Ledger(engine)
            base = default_policy()
            services = Services(
                settings=Settings(task_queue=task_queue, database_url=str(engine.url)),
                temporal=env.client, engine=engine, ledger=ledger, orders=OrderService(engine, ledger),
                notifications=NotificationService(engine), policy=base,
            )
            worker = build_worker(env.client, task_queue, engine, executor, ledger=ledger)
            transport = httpx.ASGITransport(app=create_app(services))
            async with worker, httpx.AsyncClient(transport=transport, base_url="http://record.local") as http:
                recorder = Recorder(services=services, http=http, base_policy=base)

                async def one(name: str) -> Path:
                    dispute_id = await scenarios[name](recorder)
                    history = await recorder.history(dispute_id)
                    path = out_dir / f"{name}.json"
                    path.write_text(history.to_json() + "\n", encoding="utf-8")
                    print(f"recorded {name}: {dispute_id}, {len(history.events)} events -> {path}", flush=True)
                    return path

                written = list(await asyncio.gather(*(one(name) for name in names)))
    finally:
        await env.shutdown()
    return written


# What a recording depends on: a change here changes what the histories record.
RECORDED_CODE = ["workflows", "activities", "complaints", "config", "identity", "money", "policy", "worker.py"]


def code_version() -> tuple[str | None, list[str]]:
    """The commit the workflow code comes from, and its uncommitted changes (if a git checkout)."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *RECORDED_CODE], cwd=root,
                               capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return None, []
    return commit, dirty


def main(argv: list[str] | None = None, scenarios: dict[str, Scenario] = SCENARIOS,
         prog: str = "python -m audit.record_scenarios") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="where to write <scenario>.json, e.g. tests/histories")
    parser.add_argument("--only", action="append", choices=sorted(scenarios), metavar="NAME",
                        help="record only this scenario (repeatable); default: all of " + ", ".join(scenarios))
    parser.add_argument("--allow-uncommitted", action="store_true",
                        help="record even though the workflow code has uncommitted changes")
    args = parser.parse_args(argv)
    commit, dirty = code_version()
    if dirty and not args.allow_uncommitted:
        print("The workflow code has uncommitted changes; record from a clean checkout of a commit "
              "(see README, Auditing):\n  " + "\n  ".join(dirty), file=sys.stderr)
        return 2
    print(f"recording with the workflow code of {commit or 'an unknown commit (not a git checkout)'}", flush=True)
    asyncio.run(record(args.out_dir, args.only or list(scenarios), scenarios))
    return 0


if __name__ == "__main__":
    sys.exit(main())

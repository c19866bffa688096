"""The bare workflow (shape frozen in `bench.bare`'s docstring). Kept small and importing only
temporalio: the sandbox loads it afresh for every workflow, as it loads the product's."""

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from config.temporal import SearchAttributes

ACTIVITY_TIMEOUT = timedelta(seconds=30)
# How long the case waits for the seller when it gets to wait (the product's seller-response window).
SELLER_WINDOW = timedelta(days=7)


@dataclass
class BareDispute:
    """What a lean case needs to know: the order and the buyer's request (no policy)."""

    dispute_id: str
    order_id: str
    buyer_id: str
    seller_id: str
    amount: int
    currency: str
    kind: str = "refund_only"
    reason: str = "quality"
    description: str = "The kettle leaks from the base."
    evidence: list[dict[str, str]] = field(default_factory=lambda: [
        {"url": "https://files.example/kettle.jpg", "media_type": "image/jpeg"}])


@dataclass
class Row:
    """What an activity writes: one row of its own table, `detail` what the product's activity
    is told (the transfer's parties and amount, a notification's recipient and text)."""

    dispute_id: str
    step: str
    detail: dict[str, Any]


@dataclass
class Answer:
    """The small answer a caller needs."""

    dispute_id: str
    state: str
    allowed_actions: list[str]


async def write_row(dispute_id: str, activity: str, detail: dict[str, Any]) -> None:
    await workflow.execute_activity(activity, Row(dispute_id, activity, detail), start_to_close_timeout=ACTIVITY_TIMEOUT)


@workflow.defn
class BareDisputeWorkflow:
    @workflow.init
    def __init__(self, dispute: BareDispute) -> None:
        self._dispute = dispute
        self._state = "WAIT_SELLER_AGREE"
        self._frozen = False
        self._agreed = False
        self._lock = asyncio.Lock()
        self._upsert_state(deadline=workflow.now() + SELLER_WINDOW)

    @workflow.run
    async def run(self, dispute: BareDispute) -> Answer:
        async with self._lock:
            await self._write("freeze_escrow", {"order_id": dispute.order_id, "seller_id": dispute.seller_id,
                                                "currency": dispute.currency})
            self._frozen = True
            await self._notify_parties("opened", "seller_response")
        if not self._agreed:  # the product's clock waits (with a deadline timer) only while the case is open
            try:
                await workflow.wait_condition(lambda: self._agreed, timeout=SELLER_WINDOW)
            except asyncio.TimeoutError:
                pass
        await workflow.wait_condition(workflow.all_handlers_finished)
        if workflow.patched("bare-archive"):
            await self._write("archive_final_case", {"state": self._state, "refunded": self._dispute.amount})
        return self._answer()

    @workflow.update
    async def opened(self) -> Answer:
        await workflow.wait_condition(lambda: self._frozen)
        return self._answer()

    @workflow.update
    async def seller_agree_refund(self) -> Answer:
        self._state = "SUCCESS"
        self._agreed = True
        self._upsert_state(deadline=None)
        async with self._lock:
            dispute = self._dispute
            await self._write("settle_dispute", {"order_id": dispute.order_id, "buyer_id": dispute.buyer_id,
                                                 "seller_id": dispute.seller_id, "currency": dispute.currency,
                                                 "refund": dispute.amount, "step": "seller_agreed_refund"})
            await self._write("release_order", {"order_id": dispute.order_id})
            if workflow.patched("bare-settlement"):
                workflow.upsert_search_attributes([SearchAttributes.SETTLEMENT.value_set("settled")])
            await self._notify_parties("seller_agreed_refund", None)
        return self._answer()

    def _answer(self) -> Answer:
        allowed = ["seller_agree_refund", "seller_refuse", "buyer_withdraw"] if not self._agreed else []
        return Answer(self._dispute.dispute_id, self._state, allowed)

    async def _notify_parties(self, event: str, action_due: str | None) -> None:
        dispute = self._dispute
        for role, party in (("buyer", dispute.buyer_id), ("seller", dispute.seller_id)):
            data = {"state": self._state, "event": event}
            if action_due and role == "seller":
                data |= {"action_due": action_due, "due_at": (workflow.now() + SELLER_WINDOW).isoformat()}
            await self._write("notify", {"recipient_role": role, "recipient_id": party, "kind": "state_changed",
                                         "subject": f"Dispute {dispute.dispute_id}: {event.replace('_', ' ')}",
                                         "data": data})

    def _upsert_state(self, deadline: datetime | None) -> None:
        workflow.upsert_search_attributes([
            SearchAttributes.STATE.value_set(self._state),
            SearchAttributes.NEXT_DEADLINE.value_set(deadline) if deadline
            else SearchAttributes.NEXT_DEADLINE.value_unset(),
            SearchAttributes.MEDIATOR.value_unset(),
            SearchAttributes.AWAITING_MEDIATOR.value_set(False),
            SearchAttributes.URGENT.value_set(False),
            SearchAttributes.NEEDS_SENIOR.value_set(False),
        ])

    async def _write(self, activity: str, detail: dict[str, Any]) -> None:
        await write_row(self._dispute.dispute_id, activity, detail)
@dataclass
class EvidenceCall:
    party: str  # "buyer" or "seller"
    text: str


@workflow.defn
class BareCaseWorkflow:
    """A taken case under the platform's intervention, for the mediator benchmark: each of its two
    updates is the shape of the product's mediator-request-evidence and party-submit-evidence
    (search attributes upserted, the buyer, seller and mediator notified one after another, the
    case's deadline timer re-planned), frozen from the same commit as `BareDisputeWorkflow`."""

    @workflow.init
    def __init__(self, dispute: BareDispute) -> None:
        self._dispute = dispute
        self._changes = 0
        self._deadline = workflow.now() + SELLER_WINDOW
        self._lock = asyncio.Lock()
        self._done = False

    @workflow.run
    async def run(self, dispute: BareDispute) -> None:
        while not self._done:
            seen = self._changes
            try:
                await workflow.wait_condition(lambda: self._changes != seen or self._done,
                                              timeout=self._deadline - workflow.now())
            except asyncio.TimeoutError:
                return
        await workflow.wait_condition(workflow.all_handlers_finished)

    @workflow.update
    async def mediator_request_evidence(self, call: EvidenceCall) -> Answer:
        return await self._act("evidence_requested", call)

    @workflow.update
    async def party_submit_evidence(self, call: EvidenceCall) -> Answer:
        return await self._act("evidence_submitted", call)

    @workflow.signal
    def finish(self) -> None:
        self._done = True

    async def _act(self, event: str, call: EvidenceCall) -> Answer:
        self._deadline = workflow.now() + SELLER_WINDOW
        self._changes += 1
        workflow.upsert_search_attributes([
            SearchAttributes.STATE.value_set("PLATFORM_INTERVENING"),
            SearchAttributes.NEXT_DEADLINE.value_set(self._deadline),
            SearchAttributes.MEDIATOR.value_set("mia"),
            SearchAttributes.AWAITING_MEDIATOR.value_set(False),
            SearchAttributes.URGENT.value_set(False),
            SearchAttributes.NEEDS_SENIOR.value_set(False),
        ])
        dispute = self._dispute
        async with self._lock:
            for role, party in (("buyer", dispute.buyer_id), ("seller", dispute.seller_id), ("mediator", "mia")):
                await self._write("notify", {
                    "recipient_role": role, "recipient_id": party, "kind": "state_changed",
                    "subject": f"Dispute {dispute.dispute_id}: {event.replace('_', ' ')}",
                    "data": {"state": "PLATFORM_INTERVENING", "event": event, "party": call.party,
                             "text": call.text, "due_at": self._deadline.isoformat()}})
        return Answer(dispute.dispute_id, "PLATFORM_INTERVENING", ["mediator_rule", "mediator_request_evidence"])

    async def _write(self, activity: str, detail: dict[str, Any]) -> None:
        await write_row(self._dispute.dispute_id, activity, detail)


WORKFLOWS = [BareDisputeWorkflow, BareCaseWorkflow]

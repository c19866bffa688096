"""Record the committed complaint histories: `python -m complaints.record_scenarios tests/histories/complaints`.

The dispute recorder's building blocks (audit.record_scenarios) driving one complaint per path
through the real API and worker, under the default complaint policy with its windows and
penalties shortened to seconds; plus the seller standing an upheld appeal lifted a penalty on,
recorded as it stands (a standing never completes). Record only from committed code.
"""

import asyncio
import sys
from datetime import timedelta
from typing import Any

from audit.record_scenarios import MEDIATOR, PLATFORM, SENIOR, Recorder, Scenario, main
from complaints.policy import ComplaintPolicy, default_complaint_policy, default_standing
from complaints.standing import standing_id
from config.settings import TokenGrant
from identity import Role
from policy import Window

BUYER = "dev-buyer-alice"
LONG = Window.seconds(60)  # a window nobody waits out
SHORT = Window.seconds(2)  # one a timer decides


def _policy(*, seller_response: Window = LONG, appeal: Window = SHORT, evidence: Window = LONG,
            **points: int) -> ComplaintPolicy:
    base = default_complaint_policy()
    types = {name: rule.model_copy(update={"points": points[name]}) if name in points else rule
             for name, rule in base.types.items()}
    return base.model_copy(update={
        "types": types, "seller_response": seller_response, "appeal": appeal, "evidence_response": evidence,
        "standing": default_standing(base.version, a=timedelta(seconds=1), b=timedelta(seconds=1))})


async def _file(r: Recorder, scenario: str, complaint_type: str, policy: ComplaintPolicy) -> tuple[str, str]:
    """A seller of the scenario's own (so its standing holds only this case), an order, a complaint."""
    seller = f"rec-{scenario.replace('_', '-')}"
    token = f"token-{seller}"
    order_id = f"ORD-{seller}"
    async with r._opening:
        r.services.settings.tokens = {**r.services.settings.tokens, token: TokenGrant(role=Role.SELLER,
                                                                                     party_id=seller)}
        r.services.complaint_policy = policy
        await r.call("POST", "/orders", PLATFORM, {"order_id": order_id, "buyer_id": "alice", "seller_id": seller,
                                                   "paid": {"amount": 10_000, "currency": "CNY"}, "shipped": True},
                     status=201)
        filed = await r.call("POST", "/complaints", BUYER, {
            "order_id": order_id, "complaint_type": complaint_type, "description": "Promised in 48 h, sent on day 6",
            "evidence": [{"url": "https://files.example/chat.png", "media_type": "image/png"}],
        }, status=201, request_id=f"rec-{scenario}-file", idempotency_key=f"{scenario}-file")
    return filed["complaint_id"], token


async def _act(r: Recorder, complaint_id: str, action: str, token: str, body: dict[str, Any] | None = None,
               step: str = "") -> dict:
    key = f"{complaint_id.removeprefix('cmp-ORD-rec-')}-{action}{step}"  # within the keys' 100 characters
    return await r.call("POST", f"/complaints/{complaint_id}/{action}", token, body or {}, request_id=f"rec-{key}",
                        idempotency_key=key)


async def _until(r: Recorder, path: str, condition, what: str, timeout: float = 30) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition(view := await r.call("GET", path, PLATFORM)):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{path}: {what} did not happen within {timeout}s")
        await asyncio.sleep(0.1)
    return view


async def _contest(r: Recorder, complaint_id: str, seller: str) -> None:
    await _act(r, complaint_id, "seller-contest", seller, {"text": "Shipped on time", "evidence": [
        {"url": "https://files.example/receipt.pdf"}]})


async def complaint_seller_accepts(r: Recorder) -> str:
    c, seller = await _file(r, "complaint_seller_accepts", "shipped_late", _policy())
    await _act(r, c, "seller-accept", seller, {"note": "Our warehouse was late"})
    return c


async def complaint_seller_silent(r: Recorder) -> str:
    c, _ = await _file(r, "complaint_seller_silent", "paid_not_shipped", _policy(seller_response=SHORT))
    return c


async def complaint_contested_upheld_appeal_rejected(r: Recorder) -> str:
    """Evidence asked of the buyer (answered) and the seller (lapses); upheld with compensation;
    the seller appeals; a senior mediator rejects the appeal."""
    c, seller = await _file(r, "complaint_contested_upheld_appeal_rejected", "fake_shipment",
                            _policy(appeal=LONG, evidence=SHORT))
    await _contest(r, c, seller)
    await _act(r, c, "mediator-request-evidence", MEDIATOR, {"party": "buyer", "request": "The chat"}, "-buyer")
    await _act(r, c, "party-submit-evidence", BUYER, {"text": "Chat log"})
    await _act(r, c, "mediator-request-evidence", MEDIATOR, {"party": "seller", "request": "The scan"}, "-seller")
    await _until(r, f"/complaints/{c}", lambda v: v["events"][-1]["kind"] == "evidence_missed",
                 "the seller's evidence request to lapse")
    await _act(r, c, "mediator-decide", MEDIATOR, {"decision": "uphold", "rationale": "No scan", "fault": "seller"})
    await _until(r, f"/complaints/{c}", lambda v: v["deadline_kind"] == "appeal", "the appeal window")
    await _act(r, c, "seller-appeal", seller, {"reason": "Courier lost it", "new_information": "A letter"})
    await _act(r, c, "senior-decide-appeal", SENIOR, {"decision": "reject_appeal", "rationale": "Not a scan"})
    return c


async def complaint_contested_rejected(r: Recorder) -> str:
    c, seller = await _file(r, "complaint_contested_rejected", "service_not_honoured", _policy())
    await _contest(r, c, seller)
    await _act(r, c, "mediator-decide", MEDIATOR, {"decision": "reject", "rationale": "No such promise",
                                                   "fault": "buyer"})
    return c


async def complaint_appeal_upheld(r: Recorder) -> str:
    """12 points: the shop is shielded; the appeal is upheld, the compensation returned, the shield
    lifted early. The seller's standing is recorded too, once the shield has ended."""
    c, seller = await _file(r, "complaint_appeal_upheld", "fake_shipment",
                            _policy(seller_response=SHORT, appeal=LONG, fake_shipment=12))
    await _until(r, f"/complaints/{c}", lambda v: v["deadline_kind"] == "appeal", "the appeal window")
    await _act(r, c, "seller-appeal", seller, {"reason": "Shipped", "new_information": "Courier receipt"})
    await _act(r, c, "senior-decide-appeal", SENIOR, {"decision": "uphold_appeal", "rationale": "Receipt holds"})
    return c


async def complaint_archived_appeal_lapsed(r: Recorder) -> str:
    """Since `archive-final-complaint`: upheld by silence, the appeal window lapses, and the
    complaint archives its final part before completing."""
    c, _ = await _file(r, "complaint_archived_appeal_lapsed", "paid_not_shipped", _policy(seller_response=SHORT))
    return c


async def complaint_notified_all_seller_accepts(r: Recorder) -> str:
    """Since `complaint-notify-all`: both parties are told of each step in one `notify_all`."""
    c, seller = await _file(r, "complaint_notified_all_seller_accepts", "shipped_late", _policy())
    await _act(r, c, "seller-accept", seller, {"note": "Our warehouse was late"})
    return c


async def standing_penalty_lifted_by_appeal(r: Recorder) -> str:
    seller = "rec-complaint-appeal-upheld"
    await _until(r, f"/sellers/{seller}/standing", lambda v: v["ended_penalties"], "the lifted shield", timeout=60)
    r.running_for_ever.add(standing_id(seller))
    return standing_id(seller)


SCENARIOS: dict[str, Scenario] = {f.__name__: f for f in (
    complaint_seller_accepts,
    complaint_seller_silent,
    complaint_contested_upheld_appeal_rejected,
    complaint_contested_rejected,
    complaint_appeal_upheld,
    standing_penalty_lifted_by_appeal,
    complaint_archived_appeal_lapsed,
    complaint_notified_all_seller_accepts,
)}

if __name__ == "__main__":
    sys.exit(main(scenarios=SCENARIOS, prog="python -m complaints.record_scenarios"))

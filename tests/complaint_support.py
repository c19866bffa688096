"""What the complaint tests share: second-long complaint policies, sellers of their own per test
(a seller's standing is one long-running workflow on the test's task queue) and their calls."""

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from complaints.policy import ComplaintPolicy, ComplaintRule, default_complaint_policy, default_standing
from config.settings import TokenGrant
from identity import Role
from policy import Window
from tests.support import ACTING_ROOM, PLATFORM, Stack, eventually

SENIOR = "dev-senior-sam"


def complaint_policy(*, seller_response: float = ACTING_ROOM, evidence: float = ACTING_ROOM,
                     appeal: float = ACTING_ROOM, a_day: float = 1.0, b_day: float = 1.0,
                     types: dict[str, ComplaintRule] | None = None, **standing: Any) -> ComplaintPolicy:
    """The default rules with windows in seconds and each penalty 'day' `a_day`/`b_day` seconds long."""
    base = default_complaint_policy()
    rules = default_standing(f"test-{uuid.uuid4().hex[:6]}", a=timedelta(seconds=a_day), b=timedelta(seconds=b_day))
    return base.model_copy(update={
        "version": rules.version, "types": {**base.types, **(types or {})},
        "seller_response": Window.seconds(seller_response), "evidence_response": Window.seconds(evidence),
        "appeal": Window.seconds(appeal), "standing": rules.model_copy(update=standing)})


@dataclass
class Seller:
    party_id: str
    token: str


def new_seller(stack: Stack) -> Seller:
    """A seller no other test trades as, with a bearer token of its own."""
    party_id = f"shop-{uuid.uuid4().hex[:8]}"
    token = f"token-{party_id}"
    stack.services.settings.tokens = {**stack.services.settings.tokens,
                                      token: TokenGrant(role=Role.SELLER, party_id=party_id)}
    return Seller(party_id, token)


async def file(stack: Stack, order_id: str, complaint_type: str = "shipped_late", token: str = "dev-buyer-alice",
               key: str | None = None, status: int = 201) -> dict:
    headers = {"Idempotency-Key": key} if key else None
    return await stack.ok("POST", "/complaints", token, {
        "order_id": order_id, "complaint_type": complaint_type, "description": "Promised in 48 h, shipped after 6 days.",
        "evidence": [{"url": "https://files.example/chat.png", "media_type": "image/png"}],
    }, headers=headers, status=status)


async def act(stack: Stack, complaint_id: str, action: str, token: str, body: dict | None = None,
              status: int = 200) -> dict:
    return await stack.ok("POST", f"/complaints/{complaint_id}/{action}", token, body or {}, status=status)


async def complaint(stack: Stack, complaint_id: str) -> dict:
    return await stack.ok("GET", f"/complaints/{complaint_id}", PLATFORM)


async def wait_final(stack: Stack, complaint_id: str, timeout: float = 40) -> dict:
    """Until the complaint is final and its workflow has completed."""
    await stack.services.temporal.get_workflow_handle(complaint_id).result(rpc_timeout=timedelta(seconds=timeout))
    return await complaint(stack, complaint_id)


async def wait_state(stack: Stack, complaint_id: str, state: str, timeout: float = 30) -> dict:
    async def probe() -> dict | None:
        view = await complaint(stack, complaint_id)
        return view if view["state"] == state else None

    return await eventually(probe, timeout=timeout, what=f"{complaint_id} in {state}")


async def standing(stack: Stack, seller_id: str, token: str = PLATFORM) -> dict:
    return await stack.ok("GET", f"/sellers/{seller_id}/standing", token)


async def wait_standing(stack: Stack, seller_id: str, condition, what: str, timeout: float = 30) -> dict:
    async def probe() -> dict | None:
        view = await standing(stack, seller_id)
        return view if condition(view) else None

    return await eventually(probe, timeout=timeout, what=what)

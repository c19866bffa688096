"""A case stays bounded whatever its parties send: every limit is refused with a 422 naming it,
nothing refused changes the case, and a case driven to every limit still closes normally."""

from tests.support import BUYER, MEDIATOR, PLATFORM, SELLER, Stack


def _limits(stack: Stack):
    return getattr(stack.services.policy, "limits", None)


def _largest_evidence(stack: Stack, n: int) -> dict:
    limits = _limits(stack)
    attachments = limits.attachments_per_submission if limits else 20
    url_chars = limits.attachment_url_chars if limits else 2000
    text_chars = limits.evidence_text_chars if limits else 2000
    return {
        "text": (f"{n:04d} " + "x" * text_chars)[:text_chars],
        "attachments": [{"url": (f"https://files.example/{n}/{i}/" + "a" * url_chars)[:url_chars]}
                        for i in range(attachments)],
    }


async def _escalated(stack: Stack) -> tuple[str, str]:
    order_id = await stack.register_order(amount=10_000)
    dispute_id = (await stack.open_dispute(order_id, amount=10_000))["dispute_id"]
    await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "Item left us in perfect condition"})
    await stack.act(dispute_id, "buyer-escalate", BUYER, {"reason": "Seller ignores clear photos"})
    return order_id, dispute_id


async def test_one_party_cannot_brick_a_case(stack: Stack) -> None:
    """Issue 9 item 5: the largest accepted evidence, again and again, until a limit refuses it."""
    order_id, dispute_id = await _escalated(stack)
    refused = None
    for n in range(60):
        response = await stack.call("POST", f"/disputes/{dispute_id}/party-submit-evidence", BUYER,
                                    _largest_evidence(stack, n))
        assert response.status_code in (200, 422), f"submission {n + 1}: {response.status_code} {response.text}"
        if response.status_code == 422:
            refused = response.json()
            break
    assert refused is not None, "no limit refused 60 maximal submissions"
    assert "limit" in refused["detail"]
    view = await stack.call("GET", f"/disputes/{dispute_id}", PLATFORM)
    assert view.status_code == 200, view.text
    await stack.act(dispute_id, "mediator-take", MEDIATOR)
    await stack.act(dispute_id, "mediator-rule", MEDIATOR,
                    {"decision": "partial_refund", "amount": {"amount": 4000, "currency": "CNY"},
                     "rationale": "Defect shown on the evidence"})
    closed = await stack.wait_for_state(dispute_id, "SUCCESS")
    assert closed["refunded"] == {"amount": 4000, "currency": "CNY"}
    assert stack.money(order_id)["buyer_refunds"] == 4000

"""Legal holds through the platform's API; auditors may read them, nobody else may set them."""

import uuid

from tests.support import AUDITOR, BUYER, PLATFORM, Stack

PROBLEM = "application/problem+json"


async def test_the_platform_holds_and_releases_a_dispute(stack: Stack) -> None:
    dispute_id = f"dsp-ORD-{uuid.uuid4().hex[:8]}-1"
    path = f"/archive/holds/{dispute_id}"
    held = await stack.ok("PUT", path, PLATFORM, {"reason": "court order (2026) Hu 0105 Min Chu 117"})
    assert held["dispute_id"] == dispute_id and held["held_by"] == "marketplace"
    # Holding again keeps the first hold as it was.
    assert await stack.ok("PUT", path, PLATFORM, {"reason": "another"}) == held
    assert held in await stack.ok("GET", "/archive/holds", AUDITOR)
    assert dispute_id in {h.dispute_id for h in stack.services.archive.holds()}

    for token, body, status in ((AUDITOR, {"reason": "x"}, 403), (BUYER, {"reason": "x"}, 403),
                                (PLATFORM, {"reason": "  "}, 422), (PLATFORM, {}, 422),
                                (PLATFORM, {"reason": "x" * 501}, 422), (PLATFORM, {"reason": "x", "y": 1}, 422)):
        response = await stack.call("PUT", path, token, body)
        assert response.status_code == status and response.headers["content-type"] == PROBLEM, (body, response.text)
    assert (await stack.call("PUT", "/archive/holds/not-a-dispute", PLATFORM, {"reason": "x"})).status_code == 422
    assert (await stack.call("DELETE", path, AUDITOR)).status_code == 403

    assert (await stack.call("DELETE", path, PLATFORM)).status_code == 204
    again = await stack.call("DELETE", path, PLATFORM)
    assert again.status_code == 404 and again.headers["content-type"] == PROBLEM
    assert held not in await stack.ok("GET", "/archive/holds", AUDITOR)


async def test_auditors_verify_the_archive_through_the_api(stack: Stack) -> None:
    verification = await stack.ok("GET", "/archive/verification", AUDITOR)
    assert verification["ok"] and verification["first_broken"] is None
    assert (await stack.call("GET", "/archive/verification", BUYER)).status_code == 403

"""The README's console screenshots: seeds a few cases through the API of a running `./dev up`,
then photographs the queue and a case page in Debian's Chromium.

    ./dev up &                                    # in another terminal
    .venv/bin/python -m console.screenshots       # writes docs/console-queue.png, docs/console-case.png
"""

import argparse
import asyncio
import hashlib
import time
import uuid
from pathlib import Path

import httpx
from playwright.async_api import async_playwright

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PLATFORM, BUYER, SELLER, MEDIATOR = "dev-platform", "dev-buyer-alice", "dev-seller-acme", "dev-mediator-mia"
CASES = [  # amount in fen, reason, urgent concern
    (19_900, "quality", None), (4_550, "not_received", None), (128_800, "not_as_described", "counterfeit"),
    (8_800, "damaged", None),
]


def _call(api: httpx.Client, method: str, path: str, token: str, body: dict | None = None) -> dict:
    response = api.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
    response.raise_for_status()
    return response.json()


def seed(api: httpx.Client) -> str:
    """Escalated cases for the queue; the first one taken, with evidence asked for and given."""
    disputes = []
    for amount, reason, concern in CASES:
        order_id = f"ORD-{uuid.uuid4().hex[:8].upper()}"
        _call(api, "POST", "/orders", PLATFORM, {"order_id": order_id, "buyer_id": "alice", "seller_id": "acme",
                                                 "paid": {"amount": amount, "currency": "CNY"}, "shipped": True})
        dispute_id = _call(api, "POST", "/disputes", BUYER, {
            "order_id": order_id, "kind": "refund_only", "reason": reason, "amount": {"amount": amount, "currency": "CNY"},
            "description": "电水壶底部漏水", "evidence": [{"url": "https://files.example/kettle.jpg",
                                                        "sha256": hashlib.sha256(order_id.encode()).hexdigest(),
                                                        "media_type": "image/jpeg"}]})["dispute_id"]
        _call(api, "POST", f"/disputes/{dispute_id}/seller-refuse", SELLER, {"reason": "商品出库时完好"})
        _call(api, "POST", f"/disputes/{dispute_id}/buyer-escalate", BUYER,
              {"reason": "卖家无视缺陷照片"} | ({"urgent_concern": concern} if concern else {}))
        disputes.append(dispute_id)
    shown = disputes[0]
    _call(api, "POST", f"/disputes/{shown}/mediator-take", MEDIATOR, {})
    _call(api, "POST", f"/disputes/{shown}/mediator-request-evidence", MEDIATOR,
          {"party": "seller", "request": "请提供商品打包前的照片"})
    _call(api, "POST", f"/disputes/{shown}/party-submit-evidence", SELLER, {
        "text": "打包前完好，见照片", "attachments": [{"url": "https://files.example/packed.png",
                                                   "sha256": hashlib.sha256(b"packed").hexdigest(),
                                                   "media_type": "image/png"}]})
    # The queue is a read model the cases keep current: wait until it shows them.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        queued = {c["dispute_id"] for c in _call(api, "GET", "/mediation/queue", MEDIATOR)["items"]}
        if set(disputes[1:]) <= queued:
            break
        time.sleep(0.5)
    return shown


async def photograph(url: str, chromium: str, out: Path, dispute_id: str) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1280, "height": 800}, base_url=url,
                                            locale="zh-CN", timezone_id="Asia/Shanghai")
        page = await context.new_page()
        await page.goto("/console/sign-in")
        await page.locator("#token").fill(MEDIATOR)
        await page.locator("#language").select_option("zh_CN")
        await page.locator("form[action='/console/sign-in'] button").click()
        await page.screenshot(path=out / "console-queue.png", full_page=True)
        await page.goto(f"/console/cases/{dispute_id}")
        await page.screenshot(path=out / "console-case.png", full_page=True)
        await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="where ./dev up serves the API")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with httpx.Client(base_url=args.url, timeout=60) as api:
        dispute_id = seed(api)
    asyncio.run(photograph(args.url, args.chromium, args.out, dispute_id))
    print(f"wrote {args.out / 'console-queue.png'} and {args.out / 'console-case.png'}")


if __name__ == "__main__":
    main()

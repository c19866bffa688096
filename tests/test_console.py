"""The console in a real browser (Debian's Chromium driven by Playwright), against the real
API, worker, Temporal and database, served over HTTP by uvicorn as `./dev up` serves it.
Every request the browser makes must stay on this machine."""

import asyncio
import hashlib
import os
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
import uvicorn
from playwright.async_api import async_playwright, expect
from sqlalchemy import Engine

from api.main import create_app
from console.i18n import Translator
from database import make_engine, migrate
from tests.support import AUDITOR, BUYER, MEDIATOR, SELLER, Stack, eventually

CHROMIUM = os.environ.get("DISPUTEFLOW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
OTHER_MEDIATOR = "dev-mediator-noah"


def _browser_or_skip() -> None:
    if shutil.which(CHROMIUM) is None:
        message = (f"no Chromium at {CHROMIUM}: install Debian's (`apt-get install -y chromium`) or point "
                   "DISPUTEFLOW_CHROMIUM at one; Playwright's own browser download is not used")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Console:
    stack: Stack
    base_url: str
    browser: object
    # Every host the browser tried to reach.
    hosts: set[str]

    async def context(self, language: str, width: int = 1280):
        """A fresh browser profile whose every request goes through `watch`."""
        context = await self.browser.new_context(viewport={"width": width, "height": 900}, base_url=self.base_url,
                                                 timezone_id="Asia/Shanghai", locale=language.replace("_", "-"))

        async def watch(route) -> None:
            host = urlsplit(route.request.url).hostname
            self.hosts.add(host)
            if host == "127.0.0.1":
                await route.continue_()
            else:
                await route.abort()

        await context.route("**/*", watch)
        return context

    async def page(self, token: str, language: str):
        """Signed in with `token`, at 1280 px."""
        page = await (await self.context(language)).new_page()
        await page.goto("/console/sign-in")
        await page.get_by_label("Your token" if language == "en" else "您的令牌").fill(token)
        await page.locator("#language").select_option(language)
        await page.locator("form[action='/console/sign-in'] button").click()
        return page


# Form controls a screen reader could not name.
UNLABELLED = """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter(c => !c.labels.length && !c.getAttribute('aria-label')).map(c => c.outerHTML)"""


@pytest.fixture
def own_engine(tmp_path: Path) -> Engine:
    """A database of the test's own, so the queue holds exactly the cases the test opened."""
    engine = make_engine(f"sqlite:///{tmp_path}/console.db")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest_asyncio.fixture
async def console(stack_factory, own_engine: Engine) -> AsyncIterator[Console]:
    _browser_or_skip()

    async with stack_factory(own_engine) as stack:
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(stack.services), host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="off"))
        serving = asyncio.create_task(server.serve())

        async def started() -> bool:
            return server.started

        await eventually(started, what="the console's server to start")
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield Console(stack=stack, base_url=f"http://127.0.0.1:{port}", browser=browser, hosts=set())
            finally:
                await browser.close()
                server.should_exit = True
                await serving


async def _escalated(stack: Stack, amount: int = 19_900) -> tuple[str, str]:
    order_id = await stack.register_order(amount=amount)
    dispute_id = (await stack.open_dispute(order_id, amount=amount))["dispute_id"]
    await stack.act(dispute_id, "seller-refuse", SELLER, {"reason": "Item left us in perfect condition"})
    await stack.act(dispute_id, "buyer-escalate", BUYER, {"reason": "Seller ignores clear photos of the defect"})
    return order_id, dispute_id


async def _queued(stack: Stack, dispute_id: str) -> bool:
    page = await stack.ok("GET", "/mediation/queue", MEDIATOR)
    return dispute_id in {item["dispute_id"] for item in page["items"]}


async def test_a_mediator_works_a_case_from_queue_to_ruling_and_a_rival_is_told_who_took_it(
        console: Console) -> None:
    stack = console.stack
    order_id, dispute_id = await _escalated(stack)
    await eventually(lambda: _queued(stack, dispute_id), what="the case in the queue")
    english, chinese = Translator("en", "Asia/Shanghai"), Translator("zh_CN", "Asia/Shanghai")

    mia = await console.page(MEDIATOR, "en")
    noah = await console.page(OTHER_MEDIATOR, "zh_CN")
    # Noah sees the case in his queue, in Chinese, with the money as people read it.
    row = noah.locator("table.queue tr", has_text=dispute_id)
    await row.wait_for()
    assert "¥199.00" in await row.inner_text()
    await row.get_by_role("link", name=dispute_id).click()

    # Mia takes it from her queue first.
    await mia.locator("table.queue").get_by_role("link", name=dispute_id).click()
    assert await mia.evaluate(UNLABELLED) == []
    await mia.get_by_role("button", name="Take the case").click()
    await mia.locator("#notice").wait_for()
    assert await mia.locator("#mediator").inner_text() == "mia"

    # Noah's page still offers the take; the API refuses him and he is told who has the case.
    await noah.get_by_role("button", name="接手此案").click()
    refusal = await noah.locator("#refusal").inner_text()
    assert "mia" in refusal and "已经接手" in refusal, refusal
    assert await noah.get_by_role("button", name="接手此案").count() == 0

    # Mia asks the seller for evidence; the seller answers through the API.
    await mia.locator("#ev-party").select_option("seller")
    await mia.locator("#ev-request").fill("Photos of the kettle before it was packed")
    await mia.get_by_role("button", name="Request evidence").click()
    await mia.locator("#notice").wait_for()
    # The notice heads the page: the browser may have parsed it before the deadlines below it.
    await expect(mia.locator("#deadline-seller_evidence")).to_have_count(1)
    photo = hashlib.sha256(b"kettle photo").hexdigest()
    await stack.act(dispute_id, "party-submit-evidence", SELLER, {
        "text": "Packed intact, see photo", "attachments": [
            {"url": "https://files.example/packed.png", "sha256": photo, "media_type": "image/png"}]})
    await mia.reload()
    assert await mia.evaluate(UNLABELLED) == []
    evidence = await mia.locator("article.evidence", has_text="Packed intact").inner_text()
    assert photo in evidence and "image/png" in evidence

    # She rules a partial refund; the form sent twice (a double click, a retry) rules once.
    await mia.locator("#rule-decision").select_option("partial_refund")
    await mia.locator("#rule-amount").fill("120.50")
    await mia.locator("#rule-rationale").fill("The defect is minor; part of the price comes back")
    form = mia.locator("#form-mediator-rule")
    fields = {name: await form.locator(f"[name={name}]").input_value()
              for name in ("csrf", "form_key", "currency", "decision", "amount", "rationale", "return_address")}
    answers = [await mia.request.post(f"/console/cases/{dispute_id}/mediator-rule", form=fields, max_redirects=0)
               for _ in range(2)]
    assert [a.status for a in answers] == [303, 303]

    async def settled() -> bool:
        view = await stack.dispute(dispute_id)
        return bool(view["resolution"] and view["resolution"]["settled"])

    await eventually(settled, what="the ruling's money to settle")
    # The page tells the story from the history, where a change's messages count once their
    # activity has completed: the ruling's is written after the money has settled.
    await stack.wait_until_quiet(dispute_id)
    await mia.goto(f"/console/cases/{dispute_id}")
    money = stack.money(order_id)
    assert money["buyer_refunds"] == 12_050 and money["seller_released"] == 19_900 - 12_050
    assert await mia.locator("#figure-refunded").inner_text() == english.money(money["buyer_refunds"], "CNY")
    assert await mia.locator("#figure-released").inner_text() == english.money(money["seller_released"], "CNY")
    assert await mia.locator("#state").inner_text() == "SUCCESS"
    assert len((await stack.dispute(dispute_id))["intervention"]["rulings"]) == 1
    transfers = await stack.ok("GET", f"/disputes/{dispute_id}/transfers", MEDIATOR)
    for transfer in transfers:
        assert await mia.locator(f"#transfer-{transfer['id']}".replace(".", "\\.").replace(":", "\\:")).count() == 1
    # Her case page tells the whole story from the history: actions, timers, notifications, money.
    timeline = mia.locator("#timeline ol.timeline")
    assert await timeline.locator("li.action", has_text="mediator_rule").count() == 1
    assert await timeline.locator("li.timer_started").count() >= 1
    assert await timeline.locator("li.timer_canceled").count() >= 1
    shown_transfers = set(await timeline.locator("a.transfer-id").all_inner_texts())
    assert {t["id"] for t in transfers} <= shown_transfers
    shown_notifications = await timeline.locator(".notification-id").all_inner_texts()
    for message in stack.services.notifications.for_dispute(dispute_id):
        assert any(message.id in shown for shown in shown_notifications), message.id
    await noah.goto(f"/console/cases/{dispute_id}")
    assert await noah.locator("#figure-refunded").inner_text() == chinese.money(12_050, "CNY") == "¥120.50"

    # Signing out ends the session: the console asks for a token again.
    await mia.get_by_role("button", name="Sign out").click()
    await mia.goto("/console/queue")
    assert mia.url.endswith("/console/sign-in")
    assert console.hosts == {"127.0.0.1"}


async def test_an_auditor_replays_a_case_and_reads_the_report(console: Console) -> None:
    stack = console.stack
    _, dispute_id = await _escalated(stack)
    auditor = await console.page(AUDITOR, "en")
    # Opening dates are days in the auditor's time zone, searched by the API itself.
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    await auditor.get_by_role("textbox", name="Buyer", exact=True).fill("alice")
    await auditor.get_by_label("Opened from").fill((today + timedelta(days=1)).isoformat())
    await auditor.get_by_role("button", name="Search", exact=True).click()
    assert (await auditor.locator("#search-count").inner_text()).startswith("0 disputes found.")
    await auditor.get_by_label("Opened from").fill(today.isoformat())
    await auditor.get_by_label("Opened to").fill(today.isoformat())
    await auditor.get_by_role("button", name="Search", exact=True).click()
    await auditor.get_by_role("link", name=dispute_id).click()
    assert await auditor.get_by_role("button", name="Take the case").count() == 0, "auditors only read"
    async with auditor.expect_download() as downloading:
        await auditor.get_by_role("link", name="Download the history (JSON)").click()
    assert (await downloading.value).suggested_filename == f"{dispute_id}.json"

    await auditor.get_by_role("link", name="Replay", exact=True).click()
    await auditor.get_by_label("Dispute ids (one per line), or leave empty and choose by filter").fill(dispute_id)
    await auditor.get_by_role("button", name="Replay", exact=True).click()
    await auditor.locator("#replay-report").wait_for()
    # The report's heading may be parsed before the summary and the rows under it.
    await expect(auditor.locator("#replay-summary")).to_contain_text(
        "1 replayed, 0 nondeterministic, 0 failed, 0 not found")
    await expect(auditor.locator("tr.outcome.replayed", has_text=dispute_id)).to_have_count(1)
    # Or a filter: the newest case of this test's seller.
    await auditor.get_by_role("link", name="Start another replay").click()
    await auditor.locator("#replay-seller").fill("acme")
    await auditor.locator("#replay-limit").fill("1")
    await auditor.get_by_role("button", name="Replay", exact=True).click()
    await auditor.locator("#replay-report").wait_for()
    await expect(auditor.locator("tr.outcome.replayed")).to_have_count(1)

    await auditor.get_by_role("link", name="Reconciliation").click()
    report = await stack.ok("GET", "/reconciliation", AUDITOR)
    summary = await auditor.locator("#reconciliation-summary").inner_text()
    assert ("The ledger reconciles." if report["ok"] else "The ledger does not reconcile.") in summary
    # The API's documentation pages load from this machine too.
    for path in ("/docs", "/redoc"):
        await auditor.goto(path)
        await auditor.wait_for_load_state("networkidle")
    assert console.hosts == {"127.0.0.1"}


async def test_staff_only_by_keyboard_on_a_tablet(console: Console) -> None:
    page = await (await console.context("en", width=768)).new_page()
    await page.goto("/console/sign-in")
    # The token field has the focus (the browser applies autofocus at its next rendering, which
    # may come after the load event); Enter sends the form.
    token = page.locator("#token")
    await expect(token).to_be_focused()
    await page.keyboard.type(BUYER)
    await page.keyboard.press("Enter")
    assert "for platform staff" in await page.locator("#sign-in-error").inner_text()
    await page.goto("/console/queue")
    assert page.url.endswith("/console/sign-in")

    await expect(token).to_be_focused()
    await page.keyboard.type(MEDIATOR)
    await page.keyboard.press("Enter")
    await page.get_by_role("heading", name="Queue").wait_for()
    assert await page.evaluate(UNLABELLED) == []
    # Readable on a tablet: nothing runs off the side of the screen.
    assert await page.evaluate("document.documentElement.scrollWidth") <= 768
    # Tab reaches the filters and Space ticks one.
    urgent = page.get_by_label("urgent only")
    for _ in range(30):
        if await urgent.evaluate("el => el === document.activeElement"):
            break
        await page.keyboard.press("Tab")
    await page.keyboard.press("Space")
    assert await urgent.is_checked()
    assert console.hosts == {"127.0.0.1"}


MANAGER = "dev-manager-max"


async def test_a_manager_reads_the_figures_and_their_charts(console: Console) -> None:
    stack = console.stack
    await _escalated(stack)
    agreed = (await stack.open_dispute(await stack.register_order(amount=5_000), amount=5_000))["dispute_id"]
    await stack.act(agreed, "seller-agree-refund", SELLER)
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    period = urlencode({"from": (now - timedelta(days=1)).isoformat(), "to": (now + timedelta(days=1)).isoformat()})

    async def projected() -> dict | None:
        report = await stack.ok("GET", f"/reports/kpis?{period}", MANAGER)
        return report if (report["overall"]["cases"], report["overall"]["closed"]) == (2, 1) else None

    report = await eventually(projected, what="both cases in the reporting read model")
    chinese = Translator("zh_CN", "Asia/Shanghai")

    mia = await console.page(MEDIATOR, "en")
    await mia.goto("/console/reports")
    assert "not for your role" in await mia.locator("main").inner_text()

    max_ = await console.page(MANAGER, "zh_CN")
    await max_.get_by_role("heading", name="服务质量").wait_for()
    # The figures below are read as they stand: the whole page, not just its heading, parsed.
    await max_.wait_for_load_state()
    assert await max_.evaluate(UNLABELLED) == []
    assert await max_.locator("#kpi-cases").inner_text() == "2"
    assert await max_.locator("#kpi-closed").inner_text() == "1"
    assert await max_.locator("#kpi-refunded-CNY").inner_text() == chinese.money(5_000, "CNY")
    levels = report["overall"]["service_levels"]
    assert await max_.locator("#sla-table tbody tr").count() == len(levels)
    # The charts are pictures drawn by the server, named for screen readers.
    sla = max_.get_by_role("img", name="服务时效达标率走势")
    answered = next(level for level in levels if level["name"] == "ordinary_answered")
    assert await sla.locator("circle.point").count() >= 1 and answered["compliance"] == 1
    assert "100%" in " ".join(await sla.locator("circle.point title").all_text_contents())
    categories = max_.get_by_role("img", name="每周问题类型")
    assert await categories.locator("rect.bar title").all_text_contents() == [
        f"quality {_week_of(now)}: 2"]
    # Broken down by seller, with the seller's dispute and refund rates.
    await max_.get_by_label("细分维度").select_option("seller")
    await max_.get_by_role("button", name="显示").click()
    await max_.wait_for_load_state()
    assert await max_.locator("#breakdown tbody tr", has_text="acme").count() == 1
    assert await max_.locator("#seller-rates tbody tr", has_text="acme").count() == 1
    assert await max_.locator("#top-sellers tbody tr", has_text="acme").inner_text() == "acme\t2"
    assert console.hosts == {"127.0.0.1"}


def _week_of(instant: datetime) -> str:
    """The Monday (UTC) of the instant's week, as the chart labels it."""
    day = instant.astimezone(ZoneInfo("UTC")).date()
    return (day - timedelta(days=day.weekday())).strftime("%m-%d")


async def test_a_breakdown_the_console_does_not_know_is_told_on_the_page(stack: Stack) -> None:
    """No browser needed: the page is asked for over HTTP, signed in as a browser would."""
    form = await stack.http.get("/console/sign-in")
    csrf = form.cookies["disputeflow_console_signin"]
    signed_in = await stack.http.post("/console/sign-in", data={"token": MANAGER, "csrf": csrf, "language": "en"})
    assert signed_in.status_code == 303
    page = await stack.http.get("/console/reports", params={"by": "bad"})
    assert (page.status_code, page.headers["content-type"]) == (422, "text/html; charset=utf-8")
    assert "Break the figures down by one of: reason, seller, mediator, urgency, outcome." in page.text
    assert (await stack.http.get("/console/reports", params={"by": "seller"})).status_code == 200

"""A manager's figures from real cases: five cases driven through the API and the worker (an
agreement, a seller's silence a timer closes, an escalation whose take SLA a timer breaches and
whose ruling is appealed and changed, an urgent safety case, a withdrawal), then the exact KPIs,
the spot-check draw and verdicts, the survey answered and refused, and the rebuild from histories
equal to the live projection."""

import asyncio
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import Engine, select

from config.settings import DEVELOPMENT_TOKENS, TokenGrant
from database import make_engine, migrate
from identity import Role
from policy import Policy, Window
from reporting.models import ReportCase, ReportSla, SurveyInvitation
from reporting.rebuild import rebuild
from tests.conftest import SECOND_SENIOR
from tests.postgres import fresh_schema_engine, new_schema_name
from tests.support import ACTING_ROOM, AUDITOR, BUYER, MEDIATOR, OTHER_BUYER, OTHER_SELLER, SELLER, Stack, eventually

SAM = "dev-senior-sam"
MANAGER = "dev-manager-max"
QUALITY = "dev-quality-quinn"
# A quality reviewer who is also the mediator sue: may not check sue's own cases.
SUE_REVIEWING = "dev-quality-sue"
TOKENS = DEVELOPMENT_TOKENS | {
    SECOND_SENIOR: TokenGrant(role=Role.MEDIATOR, party_id="sue", senior=True),
    SUE_REVIEWING: TokenGrant(role=Role.QUALITY, party_id="sue"),
}


@pytest_asyncio.fixture(params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)])
async def own_stack(request: pytest.FixtureRequest, stack_factory, tmp_path: Path) -> AsyncIterator[Stack]:  # noqa: ANN001
    """A stack on a database of its own, so the figures count this test's cases only."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path}/app.db")
        migrate(engine)
        async with stack_factory(engine, tokens=TOKENS) as stack:
            yield stack
    else:
        with fresh_schema_engine(new_schema_name("df_reporting")) as engine:
            async with stack_factory(engine, tokens=TOKENS) as stack:
                yield stack


def _with_level(policy: Policy, name: str, target: Window) -> Policy:
    levels = tuple(level.model_copy(update={"target": target}) if level.name == name else level
                   for level in policy.service_levels)
    return policy.model_copy(update={"service_levels": levels})


async def _open(stack: Stack, *, seller: str = "acme", reason: str = "quality", amount: int = 4_000) -> str:
    order_id = await stack.register_order(amount=10_000, seller=seller)
    return (await stack.open_dispute(order_id, amount=amount, reason=reason))["dispute_id"]


async def _final(stack: Stack, dispute_id: str) -> dict:
    """The case's final view: its workflow ends once final (archived, survey sent)."""
    await asyncio.wait_for(stack.services.temporal.get_workflow_handle(dispute_id).result(), timeout=90)
    return await stack.dispute(dispute_id)


def _secs(start: str, end: str) -> int:
    return int((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())


def _nearest_rank(values: list[int]) -> dict:
    ordered = sorted(values)
    pick = [ordered[max(math.ceil(p / 100 * len(ordered)), 1) - 1] for p in (50, 90, 99)]
    return {"count": len(ordered), "p50": pick[0], "p90": pick[1], "p99": pick[2]}


def _rows(engine: Engine) -> tuple[list[dict], list[dict]]:
    with engine.connect() as db:
        cases = [dict(r._mapping) for r in db.execute(select(ReportCase.__table__).order_by(ReportCase.dispute_id))]
        slas = [dict(r._mapping) for r in db.execute(select(ReportSla.__table__).order_by(ReportSla.id))]
    return cases, slas


async def test_a_managers_figures_from_real_cases(own_stack: Stack, tmp_path: Path) -> None:
    stack = own_stack
    started = datetime.now(UTC) - timedelta(seconds=1)
    base = stack.services.policy
    surveyed = base.model_copy(update={"survey_window": Window.seconds(120)})
    stack.services.policy = surveyed

    # A: the seller agrees at once.
    agreed = await _open(stack)
    await stack.act(agreed, "seller-agree-refund", SELLER)

    # B: the seller stays silent; the timer grants the refund after the answer SLA was due.
    stack.services.policy = _with_level(surveyed, "ordinary_answered", Window.seconds(1)).model_copy(
        update={"seller_response_shipped_refund_only": Window.seconds(2)})
    silent = await _open(stack, seller="zenith", reason="not_received")

    # C: refused, escalated; nobody takes it in time (the timer breaches the SLAs), a senior
    # rejects, the buyer appeals, a second senior changes the ruling. Not on B's policy: its
    # one-second answer SLA and two-second seller window would leave the refusal a second to
    # meet the SLA the figures below count as met.
    stack.services.policy = _with_level(surveyed, "first_investigation", Window.seconds(1)).model_copy(
        update={"mediator_take": Window.seconds(2), "appeal": Window.seconds(ACTING_ROOM * 3)})
    appealed = await _open(stack)
    await stack.act(appealed, "seller-refuse", SELLER, {"reason": "It worked when shipped"})
    await stack.act(appealed, "buyer-escalate", BUYER, {"reason": "Please step in"})

    async def breached() -> bool:
        view = await stack.dispute(appealed)
        return view["intervention"]["sla_breach_count"] >= 1

    await eventually(breached, what="the take SLA breached by its timer")
    # The worker restarts mid-case: replayed workflow tasks must not count anything twice.
    await stack.stop_worker()
    await stack.start_worker()
    await stack.act(appealed, "mediator-take", SAM)
    await stack.act(appealed, "mediator-rule", SAM, {"decision": "reject", "rationale": "No proof"})
    await stack.wait_for_state(appealed, "CLOSED")
    await stack.act(appealed, "party-appeal", BUYER, {"reason": "The photos were ignored",
                                                      "new_information": "A repair shop's report"})
    await stack.act(appealed, "mediator-take", SECOND_SENIOR)
    await stack.act(appealed, "mediator-rule", SECOND_SENIOR, {"decision": "full_refund", "rationale": "The report"})

    # D: an urgent safety case, taken and ruled at once; its survey window is one second.
    stack.services.policy = base.model_copy(update={"appeal": Window.seconds(2), "survey_window": Window.seconds(1)})
    urgent = await _open(stack, reason="damaged", amount=6_000)
    await stack.act(urgent, "seller-refuse", SELLER, {"reason": "Not our fault"})
    await stack.act(urgent, "buyer-escalate", BUYER, {"reason": "It caught fire", "urgent_concern": "safety"})
    await stack.act(urgent, "mediator-take", MEDIATOR)
    await stack.act(urgent, "mediator-rule", MEDIATOR, {"decision": "full_refund", "rationale": "Unsafe"})

    # E: the buyer withdraws before anyone answered.
    stack.services.policy = base
    withdrawn = await _open(stack)
    await stack.act(withdrawn, "buyer-withdraw", BUYER, {"reason": "Found it"})
    await stack.register_order(seller="acme")  # an order no one disputes: acme's dispute rate is 4 in 5

    views = {d: await _final(stack, d) for d in (agreed, silent, appealed, urgent, withdrawn)}
    assert views[silent]["resolution"]["timer"] == "seller_response"

    # ---- the survey: answered, then refused (twice, late, not a party, not a party's role) ----
    survey = f"/disputes/{agreed}/survey"
    answer = await stack.ok("POST", survey, BUYER, {"rating": 5, "comment": "Quick"}, status=201)
    assert (answer["role"], answer["rating"]) == ("buyer", 5)
    await stack.ok("POST", survey, SELLER, {"rating": 4}, status=201)
    await stack.ok("POST", f"/disputes/{appealed}/survey", BUYER, {"rating": 2}, status=201)
    again = await stack.call("POST", survey, BUYER, {"rating": 1})
    assert (again.status_code, again.json()["type"].rsplit("/", 1)[-1]) == (409, "survey-already-answered")
    stranger = await stack.call("POST", survey, OTHER_BUYER, {"rating": 1})
    assert (stranger.status_code, stranger.json()["type"].rsplit("/", 1)[-1]) == (403, "survey-not-a-party")
    wrong_seller = await stack.call("POST", survey, OTHER_SELLER, {"rating": 1})
    assert wrong_seller.status_code == 403
    assert (await stack.call("POST", survey, MEDIATOR, {"rating": 3})).status_code == 403
    assert (await stack.call("POST", survey, BUYER, {"rating": 6})).status_code == 422
    with stack.services.engine.connect() as db:
        due = db.execute(select(SurveyInvitation.due_at).where(SurveyInvitation.dispute_id == urgent)).scalars().first()
    await asyncio.sleep(max((due - datetime.now(UTC)).total_seconds(), 0) + 0.1)  # the window passes
    late = await stack.call("POST", f"/disputes/{urgent}/survey", BUYER, {"rating": 5})
    assert (late.status_code, late.json()["type"].rsplit("/", 1)[-1]) == (409, "survey-closed")
    invited = [m for m in stack.services.notifications.for_dispute(agreed) if m.kind == "survey_invitation"]
    assert sorted((m.recipient_role, m.recipient_id) for m in invited) == [("buyer", "alice"), ("seller", "acme")]

    # ---- spot-checks: 10% of each mediator's closed cases, reproducibly ----
    ended = datetime.now(UTC) + timedelta(seconds=1)
    period = {"closed_from": started.isoformat(), "closed_to": ended.isoformat(), "seed": 20260}
    sample = await stack.ok("POST", "/quality/samples", QUALITY, period, status=201)
    assert (sample["share"], sample["seed"]) == (0.1, 20260)
    assert sample["strata"] == {"": [3, 1], "mia": [1, 1], "sue": [1, 1]}
    again = await stack.ok("POST", "/quality/samples", MANAGER, period, status=201)
    assert [c["dispute_id"] for c in again["cases"]] == [c["dispute_id"] for c in sample["cases"]]
    review = f"/quality/samples/{sample['sample_id']}/cases/{appealed}"
    own = await stack.call("PUT", review, SUE_REVIEWING, {"verdict": "correct"})
    assert (own.status_code, own.json()["type"].rsplit("/", 1)[-1]) == (403, "review-own-case")
    assert (await stack.call("PUT", review, SECOND_SENIOR, {"verdict": "correct"})).status_code == 403
    assert (await stack.call("PUT", review, QUALITY, {"verdict": "mishandled"})).status_code == 422
    verdict = await stack.ok("PUT", review, QUALITY, {"verdict": "mishandled", "rule": "take within 1 working day",
                                                       "note": "Left in the queue"})
    assert (verdict["verdict"], verdict["reviewer_id"]) == ("mishandled", "quinn")
    twice = await stack.call("PUT", review, AUDITOR, {"verdict": "correct"})
    assert (twice.status_code, twice.json()["type"].rsplit("/", 1)[-1]) == (409, "already-reviewed")

    # ---- the KPIs ----
    query = {"from": started.isoformat(), "to": ended.isoformat()}
    assert (await stack.http.get("/reports/kpis", params=query,
                                 headers={"Authorization": f"Bearer {SELLER}"})).status_code == 403
    report = (await stack.http.get("/reports/kpis", params=query | {"by": "mediator"},
                                   headers={"Authorization": f"Bearer {MANAGER}"})).json()
    overall = report["overall"]
    levels = {level["name"]: (level["measured"], level["met"], level["breached"], level["compliance"],
                              level["meets_target"]) for level in overall["service_levels"]}
    assert levels == {
        "ordinary_answered": (3, 2, 1, 0.6667, False),  # A and C answered; B breached; E void
        "urgent_acted_on": (1, 1, 0, 1.0, True),
        "first_investigation": (2, 1, 1, 0.5, False),  # C breached by its timer
        "proposed_solution": (2, 2, 0, 1.0, True),
    }
    assert (overall["cases"], overall["closed"]) == (5, 5)
    assert overall["first_contact_resolution"] == 0.6 and overall["escalation_rate"] == 0.4
    assert overall["outcomes"] == {"CLOSED": 1, "SUCCESS": 4}
    assert overall["decided_by"] == {"buyer": 1, "mediator": 2, "seller": 1, "timer": 1}
    assert overall["amounts"] == [{"currency": "CNY", "requested": 22_000, "refunded": 18_000, "advanced": 0}]
    assert (overall["ruled"], overall["appealed"], overall["appeal_rate"]) == (2, 1, 0.5)
    assert (overall["appeals_changed"], overall["appeal_change_rate"]) == (1, 1.0)
    assert (overall["spot_checked"], overall["mishandled"]) == (1, 1)
    assert overall["satisfaction"] == {"answers": 3, "average": 3.67, "ratings": {"2": 1, "4": 1, "5": 1}}

    def first_answer(view: dict) -> str | None:
        return next((e["at"] for e in view["events"]
                     if e["actor"] and e["actor"]["role"] in ("seller", "mediator")), None)

    def closed_at(view: dict) -> str:
        terminal = ("SUCCESS", "CLOSED")
        return [e["at"] for e in view["events"] if e["state_after"] in terminal and e["state_before"] not in terminal][-1]

    responses = [_secs(v["opened_at"], first_answer(v)) for v in views.values() if first_answer(v)]
    assert overall["response_seconds"] == _nearest_rank(responses)
    assert overall["resolution_seconds"] == _nearest_rank([_secs(v["opened_at"], closed_at(v)) for v in views.values()])

    groups = {g["group"]: g for g in report["groups"]}
    assert sorted(groups) == ["", "mia", "sue"]
    assert (groups["sue"]["cases"], groups["sue"]["mishandled"], groups["sue"]["appeals_changed"]) == (1, 1, 1)
    assert groups["sue"]["satisfaction"]["average"] == 2.0
    assert groups[""]["satisfaction"] == {"answers": 2, "average": 4.5, "ratings": {"4": 1, "5": 1}}

    by_seller = (await stack.http.get("/reports/kpis", params=query | {"by": "seller"},
                                      headers={"Authorization": f"Bearer {AUDITOR}"})).json()
    assert [(s["seller_id"], s["disputes"], s["orders"], s["dispute_rate"], s["refund_rate"])
            for s in by_seller["sellers"]] == [("acme", 4, 5, 0.8, 0.75), ("zenith", 1, 1, 1.0, 1.0)]
    by_urgency = (await stack.http.get("/reports/kpis", params=query | {"by": "urgency"},
                                       headers={"Authorization": f"Bearer {MANAGER}"})).json()
    assert [(g["group"], g["cases"]) for g in by_urgency["groups"]] == [("ordinary", 4), ("urgent", 1)]

    trends = (await stack.http.get("/reports/trends", params=query,
                                   headers={"Authorization": f"Bearer {MANAGER}"})).json()
    assert trends["reasons"][0] == {"key": "quality", "cases": 3}
    assert trends["sellers"] == [{"key": "acme", "cases": 4}, {"key": "zenith", "cases": 1}]
    empty = await stack.http.get("/reports/kpis", params={"from": ended.isoformat(), "to": started.isoformat()},
                                 headers={"Authorization": f"Bearer {MANAGER}"})
    assert empty.status_code == 422 and empty.headers["content-type"] == "application/problem+json"

    # ---- the rebuild from the histories equals the live projection ----
    rebuilt = make_engine(f"sqlite:///{tmp_path}/rebuilt.db")
    migrate(rebuilt)
    result = await rebuild(stack.services.temporal, stack.services.archive, stack.services.engine, rebuilt,
                           visibility_filter=f"TaskQueue = '{stack.task_queue}'")
    assert (result.projected, result.without_facts, result.missing) == (5, [], [])
    live = _rows(stack.services.engine)
    assert len(live[0]) == 5 and all(row["final_at"] is not None for row in live[0])
    assert _rows(rebuilt) == live

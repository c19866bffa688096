"""The console's pages: sign-in, the mediators' queue and case page with its actions, and the
auditors' search, replay, reconciliation and guarantee-fund pages."""

import hmac
import re
import secrets
from datetime import date, datetime, time, timedelta
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.deps import DisputeId, ServicesDep, actor_for
from console import charts
from console.api import ConsoleApi, Refused, console_api
from console.i18n import AmountUnreadable, LANGUAGES, Translator, known_time_zone, negotiate, to_minor_units
from console.pages import (
    PREFIX, AnyViewer, AuditorViewer, CheckedForm, FormRefused, MediatorViewer, NotForYou, ReportViewer, SignInNeeded,
    Viewer,
    explain, get_viewer, render, sessions, user_key,
)
from console.replays import ReplayJobs
from console.sessions import COOKIE, LIFETIME
from identity import Role
from reporting.kpis import Breakdown
from workflows.models import Action, DisputeState, ReasonCategory

router = APIRouter(prefix=PREFIX, include_in_schema=False)

_SIGN_IN_CSRF = "disputeflow_console_signin"
_CASE_READERS = (Role.MEDIATOR, Role.AUDITOR)
# Who may sign in, and the page each starts on.
_HOMES = {Role.MEDIATOR: "queue", Role.AUDITOR: "audit", Role.MANAGER: "reports"}
QUEUE_PAGE = 50
TIMELINE_PAGE = 200
SEARCH_LIMIT = 1000


def mount(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=FilePath(__file__).parent / "static"), name="console-static")
    app.state.console_replays = ReplayJobs()

    @app.exception_handler(SignInNeeded)
    async def _sign_in(request: Request, exc: SignInNeeded) -> Response:
        return RedirectResponse(f"{PREFIX}/sign-in", status_code=303)

    @app.exception_handler(NotForYou)
    async def _not_for_you(request: Request, exc: NotForYou) -> Response:
        return render(request, "message.html", exc.viewer, status=403,
                      message=exc.viewer.t.gettext("This page is not for your role."))

    @app.exception_handler(FormRefused)
    async def _form_refused(request: Request, exc: FormRefused) -> Response:
        return render(request, "message.html", get_viewer(request, request.app.state.services), status=400,
                      message=str(exc))


def _api(request: Request, viewer: Viewer):
    return console_api(request.app, viewer.token, request.state.request_id)


def _flag(value: str | None) -> bool | None:
    return True if value in ("on", "true", "1") else None


# ---- signing in and out, preferences ----------------------------------------------------

@router.get("")
def home(viewer: AnyViewer) -> Response:
    return RedirectResponse(f"{PREFIX}/{_HOMES[viewer.actor.role]}", status_code=303)


def _sign_in_page(request: Request, status: int = 200, error: str | None = None) -> HTMLResponse:
    t = Translator(request.query_params.get("lang") or negotiate(request.headers.get("accept-language")),
                   known_time_zone(None))
    csrf = secrets.token_urlsafe(32)
    response = render(request, "sign_in.html", None, translator=t, status=status, csrf=csrf, error=error)
    response.set_cookie(_SIGN_IN_CSRF, csrf, httponly=True, samesite="strict", path=PREFIX,
                        secure=request.url.scheme == "https")
    return response


@router.get("/sign-in")
def sign_in_form(request: Request) -> HTMLResponse:
    return _sign_in_page(request)


@router.post("/sign-in")
def sign_in(request: Request, services: ServicesDep, token: Annotated[str, Form(max_length=500)],
            csrf: Annotated[str, Form(max_length=100)], language: Annotated[str, Form(max_length=20)] = "",
            time_zone: Annotated[str, Form(max_length=64)] = "") -> Response:
    t = Translator(language, known_time_zone(None))
    if not hmac.compare_digest(csrf, request.cookies.get(_SIGN_IN_CSRF, "")):
        return _sign_in_page(request, 400, t.gettext("This form has expired. Reload the page and try again."))
    actor = actor_for(services, token.strip())
    if actor is None:
        return _sign_in_page(request, 401, t.gettext("This token is not known."))
    if actor.role not in _HOMES:
        return _sign_in_page(request, 403, t.gettext(
            "This console is for platform staff (mediators, auditors, managers); a {role} token cannot sign in here.",
            role=t.gettext(actor.role.value)))
    book = sessions(services)
    if book.preference(user_key(actor)) is None:
        book.prefer(user_key(actor), t.language, known_time_zone(time_zone))
    response = RedirectResponse(PREFIX, status_code=303)
    response.set_cookie(COOKIE, book.start(token.strip()), max_age=int(LIFETIME.total_seconds()), httponly=True,
                        samesite="strict", path=PREFIX, secure=request.url.scheme == "https")
    response.delete_cookie(_SIGN_IN_CSRF, path=PREFIX)
    return response


@router.post("/sign-out")
def sign_out(request: Request, services: ServicesDep, form: CheckedForm) -> Response:
    sessions(services).end(request.cookies.get(COOKIE))
    response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


@router.post("/preferences")
def set_preferences(viewer: AnyViewer, services: ServicesDep, form: CheckedForm) -> Response:
    language = form.get("language") if form.get("language") in LANGUAGES else viewer.t.language
    sessions(services).prefer(user_key(viewer.actor), language, known_time_zone(form.get("time_zone")))
    back = form.get("back", "")
    return RedirectResponse(back if re.fullmatch(rf"{PREFIX}(/[\w./?=&%-]*)?", back) else PREFIX, status_code=303)


# ---- the mediators' queues ---------------------------------------------------------------

async def _queue_page(request: Request, viewer: Viewer, *, senior: bool, reason: str | None, urgent: str | None,
                      needs_senior: str | None, mine: str | None, cursor: str | None) -> HTMLResponse:
    filters = {"reason": reason or None, "urgent": _flag(urgent),
               "needs_senior": True if senior else _flag(needs_senior), "mine": _flag(mine) or False}
    async with _api(request, viewer) as api:
        try:
            page = await api.get("/mediation/queue", limit=QUEUE_PAGE, cursor=cursor or None, **filters)
        except Refused as refused:
            return render(request, "message.html", viewer, status=refused.status, message=explain(refused, viewer.t))
    return render(request, "queue.html", viewer, page=page, filters=filters, senior=senior, cursor=cursor,
                  reasons=list(ReasonCategory))


@router.get("/queue")
async def queue(request: Request, viewer: MediatorViewer, reason: str | None = None, urgent: str | None = None,
                needs_senior: str | None = None, mine: str | None = None,
                cursor: Annotated[str | None, Query(max_length=400)] = None) -> HTMLResponse:
    return await _queue_page(request, viewer, senior=False, reason=reason, urgent=urgent,
                             needs_senior=needs_senior, mine=mine, cursor=cursor)


@router.get("/senior")
async def senior_queue(request: Request, viewer: MediatorViewer, reason: str | None = None,
                       urgent: str | None = None, cursor: Annotated[str | None, Query(max_length=400)] = None
                       ) -> HTMLResponse:
    """Breached SLAs and appeals: the cases only a senior mediator may take."""
    if not viewer.actor.senior:
        raise NotForYou(viewer)
    return await _queue_page(request, viewer, senior=True, reason=reason, urgent=urgent, needs_senior=None,
                             mine=None, cursor=cursor)


# ---- the case page ----------------------------------------------------------------------

def _offered(view: dict, viewer: Viewer) -> list[str]:
    """The mediator actions the workflow allows now, and only to whoever may take them."""
    if viewer.actor.role != Role.MEDIATOR:
        return []
    actions = view["allowed_actions"].get(Role.MEDIATOR.value, [])
    intervention = view.get("intervention") or {}
    assigned = intervention.get("mediator_id")
    if assigned and assigned != viewer.actor.party_id and not viewer.actor.senior:
        return []
    if intervention.get("needs_senior") and not viewer.actor.senior:
        actions = [a for a in actions if a != Action.MEDIATOR_TAKE.value]
    return actions


async def _case_context(api: ConsoleApi, services, dispute_id: str, viewer: Viewer,
                        timeline_from: int = 0) -> dict[str, Any]:
    view = await api.get(f"/disputes/{dispute_id}")
    offered = _offered(view, viewer)
    fund = None
    if Action.MEDIATOR_ORDER_ADVANCE.value in offered:
        try:
            fund = await api.get(f"/guarantee-fund/{view['request']['amount']['currency']}")
        except Refused:
            fund = None  # the fund holds nothing in this currency: the form says so
    mediators = sorted({g.party_id for g in services.settings.tokens.values()
                        if g.role == Role.MEDIATOR and g.party_id != viewer.actor.party_id})
    return {
        "view": view, "offered": offered, "fund": fund, "mediators": mediators,
        "transfers": await api.get(f"/disputes/{dispute_id}/transfers"),
        "timeline": await api.get(f"/disputes/{dispute_id}/timeline", offset=timeline_from, limit=TIMELINE_PAGE),
    }


async def _case_page(request: Request, viewer: Viewer, services, dispute_id: str, status: int = 200,
                     error: str | None = None, timeline_from: int = 0) -> HTMLResponse:
    async with _api(request, viewer) as api:
        try:
            context = await _case_context(api, services, dispute_id, viewer, timeline_from)
        except Refused as refused:
            return render(request, "message.html", viewer, status=refused.status, message=explain(refused, viewer.t))
    return render(request, "case.html", viewer, status=status, error=error,
                  done=request.query_params.get("done"), **context)


@router.get("/cases/{dispute_id}")
async def case(request: Request, dispute_id: DisputeId, viewer: AnyViewer, services: ServicesDep,
               timeline_from: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> HTMLResponse:
    if viewer.actor.role not in _CASE_READERS:
        raise NotForYou(viewer)
    return await _case_page(request, viewer, services, dispute_id, timeline_from=timeline_from)


def _amount(form: dict[str, str], currency: str, t: Translator) -> dict:
    try:
        return {"amount": to_minor_units(form.get("amount", ""), currency), "currency": currency}
    except AmountUnreadable:
        raise _Unsendable(t.gettext("“{amount}” is not an amount of {currency}.", amount=form.get("amount", ""),
                                    currency=currency)) from None


class _Unsendable(Exception):
    pass


def _body(action: Action, form: dict[str, str], currency: str, t: Translator) -> dict:
    """The API request body a mediator's form stands for."""
    text = {key: value.strip() for key, value in form.items()}
    if action == Action.MEDIATOR_TAKE:
        return {"note": text.get("note") or None}
    if action == Action.MEDIATOR_REQUEST_EVIDENCE:
        return {"party": text.get("party"), "request": text.get("request")}
    if action == Action.MEDIATOR_EXTEND_DEADLINE:
        try:
            until = t.from_local_input(text.get("until", "")).isoformat()
        except ValueError:
            raise _Unsendable(t.gettext("Give the new deadline as a date and time.")) from None
        return {"deadline": text.get("deadline"), "until": until, "reason": text.get("reason")}
    if action == Action.MEDIATOR_HAND_OVER:
        return {"to_mediator_id": text.get("to_mediator_id"), "reason": text.get("reason")}
    if action == Action.MEDIATOR_ORDER_ADVANCE:
        return {"amount": _amount(text, currency, t), "rationale": text.get("rationale"),
                "buyer_in_good_faith": text.get("buyer_in_good_faith") == "on",
                "return_goods": text.get("return_goods") == "on", "return_address": text.get("return_address") or None}
    assert action == Action.MEDIATOR_RULE
    decision = text.get("decision")
    return {"decision": decision, "rationale": text.get("rationale"),
            "amount": _amount(text, currency, t) if decision == "partial_refund" else None,
            "return_address": text.get("return_address") or None}


_MEDIATOR_ACTIONS = {a.value.replace("_", "-"): a for a in Action if a.value.startswith("mediator_")}


@router.post("/cases/{dispute_id}/{action}")
async def act(request: Request, dispute_id: DisputeId, action: str, viewer: MediatorViewer,
              services: ServicesDep, form: CheckedForm) -> Response:
    chosen = _MEDIATOR_ACTIONS.get(action)
    if chosen is None:
        return render(request, "message.html", viewer, status=404, message=viewer.t.gettext("There is no such action."))
    key = form.get("form_key", "")
    if not re.fullmatch(r"[0-9a-f]{32}", key):
        return await _case_page(request, viewer, services, dispute_id, 400,
                                viewer.t.gettext("This form has expired. Reload the page and try again."))
    try:
        body = _body(chosen, form, form.get("currency", "CNY"), viewer.t)
        async with _api(request, viewer) as api:
            await api.post(f"/disputes/{dispute_id}/{action}", body, form_key=key)
    except _Unsendable as unsendable:
        return await _case_page(request, viewer, services, dispute_id, 422, str(unsendable))
    except Refused as refused:
        return await _case_page(request, viewer, services, dispute_id, refused.status, explain(refused, viewer.t))
    return RedirectResponse(f"{PREFIX}/cases/{dispute_id}?done={action}", status_code=303)


# ---- the auditors' pages ------------------------------------------------------------------

def _day_start(text: str | None, t: Translator, days_later: int = 0) -> str | None:
    """When a date field's day (or the day `days_later` after it) starts in the viewer's zone, as
    the API reads an instant; text that is no date goes as it is, for the API to refuse."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return text
    return t.from_local_input(datetime.combine(day + timedelta(days=days_later), time.min).isoformat()).isoformat()


@router.get("/audit")
async def audit_search(request: Request, viewer: AuditorViewer, state: str | None = None,
                       buyer_id: str | None = None, seller_id: str | None = None, order_id: str | None = None,
                       reason: str | None = None, opened_from: str | None = None,
                       opened_to: str | None = None) -> HTMLResponse:
    criteria = {"state": state or None, "buyer_id": buyer_id or None, "seller_id": seller_id or None,
                "order_id": order_id or None, "reason": reason or None}
    dates = {"opened_from": opened_from or "", "opened_to": opened_to or ""}
    searched = any(criteria.values()) or any(dates.values()) or "search" in request.query_params
    found, error = [], None
    if searched:
        # The days are the viewer's: from the start of the first to the end of the last.
        period = {"opened_from": _day_start(opened_from, viewer.t), "opened_to": _day_start(opened_to, viewer.t, 1)}
        async with _api(request, viewer) as api:
            try:
                found = (await api.get("/disputes", limit=SEARCH_LIMIT, **criteria, **period))["items"]
            except Refused as refused:
                error = explain(refused, viewer.t)
    return render(request, "audit_search.html", viewer, criteria=criteria, dates=dates, found=found,
                  searched=searched, error=error, states=list(DisputeState), reasons=list(ReasonCategory),
                  limit=SEARCH_LIMIT)


@router.get("/audit/cases/{dispute_id}/history")
async def download_history(request: Request, dispute_id: DisputeId, viewer: AuditorViewer) -> Response:
    async with _api(request, viewer) as api:
        try:
            answer = await api.raw(f"/audit/disputes/{dispute_id}/history")
        except Refused as refused:
            return render(request, "message.html", viewer, status=refused.status, message=explain(refused, viewer.t))
    return Response(answer.content, media_type="application/json",
                    headers={"Content-Disposition": answer.headers["content-disposition"]})


@router.get("/audit/replay")
def replay_form(request: Request, viewer: AuditorViewer) -> HTMLResponse:
    return render(request, "replay.html", viewer, job=None, states=list(DisputeState))


@router.post("/audit/replay")
async def start_replay(request: Request, viewer: AuditorViewer, form: CheckedForm) -> Response:
    chosen = re.findall(r"dsp-[A-Za-z0-9_.:-]{1,64}-[0-9]{1,6}", form.get("dispute_ids", ""))
    if not chosen:
        criteria = {"state": form.get("state") or None, "buyer_id": form.get("buyer_id") or None,
                    "seller_id": form.get("seller_id") or None}
        limit = int(form["limit"]) if form.get("limit", "").isdigit() else 100
        async with _api(request, viewer) as api:
            try:
                found = await api.get("/disputes", limit=max(1, min(limit, SEARCH_LIMIT)), **criteria)
            except Refused as refused:
                return render(request, "replay.html", viewer, status=refused.status, job=None,
                              states=list(DisputeState), error=explain(refused, viewer.t))
        chosen = [d["dispute_id"] for d in found["items"]]
    if not chosen:
        return render(request, "replay.html", viewer, status=422, job=None, states=list(DisputeState),
                      error=viewer.t.gettext("No dispute matches; nothing to replay."))
    job_id = request.app.state.console_replays.start(request.app, viewer.token, request.state.request_id,
                                                     user_key(viewer.actor), list(dict.fromkeys(chosen)))
    return RedirectResponse(f"{PREFIX}/audit/replay/{job_id}", status_code=303)


@router.get("/audit/replay/{job_id}")
def replay_progress(request: Request, job_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")],
                    viewer: AuditorViewer) -> HTMLResponse:
    job = request.app.state.console_replays.get(job_id, user_key(viewer.actor))
    if job is None:
        return render(request, "message.html", viewer, status=404, message=viewer.t.gettext("There is no such replay."))
    # htmx asks for the progress part only; a page without script reloads itself whole.
    name = "replay_progress.html" if request.headers.get("hx-request") else "replay.html"
    return render(request, name, viewer, job=job, job_id=job_id, states=list(DisputeState))


@router.get("/audit/reconciliation")
async def reconciliation(request: Request, viewer: AuditorViewer) -> HTMLResponse:
    async with _api(request, viewer) as api:
        try:
            report = await api.get("/reconciliation")
        except Refused as refused:
            return render(request, "message.html", viewer, status=refused.status, message=explain(refused, viewer.t))
    return render(request, "reconciliation.html", viewer, report=report)


@router.get("/audit/funds")
async def funds(request: Request, viewer: AuditorViewer,
                currency: Annotated[str, Query(pattern=r"^[A-Z]{3}$")] = "CNY") -> HTMLResponse:
    fund, error = None, None
    async with _api(request, viewer) as api:
        try:
            fund = await api.get(f"/guarantee-fund/{currency}")
        except Refused as refused:
            error = explain(refused, viewer.t)
    return render(request, "funds.html", viewer, fund=fund, currency=currency, error=error)


# ---- the managers' reports ------------------------------------------------------------------

REPORT_DAYS = 56
# The compliance chart's points: one per week, or fewer, longer buckets for a long period.
MAX_BUCKETS = 26


def _period_days(start: str | None, end: str | None, t: Translator) -> tuple[date, date]:
    """The period's first and last day (the viewer's days); the last 8 weeks unless chosen."""
    last = date.fromisoformat(end) if end else t.today()
    first = date.fromisoformat(start) if start else last - timedelta(days=REPORT_DAYS - 1)
    return first, last


def _buckets(first: date, last: date) -> list[tuple[date, date]]:
    """Consecutive [start, end) days covering the period: weeks, or longer past MAX_BUCKETS weeks."""
    days = (last - first).days + 1
    length = max(7, -(-days // MAX_BUCKETS))
    starts = range(0, days, length)
    return [(first + timedelta(days=d), min(first + timedelta(days=d + length), last + timedelta(days=1)))
            for d in starts]


async def _compliance_chart(api: ConsoleApi, t: Translator, first: date, last: date,
                            report: dict) -> charts.Chart:
    """Each service level's share met per bucket, from the KPI report of that bucket's cases."""
    buckets = _buckets(first, last)
    shares: dict[str, list[float | None]] = {s["name"]: [] for s in report["overall"]["service_levels"]}
    for start, end in buckets:
        part = await api.get("/reports/kpis", **{"from": _day_start(start.isoformat(), t),
                                                  "to": _day_start(end.isoformat(), t)})
        met = {s["name"]: s["compliance"] for s in part["overall"]["service_levels"]}
        for name, column in shares.items():
            column.append(met.get(name))
    targets = {s["name"]: s["target_share"] for s in report["overall"]["service_levels"]}
    return charts.compliance_over_time([s.strftime("%m-%d") for s, _ in buckets], shares, targets, t.percent)


def _categories_chart(trends: dict, first: date, last: date) -> charts.Chart:
    """Every week of the period, quiet ones too, so the bars keep time's proportions."""
    monday = first - timedelta(days=first.weekday())
    weeks = {monday + timedelta(weeks=n) for n in range((last - monday).days // 7 + 1)}
    rows = [(datetime.fromisoformat(row["week_of"]).date(), row["reason"], row["cases"]) for row in trends["weeks"]]
    weeks = sorted(weeks | {week for week, _, _ in rows})
    counts: dict[str, list[int]] = {}
    for week, reason, cases in rows:
        counts.setdefault(reason, [0] * len(weeks))[weeks.index(week)] = cases
    return charts.stacked_by_week([w.strftime("%m-%d") for w in weeks], counts)


@router.get("/reports")
async def reports(request: Request, viewer: ReportViewer,
                  start: Annotated[str | None, Query(alias="from", max_length=10)] = None,
                  end: Annotated[str | None, Query(alias="to", max_length=10)] = None,
                  breakdown: Annotated[str, Query(alias="by", max_length=20)] = Breakdown.REASON.value) -> HTMLResponse:
    t = viewer.t
    try:
        first, last = _period_days(start, end, t)
    except ValueError:
        return render(request, "message.html", viewer, status=422,
                      message=t.gettext("Give the period as two dates."))
    # Checked here, not by FastAPI, so a person reads the page rather than a JSON problem.
    if breakdown not in set(Breakdown):
        return render(request, "message.html", viewer, status=422, message=t.gettext(
            "Break the figures down by one of: {choices}.", choices=", ".join(t.gettext(b.value) for b in Breakdown)))
    by = Breakdown(breakdown)
    period = {"from": _day_start(first.isoformat(), t), "to": _day_start(last.isoformat(), t, 1)}
    async with _api(request, viewer) as api:
        try:
            report = await api.get("/reports/kpis", by=by.value, **period)
            trends = await api.get("/reports/trends", **period)
            compliance = await _compliance_chart(api, t, first, last, report)
        except Refused as refused:
            return render(request, "message.html", viewer, status=refused.status, message=explain(refused, t))
    return render(request, "reports.html", viewer, report=report, trends=trends, first=first, last=last, by=by,
                  breakdowns=list(Breakdown), compliance=compliance, categories=_categories_chart(trends, first, last))

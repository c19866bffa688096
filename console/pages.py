"""What every console page shares: who is looking, in which language, and the forms' guards."""

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.deps import ServicesDep, actor_for
from api.services import Services
from console.api import Refused
from console.i18n import LANGUAGES, Translator, known_time_zone, negotiate
from console.sessions import COOKIE, Sessions
from identity import Actor, Role
from workflows import rules

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

PREFIX = "/console"
# The browser itself refuses anything a page would load from elsewhere, or send elsewhere.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; "
                           "base-uri 'none'")


def sessions(services: Services) -> Sessions:
    return Sessions(services.engine, services.settings)


def user_key(actor: Actor) -> str:
    return f"{actor.role.value}:{actor.party_id}"


@dataclass(frozen=True)
class Viewer:
    actor: Actor
    token: str
    csrf: str
    t: Translator


class SignInNeeded(Exception):
    pass


class NotForYou(Exception):
    """A signed-in user on a page of another role."""

    def __init__(self, viewer: "Viewer"):
        self.viewer = viewer


def get_viewer(request: Request, services: ServicesDep) -> Viewer:
    book = sessions(services)
    opened = book.find(request.cookies.get(COOKIE))
    actor = opened and actor_for(services, opened.token, request.state.request_id)
    if not actor:
        raise SignInNeeded
    preference = book.preference(user_key(actor))
    translator = (Translator(preference.language, preference.time_zone) if preference
                  else Translator(negotiate(request.headers.get("accept-language")), known_time_zone(None)))
    return Viewer(actor=actor, token=opened.token, csrf=opened.csrf, t=translator)


def role_viewer(*roles: Role):
    def check(viewer: Annotated[Viewer, Depends(get_viewer)]) -> Viewer:
        if viewer.actor.role not in roles:
            raise NotForYou(viewer)
        return viewer

    return check


AnyViewer = Annotated[Viewer, Depends(get_viewer)]
MediatorViewer = Annotated[Viewer, Depends(role_viewer(Role.MEDIATOR))]
AuditorViewer = Annotated[Viewer, Depends(role_viewer(Role.AUDITOR))]
ReportViewer = Annotated[Viewer, Depends(role_viewer(Role.MANAGER, Role.AUDITOR))]


class FormRefused(Exception):
    """A form whose CSRF token is not the session's."""


async def checked_form(request: Request, viewer: AnyViewer) -> dict[str, str]:
    """The posted form, once its CSRF token is the session's own."""
    form = {key: value for key, value in (await request.form()).items() if isinstance(value, str)}
    if not hmac.compare_digest(form.get("csrf", ""), viewer.csrf):
        raise FormRefused(viewer.t.gettext("This form has expired. Reload the page and try again."))
    return form


CheckedForm = Annotated[dict[str, str], Depends(checked_form)]


def form_key() -> str:
    """A one-time key per rendered form: sent twice, it is the same Idempotency-Key."""
    return secrets.token_hex(16)


def render(request: Request, name: str, viewer: Viewer | None, translator: Translator | None = None,
           status: int = 200, **context: Any) -> HTMLResponse:
    t = translator or viewer.t
    return templates.TemplateResponse(request, name, {
        "v": viewer, "t": t, "_": t.gettext, "now": datetime.now(UTC), "languages": LANGUAGES,
        "form_key": form_key, "prefix": PREFIX, **context,
    }, status_code=status, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


# Problem types (api/problems.py, workflows/rules.py) -> what a person is told first.
_TITLES = {
    rules.NOT_ALLOWED_NOW: "This is not possible now",
    rules.FORBIDDEN: "You may not do this",
    "forbidden": "You may not do this",
    rules.INVALID: "This cannot be done as entered",
    "invalid-request": "This cannot be done as entered",
    rules.ADVANCE_REFUSED: "The advance was refused",
    rules.REFUND_EXCEEDS_REMAINING: "The refund exceeds what the order can still refund",
    "dispute-closed": "The dispute is closed; nothing can change it",
    "unknown-mediator": "There is no such mediator",
    "dispute-not-found": "There is no such dispute",
    "idempotency-key-reused": "This form was already used for something else; reload the page",
}


def explain(refused: Refused, t: Translator) -> str:
    """The API's refusal in words a person reads: what happened first, the API's reason after."""
    problem = refused.problem
    if problem.get("taken_by"):
        return t.gettext("Mediator {mediator} has already taken this case.", mediator=problem["taken_by"])
    if refused.status == 503:
        return t.gettext("The dispute service is busy. Nothing was changed; try again in a moment.")
    kind = str(problem.get("type", "")).rsplit("/", 1)[-1]
    lead = t.gettext(_TITLES[kind]) if kind in _TITLES else problem.get("title") or t.gettext("Refused")
    detail = problem.get("detail")
    if refused.status == 422 and problem.get("errors"):
        detail = "; ".join(f"{'.'.join(e.get('location', [])[1:])}: {e.get('message')}" for e in problem["errors"])
    return f"{lead}: {detail}" if detail else lead

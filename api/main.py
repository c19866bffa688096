"""The disputeflow HTTP API: `uvicorn api.main:app`."""

import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import install_problem_handlers
from api.routers import archive as archive_router
from api.routers import calendar, disputes, guarantee_fund, health, ledger, mediation, orders, reconciliation
from api.routers import reporting as reporting_router
from api.routers.audit import router as audit_router
from api.routers.notifications import router as notifications_router
from api.services import Services
from config.settings import Settings, get_settings
import console
from console.pages import sessions as console_sessions
from console.sessions import COOKIE as CONSOLE_COOKIE
from config.temporal import connect
from database import open_database
from archive.service import open_archive
from complaints.policy import load_complaint_policy
from complaints.router import router as complaints_router
from ledger import Ledger
from notifications.service import NotificationService
from observability.processes import configure_api_process, setup_api
from observability.tracing import temporal_plugins
from orders import OrderService
from policy import load_policy
from policy.coverage import log_calendar_coverage
from security.codec_server import codec_app

log = logging.getLogger("disputeflow.api")

_STATIC = Path(__file__).parent / "static"
_VENDOR = "/static/vendor"

_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


async def build_services(settings: Settings) -> Services:
    engine = open_database(settings.database_url)
    ledger_ = Ledger(engine)
    return Services(
        settings=settings,
        temporal=await connect(settings.temporal_address, settings.temporal_namespace,
                               plugins=temporal_plugins(settings)),
        engine=engine,
        ledger=ledger_,
        orders=OrderService(engine, ledger_),
        notifications=NotificationService(engine),
        policy=load_policy(settings.policy),
        archive=open_archive(settings, engine),
        complaint_policy=load_complaint_policy(settings.complaint_policy),
    )


def create_app(services: Services | None = None) -> FastAPI:
    """The app; tests pass their own services, the server builds them from settings."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if services is None:
            configure_api_process(get_settings())
            app.state.services = await build_services(get_settings())
        running = app.state.services
        log_calendar_coverage(running.policy, running.settings.calendar_warning_days, log)
        yield

    app = FastAPI(
        title="disputeflow",
        version="0.1.0",
        summary="Durable dispute resolution for marketplaces",
        description="Every error is an RFC 9457 problem (application/problem+json). "
                    "Authenticate with `Authorization: Bearer <token>`.",
        lifespan=lifespan,
        # Served below from vendored assets: FastAPI's defaults load them from a CDN.
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=lambda route: route.operation_id or route.name,
    )
    if services is not None:
        app.state.services = services
    install_problem_handlers(app)
    setup_api(app, services.settings if services is not None else get_settings())

    app.add_middleware(_RequestId)

    for router in (health.router, orders.router, disputes.router, mediation.router, guarantee_fund.router,
                   ledger.router, reconciliation.router, notifications_router):
        app.include_router(router)
    app.include_router(audit_router)
    app.include_router(calendar.router)
    app.include_router(archive_router.router)
    app.include_router(complaints_router)
    app.include_router(reporting_router.router)
    # The Temporal UI's codec endpoint (README "The codec server"): by bearer token, and under
    # /console, where the console's session cookie is sent, by that cookie too.
    app.mount("/codec", codec_app(lambda: app.state.services.settings))
    app.mount("/console/codec", codec_app(
        lambda: app.state.services.settings,
        lambda request: console_sessions(app.state.services).role(request.cookies.get(CONSOLE_COOKIE))))
    _serve_docs(app)
    console.mount(app)
    assert all(r.operation_id for r in app.routes if isinstance(r, APIRoute) and r.include_in_schema), \
        "every route of the API needs an operation id"
    return app


class _RequestId:
    """Names each request: the client's X-Request-ID when well formed, else a new one, in
    `request.state.request_id` and the response's header. Plain ASGI, as `observability`'s
    middleware (which logs the id, so it is added after it, to run first)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def named(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        await self.app(scope, receive, named)


def _serve_docs(app: FastAPI) -> None:
    """/docs and /redoc from the assets in api/static/vendor: nothing is fetched from the internet."""
    app.mount("/static", StaticFiles(directory=_STATIC), name="static")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title=f"{app.title} API",
            swagger_js_url=f"{_VENDOR}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{_VENDOR}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{_VENDOR}/swagger-ui/favicon-32x32.png",
            # The validator badge would send the spec to validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=app.openapi_url, title=f"{app.title} API",
                              redoc_js_url=f"{_VENDOR}/redoc/redoc.standalone.js",
                              redoc_favicon_url=f"{_VENDOR}/swagger-ui/favicon-32x32.png", with_google_fonts=False)


app = create_app()

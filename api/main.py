"""The disputeflow HTTP API: `uvicorn api.main:app`."""

import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute

from api.problems import install_problem_handlers
from api.routers import archive as archive_router
from api.routers import calendar, disputes, guarantee_fund, health, ledger, mediation, orders, reconciliation
from api.routers.audit import router as audit_router
from api.routers.notifications import router as notifications_router
from api.services import Services
from config.settings import Settings, get_settings
from config.temporal import connect
from database import create_schema, make_engine
from archive import open_archive
from ledger import Ledger
from notifications import NotificationService
from observability.processes import configure_api_process, setup_api
from observability.tracing import temporal_plugins
from orders import OrderService
from policy import load_policy
from policy.coverage import log_calendar_coverage

log = logging.getLogger("disputeflow.api")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


async def build_services(settings: Settings) -> Services:
    engine = make_engine(settings.database_url)
    create_schema(engine)
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
        generate_unique_id_function=lambda route: route.operation_id or route.name,
    )
    if services is not None:
        app.state.services = services
    install_problem_handlers(app)
    setup_api(app, services.settings if services is not None else get_settings())

    @app.middleware("http")
    async def request_id(request: Request, call_next):
        given = request.headers.get("x-request-id", "")
        request.state.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        response = await call_next(request)
        response.headers["X-Request-ID"] = request.state.request_id
        return response

    for router in (health.router, orders.router, disputes.router, mediation.router, guarantee_fund.router,
                   ledger.router, reconciliation.router, notifications_router):
        app.include_router(router)
    app.include_router(audit_router)
    app.include_router(calendar.router)
    app.include_router(archive_router.router)
    assert all(r.operation_id for r in app.routes if isinstance(r, APIRoute)), "every route needs an operation id"
    return app


app = create_app()

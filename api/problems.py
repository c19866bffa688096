"""RFC 9457 problem details for every error the API returns."""

import logging
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError, RPCStatusCode

log = logging.getLogger("disputeflow.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemDetail(BaseModel):
    """The body of every error response (RFC 9457)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


class Problem(Exception):
    def __init__(self, status: int, title: str, detail: str | None = None, *,
                 type: str = "about:blank", headers: dict[str, str] | None = None, **extensions: Any):
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type
        self.headers = headers
        self.extensions = extensions


def problem_type(slug: str) -> str:
    return f"/problems/{slug}"


# How long a client told "try again" (503) should wait, in seconds.
RETRY_AFTER = "5"

# Temporal's answers that mean "not now" rather than "no".
_UNAVAILABLE_RPC = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED,
                    RPCStatusCode.RESOURCE_EXHAUSTED)


def check_period(start: datetime | None, end: datetime | None, start_name: str, end_name: str) -> None:
    """A period's end must come after its start (422 otherwise); an open end is no period to check."""
    if start is not None and end is not None and end <= start:
        raise Problem(422, "Empty period", f"'{end_name}' ({end.isoformat()}) must be after '{start_name}' "
                      f"({start.isoformat()}).", type=problem_type("invalid-period"))


def unavailable(detail: str) -> Problem:
    """A dependency did not answer: nothing was done that a retry would repeat."""
    return Problem(503, "Try again", detail, type=problem_type("unavailable"), headers={"Retry-After": RETRY_AFTER})


def workflow_service_problem(error: RPCError) -> Problem:
    if error.status in _UNAVAILABLE_RPC:
        return unavailable("The dispute service did not answer in time; retry (with the same Idempotency-Key, "
                           "if the request had one).")
    return Problem(502, "Workflow service error", error.message, type=problem_type("temporal-error"))


def _database_unavailable(error: DBAPIError | PoolTimeout) -> bool:
    # OperationalError: refused, dropped or timed-out connections, SQLite's "database is locked".
    return isinstance(error, OperationalError | PoolTimeout) or error.connection_invalidated


def _response(request: Request, status: int, title: str, detail: str | None, type: str = "about:blank",
              headers: dict[str, str] | None = None, **extensions: Any) -> JSONResponse:
    body = {"type": type, "title": title, "status": status, "detail": detail, "instance": request.url.path}
    body.update(extensions)
    return JSONResponse(
        {k: v for k, v in body.items() if v is not None}, status_code=status,
        media_type=PROBLEM_MEDIA_TYPE, headers=headers,
    )


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return _response(request, exc.status, exc.title, exc.detail, exc.type, exc.headers, **exc.extensions)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            # The submitted value is left out on purpose: it may hold personal data.
            {"location": [str(part) for part in error["loc"]], "message": error["msg"], "code": error["type"]}
            for error in exc.errors()
        ]
        if any(e["code"] == "json_invalid" for e in errors):
            return _response(request, 400, "Malformed JSON", "The request body is not valid JSON.",
                             problem_type("malformed-json"), errors=errors)
        return _response(request, 422, "Invalid request", "The request does not match the schema; see errors.",
                         problem_type("invalid-request"), errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed", 401: "Unauthorized", 403: "Forbidden"}
        return _response(request, exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail),
                         headers=getattr(exc, "headers", None))

    @app.exception_handler(RPCError)
    async def _workflow_service(request: Request, exc: RPCError) -> JSONResponse:
        return await _problem(request, workflow_service_problem(exc))

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeout)
    async def _database(request: Request, exc: DBAPIError | PoolTimeout) -> JSONResponse:
        if not _database_unavailable(exc):
            return await _unexpected(request, exc)
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return await _problem(request, unavailable("The ledger database is unavailable; retry later."))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _response(request, 500, "Internal error", "Something went wrong on our side; it has been logged.")


# Shared OpenAPI documentation of error responses.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemDetail, "content": {PROBLEM_MEDIA_TYPE: {}}, "description": description}
    for status, description in {
        400: "Malformed request",
        401: "Missing or unknown bearer token",
        403: "The caller's role or party may not do this",
        404: "No such resource",
        409: "Not possible in the resource's current state",
        422: "The request is well-formed but invalid",
        502: "The workflow service answered with an error",
        503: "A dependency (Temporal, the ledger database) is unavailable; retry after Retry-After seconds",
    }.items()
}

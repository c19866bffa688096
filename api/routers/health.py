from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from api.deps import ServicesDep
from api.problems import RETRY_AFTER, Problem, problem_type
from database import reading
from policy.coverage import CalendarCoverage, calendar_coverage

router = APIRouter(tags=["health"])


class Health(BaseModel):
    database: str
    temporal: str
    policy_version: str
    # Readiness does not depend on it: past coverage cases still run, marked as such.
    calendar: CalendarCoverage


@router.get("/healthz", operation_id="health", response_model=Health)
async def health(services: ServicesDep) -> Health:
    """Ready when the database and the Temporal server both answer; `calendar` says how long
    the policy's working-day calendar is still covered ("expiring" within the warning lead time)."""
    try:
        await run_in_threadpool(_ping_database, services)
        await services.temporal.service_client.check_health()
    except Exception as error:
        raise Problem(503, "Not ready", f"{type(error).__name__}: {error}", type=problem_type("not-ready"),
                      headers={"Retry-After": RETRY_AFTER}) from error
    return Health(database="ok", temporal="ok", policy_version=services.policy.version,
                  calendar=calendar_coverage(services.policy, services.settings.calendar_warning_days))


def _ping_database(services) -> None:
    with reading(services.engine) as db:
        db.execute(text("SELECT 1"))

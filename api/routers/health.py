from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from api.deps import ServicesDep
from api.problems import RETRY_AFTER, Problem, problem_type

router = APIRouter(tags=["health"])


class Health(BaseModel):
    database: str
    temporal: str
    policy_version: str


@router.get("/healthz", operation_id="health", response_model=Health)
async def health(services: ServicesDep) -> Health:
    """Ready when the database and the Temporal server both answer."""
    try:
        await run_in_threadpool(_ping_database, services)
        await services.temporal.service_client.check_health()
    except Exception as error:
        raise Problem(503, "Not ready", f"{type(error).__name__}: {error}", type=problem_type("not-ready"),
                      headers={"Retry-After": RETRY_AFTER}) from error
    return Health(database="ok", temporal="ok", policy_version=services.policy.version)


def _ping_database(services) -> None:
    with services.engine.connect() as connection:
        connection.execute(text("SELECT 1"))

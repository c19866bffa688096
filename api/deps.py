"""FastAPI dependencies: who is calling, and the services they reach."""

import re
from typing import Annotated

from fastapi import Depends, Header, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from api.problems import Problem, problem_type
from api.services import Services
from fund import GuaranteeFund
from identity import Actor, Role
from ledger import Ledger
from orders import OrderService

_bearer = HTTPBearer(auto_error=False, description="A token from DISPUTEFLOW_TOKENS (see README)")


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_temporal(services: ServicesDep) -> Client:
    return services.temporal


def get_ledger(services: ServicesDep) -> Ledger:
    return services.ledger


def get_orders(services: ServicesDep) -> OrderService:
    return services.orders


def get_fund(services: ServicesDep) -> GuaranteeFund:
    return GuaranteeFund(services.ledger, services.policy.guarantee_fund_floor)


TemporalDep = Annotated[Client, Depends(get_temporal)]
LedgerDep = Annotated[Ledger, Depends(get_ledger)]
OrdersDep = Annotated[OrderService, Depends(get_orders)]
FundDep = Annotated[GuaranteeFund, Depends(get_fund)]


def get_current_actor(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise Problem(401, "Unauthorized", "Send a bearer token in the Authorization header.",
                      type=problem_type("unauthenticated"), headers=challenge)
    actor = actor_for(services, credentials.credentials, request.state.request_id)
    if actor is None:
        raise Problem(401, "Unauthorized", "The bearer token is not known.",
                      type=problem_type("unauthenticated"), headers=challenge)
    return actor


def actor_for(services: Services, token: str, request_id: str | None = None) -> Actor | None:
    """Who a token names, or None for a token nobody was given."""
    grant = services.settings.tokens.get(token)
    if grant is None:
        return None
    return Actor(role=grant.role, party_id=grant.party_id, senior=grant.senior, request_id=request_id)


CurrentActor = Annotated[Actor, Depends(get_current_actor)]


def require_roles(*roles: Role):
    def check(actor: CurrentActor) -> Actor:
        if actor.role not in roles:
            raise Problem(403, "Forbidden",
                          f"This needs the {' or '.join(r.value for r in roles)} role; the caller is a {actor.role.value}.",
                          type=problem_type("forbidden"))
        return actor

    return check


IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


def get_idempotency_key(
    idempotency_key: Annotated[str | None, Header(
        description="Makes a retried request return the first result instead of acting twice",
        max_length=100, pattern=IDEMPOTENCY_KEY_PATTERN.pattern,
    )] = None,
) -> str | None:
    return idempotency_key


IdempotencyKey = Annotated[str | None, Depends(get_idempotency_key)]

DisputeId = Annotated[str, Path(pattern=r"^dsp-[A-Za-z0-9_.:-]{1,64}-[0-9]{1,6}$", description="e.g. dsp-ORD-1001-1")]
OrderId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]

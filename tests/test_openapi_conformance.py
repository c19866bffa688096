"""Schemathesis over the served OpenAPI, for every role's development token: no 5xx, and
every response (status, content type, headers, body) is what the OpenAPI document says,
for valid requests and for requests that break the schema on purpose.

Cases are generated with Hypothesis (derandomized, so a run is repeatable) in a thread,
and sent through the test stack's in-process client on the test's event loop, where the
worker and the Temporal client live.
"""

import asyncio
import importlib
import pkgutil
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis import checks as schemathesis_checks
from schemathesis.specs.openapi import checks as openapi_checks

from config.settings import DEVELOPMENT_TOKENS
from tests.support import Stack


def _import_every_module(package) -> None:  # noqa: ANN001
    """Import all of `package` now, at collection. Schemathesis imports some of its modules
    lazily, deep inside a generation; pytest rewrites a plugin's modules from source as they
    are imported, and CPython 3.11's parser, so deep in the stack, sometimes fails with
    "SystemError: AST constructor recursion depth mismatch"."""
    for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        try:
            importlib.import_module(module.name)
        except ImportError:  # an optional extra this project does not install (allure)
            pass


_import_every_module(schemathesis)

# Small enough that every operation for all six roles runs in a few minutes on a loaded machine.
EXAMPLES_PER_OPERATION = 10

CHECKS = [
    schemathesis_checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]


def _one_token_per_role() -> dict[str, str]:
    tokens: dict[str, str] = {}
    for token, grant in sorted(DEVELOPMENT_TOKENS.items()):
        role = f"senior {grant.role.value}" if grant.senior else grant.role.value
        tokens.setdefault(role, token)
    return tokens


ROLE_TOKENS = _one_token_per_role()


@pytest.mark.parametrize("role", sorted(ROLE_TOKENS))
async def test_every_operation_answers_as_documented(stack: Stack, role: str) -> None:
    token = ROLE_TOKENS[role]
    loop = asyncio.get_running_loop()
    app = stack.http._transport.app  # type: ignore[attr-defined]
    schema = schemathesis.openapi.from_dict(app.openapi())
    # The in-process transport that answers a 500 (instead of raising what caused it).
    answering = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                  base_url=str(stack.http.base_url))

    def send(case: Any) -> httpx.Response:
        request = case.as_transport_kwargs(base_url=str(stack.http.base_url),
                                           headers={"Authorization": f"Bearer {token}"})
        request.pop("cookies", None)
        if "data" in request:
            request["content"] = request.pop("data")
        return asyncio.run_coroutine_threadsafe(answering.request(**request), loop).result(timeout=120)

    failures: list[str] = []

    def explore(operation: Any) -> None:
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck), print_blob=False)
        @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
               | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
        def check(case: Any) -> None:
            response = send(case)
            case.validate_response(response, checks=CHECKS)

        try:
            check()
        except Exception as error:  # collect every operation's failure, not only the first
            failures.append(f"{operation.method.upper()} {operation.path}: {error}"[:2000])

    try:
        for result in schema.get_all_operations():
            await asyncio.to_thread(explore, result.ok())
    finally:
        await answering.aclose()
    assert not failures, f"{len(failures)} operations for the {role}:\n" + "\n\n".join(failures)

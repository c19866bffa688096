"""The console's way to act: the API itself, called in-process with the user's token.

Every rule, role check, limit and idempotency guarantee the API has, the console has; a form
carries a one-time key that becomes the request's Idempotency-Key, so a form sent twice acts once."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.types import ASGIApp


class Refused(Exception):
    """The API said no: its RFC 9457 problem."""

    def __init__(self, status: int, problem: dict[str, Any]):
        super().__init__(problem.get("detail") or problem.get("title"))
        self.status = status
        self.problem = problem


class ConsoleApi:
    def __init__(self, client: httpx.AsyncClient):
        self._client = client

    async def get(self, path: str, **params: Any) -> Any:
        response = await self._client.get(path, params={k: v for k, v in params.items() if v is not None})
        return _answer(response).json()

    async def raw(self, path: str) -> httpx.Response:
        return _answer(await self._client.get(path))

    async def post(self, path: str, body: dict[str, Any], form_key: str | None = None) -> Any:
        headers = {"Idempotency-Key": f"console-{form_key}"} if form_key else {}
        return _answer(await self._client.post(path, json=body, headers=headers)).json()


def _answer(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        try:
            problem = response.json()
        except ValueError:
            problem = {"title": response.reason_phrase, "detail": response.text[:500]}
        raise Refused(response.status_code, problem if isinstance(problem, dict) else {"detail": str(problem)})
    return response


@asynccontextmanager
async def console_api(app: ASGIApp, token: str, request_id: str) -> AsyncIterator[ConsoleApi]:
    # The request id goes along, so the API's own records tie back to the console's request.
    headers = {"Authorization": f"Bearer {token}", "X-Request-ID": request_id}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://disputeflow.console", headers=headers,
                                 timeout=60) as client:
        yield ConsoleApi(client)

"""The codec server: the Temporal web UI's remote codec endpoint, so staff can read cases.

The UI POSTs `{"payloads": [...]}` (payloads in protobuf JSON: metadata values and data in
base64) to `<endpoint>/decode` and `<endpoint>/encode`, naming the namespace in
`X-Namespace`, and shows what comes back. Only auditors and mediators get payloads
decrypted; anyone else is refused, so a case's personal data is never shown to them. The
embedded UI has no sign-in of its own: the caller is known by a bearer token (scripts, or
a UI behind single sign-on passing its access token) or by the console's session cookie,
which the browser sends when the UI's "Include cross-origin credentials" is on.

Served by the API under /codec (what `disputeflow up` wires into the UI) and on its own
with `uvicorn --factory security.codec_server:standalone_app`.
"""

from collections.abc import Callable
from typing import Annotated, Any

from cryptography.exceptions import InvalidTag
from fastapi import Depends, FastAPI, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from pydantic import BaseModel, Field
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payload, Payloads

from api.problems import Problem, install_problem_handlers, problem_type
from config.codec import UndecodablePayload
from config.settings import Settings, get_settings
from config.temporal import payload_codec
from identity import Role
from security.encryption import UnknownKey

# Who may see payloads in the clear.
STAFF = (Role.AUDITOR, Role.MEDIATOR)
# Bounds a request: the UI sends the payloads of one page of history at a time.
MAX_PAYLOADS = 1000

# The role of the browser session a request carries (the console's cookie), or None.
SessionRole = Callable[[Request], Role | None]


def no_session(request: Request) -> Role | None:
    return None


class CodecPayloads(BaseModel):
    """Temporal's codec-server body: payloads in protobuf JSON form."""

    payloads: list[dict[str, Any]] = Field(max_length=MAX_PAYLOADS)


class _CORSFromSettings:
    """CORS for the UI origins of the settings, read when the first request comes (the API
    builds its settings at start-up, after the app object exists)."""

    def __init__(self, app: ASGIApp, settings_of: Callable[[], Settings]):
        self._app, self._settings_of, self._cors = app, settings_of, None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._cors is None:
            self._cors = CORSMiddleware(
                self._app, allow_origins=self._settings_of().codec_allowed_origins, allow_credentials=True,
                allow_methods=["POST"], allow_headers=["Authorization", "Content-Type", "X-Namespace"])
        await self._cors(scope, receive, send)


def codec_app(settings_of: Callable[[], Settings], session_role: SessionRole = no_session) -> FastAPI:
    app = FastAPI(title="disputeflow codec server", openapi_url=None, docs_url=None, redoc_url=None)
    install_problem_handlers(app)
    app.add_middleware(_CORSFromSettings, settings_of=settings_of)
    bearer = HTTPBearer(auto_error=False)

    def staff(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
              namespace: Annotated[str | None, Header(alias="X-Namespace")] = None) -> None:
        settings = settings_of()
        grant = settings.tokens.get(credentials.credentials) if credentials is not None else None
        role = grant.role if grant is not None else session_role(request)
        if role is None:
            raise Problem(401, "Unauthorized", "Send an auditor's or mediator's bearer token, or sign in to the "
                          "console and turn on the UI's \"Include cross-origin credentials\".",
                          type=problem_type("unauthenticated"), headers={"WWW-Authenticate": "Bearer"})
        if role not in STAFF:
            raise Problem(403, "Forbidden", f"Only auditors and mediators see case payloads; the caller is a "
                          f"{role.value}.", type=problem_type("forbidden"))
        if namespace is not None and namespace != settings.temporal_namespace:
            raise Problem(400, "Wrong namespace", f"This codec serves namespace {settings.temporal_namespace}, "
                          f"not {namespace}.", type=problem_type("codec-namespace"))

    def transform(body: CodecPayloads, change: Callable[[Payload], Payload]) -> dict[str, Any]:
        try:
            payloads = json_format.ParseDict({"payloads": body.payloads}, Payloads()).payloads
            changed = [change(payload) for payload in payloads]
        except json_format.ParseError as error:
            raise Problem(400, "Not payloads", str(error), type=problem_type("codec-payloads")) from error
        # A key we lack, a payload altered, corrupt or inflating past the bound.
        except (UnknownKey, InvalidTag, DecodeError, UndecodablePayload) as error:
            raise Problem(422, "Cannot decode", f"{type(error).__name__}: {error}",
                          type=problem_type("codec-payloads")) from error
        return {"payloads": [json_format.MessageToDict(payload) for payload in changed]}

    @app.post("/decode", dependencies=[Depends(staff)])
    def decode(body: CodecPayloads) -> dict[str, Any]:
        return transform(body, payload_codec(settings_of()).decode_payload)

    @app.post("/encode", dependencies=[Depends(staff)])
    def encode(body: CodecPayloads) -> dict[str, Any]:
        return transform(body, payload_codec(settings_of()).encode_payload)

    return app


def standalone_app() -> FastAPI:
    """The codec server on its own (a deployment's UI need not reach the API): /codec/*."""
    app = FastAPI(title="disputeflow codec server", openapi_url=None, docs_url=None, redoc_url=None)
    app.mount("/codec", codec_app(get_settings))
    return app

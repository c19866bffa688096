"""The codec server over real HTTP, as the Temporal web UI calls it: staff see a case's
payloads in the clear, nobody else does, and the UI's origin may call it with credentials."""

import threading
import zlib
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload

from api.main import create_app
from config.codec import COMPRESSED, MAX_PAYLOAD, DisputeflowCodec
from config.temporal import PLAIN_CONVERTER, payload_codec
from console.pages import sessions as console_sessions
from console.sessions import COOKIE as CONSOLE_COOKIE
from security.encryption import is_encrypted
from tests.support import AUDITOR, BUYER, MEDIATOR, PLATFORM, SELLER, Stack

UI_ORIGIN = "http://127.0.0.1:8233"


@pytest.fixture
def serve() -> Iterator:
    """`serve(app)` runs the app on a free loopback port in a thread; its base URL back."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: FastAPI) -> str:
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        while not server.started:
            thread.join(0.05)
            assert thread.is_alive(), "the server did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


async def _recorded_payloads(stack: Stack) -> tuple[list[dict], str]:
    """A case's opening input, as the UI gets it from the server: compressed, then encrypted,
    in protobuf JSON."""
    order_id = await stack.register_order()
    dispute_id = (await stack.open_dispute(order_id))["dispute_id"]
    history = await stack.services.temporal.get_workflow_handle(dispute_id).fetch_history()
    [payload] = history.events[0].workflow_execution_started_event_attributes.input.payloads
    assert is_encrypted(payload)
    assert payload_codec(stack.services.settings).encryption.decrypt(payload).metadata["encoding"] == COMPRESSED
    return [json_format.MessageToDict(payload)], dispute_id


async def test_auditors_and_mediators_see_payloads_and_nobody_else(stack: Stack, serve) -> None:
    base = serve(create_app(stack.services))
    payloads, dispute_id = await _recorded_payloads(stack)
    namespace = stack.services.settings.temporal_namespace
    async with httpx.AsyncClient(base_url=f"{base}/codec") as http:

        async def decode(token: str | None, **headers: str) -> httpx.Response:
            auth = {"Authorization": f"Bearer {token}"} if token else {}
            return await http.post("/decode", json={"payloads": payloads},
                                   headers={"X-Namespace": namespace, **auth, **headers})

        for token in (AUDITOR, MEDIATOR):
            response = await decode(token)
            assert response.status_code == 200, response.text
            [clear] = response.json()["payloads"]
            assert not is_encrypted(json_format.ParseDict(clear, Payload()))
            value = PLAIN_CONVERTER.payload_converter.from_payload(json_format.ParseDict(clear, Payload()))
            assert value["dispute_id"] == dispute_id and "kettle leaks" in str(value)
        for token in (BUYER, SELLER, PLATFORM):
            refused = await decode(token)
            assert refused.status_code == 403, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert "kettle" not in refused.text
        for token in (None, "not-a-token"):
            refused = await decode(token)
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert (await decode(AUDITOR, **{"X-Namespace": "elsewhere"})).status_code == 400

        # What the UI encodes (a signal's input typed in) decodes back for staff.
        plain = json_format.MessageToDict(PLAIN_CONVERTER.payload_converter.to_payload({"note": "typed in the UI"}))
        encoded = await http.post("/encode", json={"payloads": [plain]}, headers={"Authorization": f"Bearer {AUDITOR}"})
        assert encoded.status_code == 200 and encoded.json()["payloads"][0] != plain
        back = await http.post("/decode", json=encoded.json(), headers={"Authorization": f"Bearer {MEDIATOR}"})
        assert back.json() == {"payloads": [plain]}
        assert (await http.post("/encode", json={"payloads": [plain]},
                                headers={"Authorization": f"Bearer {BUYER}"})).status_code == 403

        # Not payloads, or a payload altered: 4xx, never a 500.
        assert (await http.post("/decode", json={"payloads": [{"data": "not base64!"}]},
                                headers={"Authorization": f"Bearer {AUDITOR}"})).status_code == 400
        altered = dict(payloads[0], data=payloads[0]["data"][:-8] + "AAAAAAA=")
        assert (await http.post("/decode", json={"payloads": [altered]},
                                headers={"Authorization": f"Bearer {AUDITOR}"})).status_code == 422
        bomb = Payload(metadata={"encoding": COMPRESSED}, data=zlib.compress(bytes(MAX_PAYLOAD + 1)))
        refused = await http.post("/decode", json={"payloads": [json_format.MessageToDict(bomb)]},
                                  headers={"Authorization": f"Bearer {AUDITOR}"})
        assert refused.status_code == 422 and "decompression bomb" in refused.text

        # A payload compressed by a process without keys decodes too.
        note = PLAIN_CONVERTER.payload_converter.to_payload({"note": "compressed, not sealed " * 40})
        packed = DisputeflowCodec(None).encode_payload(note)
        assert packed.metadata["encoding"] == COMPRESSED
        back = await http.post("/decode", json={"payloads": [json_format.MessageToDict(packed)]},
                               headers={"Authorization": f"Bearer {MEDIATOR}"})
        assert back.json() == {"payloads": [json_format.MessageToDict(note)]}


async def test_the_ui_origin_may_call_with_credentials_and_no_other(stack: Stack, serve) -> None:
    base = serve(create_app(stack.services))
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type,x-namespace"}
    async with httpx.AsyncClient(base_url=f"{base}/codec") as http:
        allowed = await http.options("/decode", headers={"Origin": UI_ORIGIN, **preflight})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == UI_ORIGIN
        assert allowed.headers["access-control-allow-credentials"] == "true"
        assert "x-namespace" in allowed.headers["access-control-allow-headers"].lower()
        other = await http.options("/decode", headers={"Origin": "http://evil.example", **preflight})
        assert "access-control-allow-origin" not in other.headers


async def test_a_console_session_cookie_counts_as_its_role(stack: Stack, serve) -> None:
    """The UI sends the console's cookie (with "Include cross-origin credentials") to the
    codec under /console, the cookie's path: a signed-in auditor or mediator is staff."""
    base = serve(create_app(stack.services))
    book = console_sessions(stack.services)
    payloads, _ = await _recorded_payloads(stack)
    async with httpx.AsyncClient(base_url=f"{base}/console/codec") as http:
        for cookie, status in ((book.start(AUDITOR), 200), (book.start(MEDIATOR), 200), (book.start(BUYER), 403),
                               ("forged", 401)):
            response = await http.post("/decode", json={"payloads": payloads}, headers={
                "Cookie": f"{CONSOLE_COOKIE}={cookie}", "X-Namespace": stack.services.settings.temporal_namespace})
            assert response.status_code == status, (cookie, response.text)
        signed_out = book.start(AUDITOR)
        book.end(signed_out)
        response = await http.post("/decode", json={"payloads": payloads},
                                   headers={"Cookie": f"{CONSOLE_COOKIE}={signed_out}"})
        assert response.status_code == 401, response.text

"""Personal data in Temporal: what the server stores of a case is ciphertext, auditors read it
in the clear, keys rotate without losing old cases, and unencrypted payloads still decode."""

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import Engine
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import History
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from audit import history as histories
from config.settings import Settings, get_settings
from config.temporal import PLAIN_CONVERTER, connect, data_converter
from security.encryption import KEY_ID, PayloadKeyring, UnknownKey, is_encrypted, new_keyring
from tests.conftest import StackFactory
from tests.support import AUDITOR, BUYER, MEDIATOR, SELLER, Stack, eventually
from worker import WORKFLOWS, build_worker


def _payloads(history: WorkflowHistory) -> list[Payload]:
    """Every payload of the codec in the history (search attributes are not: they stay readable)."""
    found: list[Payload] = []

    def walk(message) -> None:
        for field, value in message.ListFields():
            if field.message_type is None or field.name == "search_attributes":
                continue
            if field.message_type.GetOptions().map_entry:
                continue
            for item in value if field.is_repeated else [value]:
                found.append(item) if isinstance(item, Payload) else walk(item)

    for event in history.events:
        walk(event)
    return found


def _stored_bytes(history: WorkflowHistory) -> bytes:
    """The history as the server keeps it: protobuf, payload data as raw bytes."""
    return History(events=history.events).SerializeToString()


def _input(history: WorkflowHistory) -> dict:
    start = history.events[0].workflow_execution_started_event_attributes
    return PLAIN_CONVERTER.payload_converter.from_payload(start.input.payloads[0])


async def _case_with_personal_data(stack: Stack) -> tuple[str, str, str]:
    """A closed case whose description and return address are unmistakable strings."""
    description = f"Parcel for Zhang Wei, Flat 12, 88 Nanjing Road {uuid.uuid4().hex[:8]}"
    address = f"Returns desk of Li Na, 7 Harbour Road {uuid.uuid4().hex[:8]}"
    order_id = await stack.register_order()
    opened = await stack.ok("POST", "/disputes", BUYER, {
        "order_id": order_id, "kind": "return_and_refund", "reason": "quality",
        "amount": {"amount": 10_000, "currency": "CNY"}, "description": description,
    }, status=201)
    await stack.act(opened["dispute_id"], "seller-agree-return", SELLER, {"return_address": address})
    return opened["dispute_id"], description, address


async def test_the_server_holds_no_personal_data_and_auditors_read_it_in_the_clear(stack: Stack) -> None:
    dispute_id, description, address = await _case_with_personal_data(stack)
    raw = await stack.services.temporal.get_workflow_handle(dispute_id).fetch_history()

    stored = _stored_bytes(raw)
    assert description.encode() not in stored and address.encode() not in stored
    assert b"Zhang Wei" not in stored and b"Nanjing Road" not in stored and b"Harbour Road" not in stored
    payloads = _payloads(raw)
    assert payloads and all(is_encrypted(p) and p.metadata[KEY_ID] == b"test" for p in payloads)
    # Visibility still works: ids and states are search attributes, not payloads. It lists a new
    # case shortly after it starts.
    async def listed() -> list[str]:
        return [d.id async for d in stack.services.temporal.list_workflows(f"WorkflowId = '{dispute_id}'")]

    assert await eventually(listed, what=f"{dispute_id} listed") == [dispute_id]

    export = await stack.call("GET", f"/audit/disputes/{dispute_id}/history", AUDITOR)
    assert export.status_code == 200, export.text
    exported = histories.runs_from_json(export.content, dispute_id)[0]
    assert _input(exported)["dispute_id"] == dispute_id
    assert description.encode() in _stored_bytes(exported) and address.encode() in _stored_bytes(exported)
    assert not any(is_encrypted(p) for p in _payloads(exported))
    for token in (BUYER, SELLER, MEDIATOR):
        assert (await stack.call("GET", f"/audit/disputes/{dispute_id}/history", token)).status_code == 403

    # The auditor's trail decrypts too.
    trail = await stack.ok("GET", f"/audit/disputes/{dispute_id}/trail", AUDITOR)
    assert trail["opened_by"]["party_id"] == "alice"
    assert any(address in str(entry["data"]) for entry in trail["entries"])


async def test_keys_rotate_old_payloads_still_decrypt_and_the_case_replays(
        stack_factory: StackFactory, app_engine: Engine, temporal_env: WorkflowEnvironment,
        activity_executor: ThreadPoolExecutor) -> None:
    old = get_settings().payload_keys
    assert old is not None and old.current == "test"
    # The rotation: a new current key, the old one kept to decrypt what it wrote.
    rotated = Settings(payload_keys=PayloadKeyring(current="next", keys={
        "next": new_keyring("next").revealed()["next"], **old.revealed()}))
    client = temporal_env.client
    rotated_client = await connect(client.service_client.config.target_host, client.namespace, rotated)

    async with stack_factory(app_engine) as stack:
        order_id = await stack.register_order()
        dispute_id = (await stack.open_dispute(order_id))["dispute_id"]
        # Every process restarts with the rotated keys; the open case carries on.
        await stack.stop_worker()
        stack.services.temporal = rotated_client
        stack.make_worker = lambda: build_worker(rotated_client, stack.task_queue, app_engine, activity_executor,
                                                 ledger=stack.services.ledger, archive=stack.services.archive)
        await stack.start_worker()
        closed = await stack.act(dispute_id, "seller-agree-refund", SELLER)
        assert closed["state"] == "SUCCESS"
        handle = rotated_client.get_workflow_handle(dispute_id)
        await asyncio.wait_for(handle.result(), timeout=30)
        raw = await handle.fetch_history()

    key_ids = {p.metadata[KEY_ID] for p in _payloads(raw)}
    assert key_ids == {b"test", b"next"}, "opened under the old key, settled under the new one"
    # Only the new key in the ring cannot read the case; both can.
    await Replayer(workflows=WORKFLOWS, data_converter=data_converter(rotated)).replay_workflow(raw)
    new_only = Settings(payload_keys=PayloadKeyring(current="next", keys={"next": rotated.payload_keys.revealed()["next"]}))
    with pytest.raises(UnknownKey, match="'test'"):
        for payload in _payloads(raw):
            data_converter(new_only).payload_codec.decode_payload(payload)


def test_unencrypted_payloads_pass_through_and_altered_ones_are_refused() -> None:
    key = new_keyring("k1").revealed()["k1"]
    codec = PayloadKeyring(current="k1", keys={"k1": key}).codec()
    plain = PLAIN_CONVERTER.payload_converter.to_payload({"description": "written before encryption"})
    assert codec.decrypt(plain) == plain

    sealed = codec.encrypt(plain)
    assert sealed.metadata[KEY_ID] == b"k1" and b"written before" not in sealed.data
    assert codec.decrypt(sealed) == plain
    tampered = Payload(metadata=sealed.metadata, data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    with pytest.raises(InvalidTag):
        codec.decrypt(tampered)
    # The key id is authenticated: relabelling a payload as another key's does not decrypt.
    other = PayloadKeyring(current="k2", keys={"k2": key, "k1": key}).codec()
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID: b"k2"}, data=sealed.data)
    with pytest.raises(InvalidTag):
        other.decrypt(relabelled)


def test_a_keyring_names_its_current_key_and_holds_aes_keys() -> None:
    with pytest.raises(ValueError, match="current key"):
        PayloadKeyring(current="gone", keys={"k1": new_keyring("k1").revealed()["k1"]})
    with pytest.raises(ValueError, match="16, 24 or 32 bytes"):
        PayloadKeyring(current="k1", keys={"k1": "c2hvcnQ="})
    assert "**" in repr(new_keyring("k1")), "keys never show in a repr or a log line"


def test_dev_up_encrypts_with_a_development_key_every_command_then_reads(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from devstack.stack import _encryption

    keys_file = tmp_path / "data" / "payload-keys.json"
    unkeyed = Settings(payload_keys=None, payload_keys_file=keys_file)
    monkeypatch.setenv("DISPUTEFLOW_CODEC_ALLOWED_ORIGINS", "[]")  # restored after the test
    endpoint = _encryption(unkeyed, "http://127.0.0.1:18233")
    assert endpoint == f"http://{unkeyed.api_host}:{unkeyed.api_port}/console/codec"
    assert keys_file.stat().st_mode & 0o777 == 0o600, "the key is its owner's alone"
    assert "http://127.0.0.1:18233" in Settings().codec_allowed_origins, "the UI's origin may call the codec"
    # Every process started from the same place reads the key back: payloads round-trip.
    reread = Settings(payload_keys=None, payload_keys_file=keys_file)
    assert reread.payload_keys is not None and reread.payload_keys.current.startswith("dev-")
    sealed = data_converter(reread).payload_codec.encode_payload(PLAIN_CONVERTER.payload_converter.to_payload("x"))
    assert data_converter(Settings(payload_keys=None, payload_keys_file=keys_file)).payload_codec.decode_payload(sealed)
    # A configured keyring is left alone.
    _encryption(reread, "http://127.0.0.1:8233")
    assert Settings(payload_keys=None, payload_keys_file=keys_file).payload_keys.revealed() == reread.payload_keys.revealed()

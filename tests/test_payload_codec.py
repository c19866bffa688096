"""The payload codec (config.codec): large payloads are compressed, then encrypted when keys are
configured, and decode back; small ones and everything written before compression pass
through unchanged; a compressed payload that inflates past the bound is refused."""

import os
import zlib
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from audit import history as histories
from config.codec import COMPRESS_FROM, COMPRESSED, MAX_PAYLOAD, DisputeflowCodec, UndecodablePayload
from config.temporal import PLAIN_CONVERTER, payload_codec
from security.encryption import KEY_ID, PayloadKeyring, is_encrypted, new_keyring

HISTORIES = Path(__file__).parent / "histories"
UNKEYED = DisputeflowCodec(None)
KEYED = PayloadKeyring(current="k1", keys=new_keyring("k1").revealed()).codec()


def _json(value: object) -> Payload:
    return PLAIN_CONVERTER.payload_converter.to_payload(value)


# What a notify_all input is like: a case snapshot, repetitive JSON.
CASE = _json({"dispute_id": "dsp-ORD-1-1", "events": [
    {"kind": "seller_responded", "at": f"2026-12-01T10:{n:02d}:00Z", "actor": "acme", "details": {"n": n}}
    for n in range(40)]})


def test_a_large_payload_is_compressed_with_its_encoding_kept_and_decodes_back() -> None:
    packed = UNKEYED.encode_payload(CASE)
    assert packed.metadata["encoding"] == COMPRESSED
    assert packed.ByteSize() < CASE.ByteSize() / 3
    assert Payload.FromString(zlib.decompress(packed.data)).metadata["encoding"] == b"json/plain"
    assert UNKEYED.decode_payload(packed) == CASE


def test_small_and_incompressible_payloads_are_left_as_they_are() -> None:
    small = _json({"accepted": True, "state": "SUCCESS", "deadline": "2026-12-08T10:00:00Z"})
    assert small.ByteSize() < COMPRESS_FROM
    assert UNKEYED.encode_payload(small) is small
    noise = Payload(metadata={"encoding": b"binary/plain"}, data=os.urandom(4096))
    assert UNKEYED.encode_payload(noise) is noise
    oversized = Payload(metadata={"encoding": b"binary/plain"}, data=bytes(MAX_PAYLOAD))
    assert UNKEYED.encode_payload(oversized) is oversized, "what could not be inflated back is not compressed"


def test_compression_comes_before_encryption_and_decoding_undoes_both() -> None:
    codec = DisputeflowCodec(KEYED)
    sealed = codec.encode_payload(CASE)
    assert is_encrypted(sealed) and sealed.metadata[KEY_ID] == b"k1"
    assert KEYED.decrypt(sealed).metadata["encoding"] == COMPRESSED
    assert codec.decode_payload(sealed) == CASE
    # Each layer alone, as processes with and without keys write them, decodes too.
    assert codec.decode_payload(KEYED.encrypt(CASE)) == CASE, "encrypted before compression existed"
    assert codec.decode_payload(UNKEYED.encode_payload(CASE)) == CASE, "compressed by a process without keys"
    assert UNKEYED.decode_payload(sealed) == sealed, "without keys a sealed payload stays sealed"


def test_every_committed_history_payload_passes_through_unchanged() -> None:
    codec = payload_codec()
    files = histories.history_files([HISTORIES, HISTORIES / "complaints"])
    events = [event for path in files for run in histories.read_runs(path) for event in run.events]
    assert len(files) > 20 and events
    for event in events:
        decoded = HistoryEvent.FromString(event.SerializeToString())
        codec.decode_message(decoded)
        assert decoded == event


def test_a_compressed_history_reads_in_the_clear() -> None:
    event = HistoryEvent()
    event.workflow_execution_started_event_attributes.input.payloads.append(payload_codec().encode_payload(CASE))
    [clear] = histories.decoded(WorkflowHistory("dsp-ORD-1-1", [event])).events
    assert clear.workflow_execution_started_event_attributes.input.payloads[0] == CASE


def test_a_decompression_bomb_and_a_corrupt_payload_are_refused() -> None:
    bomb = Payload(metadata={"encoding": COMPRESSED}, data=zlib.compress(bytes(MAX_PAYLOAD + 1)))
    assert len(bomb.data) < 10_000
    with pytest.raises(UndecodablePayload, match="decompression bomb"):
        UNKEYED.decode_payload(bomb)
    packed = UNKEYED.encode_payload(CASE)
    with pytest.raises(UndecodablePayload, match="truncated"):
        UNKEYED.decode_payload(Payload(metadata=packed.metadata, data=packed.data[:-10]))
    with pytest.raises(UndecodablePayload, match="corrupt"):
        UNKEYED.decode_payload(Payload(metadata=packed.metadata, data=b"not zlib" + packed.data))
    # A payload of the bound exactly is compressed and inflates back.
    at_bound = Payload(metadata={"encoding": b"binary/plain"}, data=bytes(MAX_PAYLOAD - 32))
    at_bound.data += bytes(MAX_PAYLOAD - at_bound.ByteSize())
    assert at_bound.ByteSize() == MAX_PAYLOAD
    packed = UNKEYED.encode_payload(at_bound)
    assert packed.metadata["encoding"] == COMPRESSED and UNKEYED.decode_payload(packed) == at_bound

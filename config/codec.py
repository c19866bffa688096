"""The payload codec of every process that talks to Temporal (worker, API, CLI, codec server,
audit): a payload is compressed where that pays, then encrypted when payload keys are
configured; it is read back in the reverse order. Compression comes first because
ciphertext does not compress, and it applies with or without keys so every process writes
and reads one format.

A compressed payload is the whole original payload (its metadata, so its encoding, and its
data) deflated with zlib, marked `binary/zlib`. A payload without that marker passes
through as it is: the committed histories in tests/histories/ and every case written before
compression still decode and replay unchanged."""

import zlib
from collections.abc import Sequence

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from security.encryption import EncryptionCodec

COMPRESSED = b"binary/zlib"
# Measured on the committed histories' payloads (serialized): below about 200 bytes, zlib
# and its marker saved little or made a payload larger (ids, states, small update answers);
# from 256 bytes every payload shrank, by a third (256-512) to two thirds (1 KiB and more).
COMPRESS_FROM = 256
# gRPC's 4 MiB message limit: no payload larger than this was ever sent uncompressed, so none
# is compressed, and a compressed payload that inflates past it is refused (a zlib bomb: a
# few KiB can inflate to gigabytes).
MAX_PAYLOAD = 4 * 2**20


class UndecodablePayload(ValueError):
    """A compressed payload that is corrupt, truncated or inflates past MAX_PAYLOAD."""


def compress(payload: Payload) -> Payload:
    """The payload compressed; as it is when small, over MAX_PAYLOAD, or when it does not shrink
    (data that is already compressed)."""
    plain = payload.SerializeToString()
    if not COMPRESS_FROM <= len(plain) <= MAX_PAYLOAD:
        return payload
    packed = Payload(metadata={"encoding": COMPRESSED}, data=zlib.compress(plain))
    return packed if packed.ByteSize() < len(plain) else payload


def decompress(payload: Payload) -> Payload:
    """The payload as written; one that was never compressed is returned unchanged."""
    if payload.metadata.get("encoding") != COMPRESSED:
        return payload
    inflater = zlib.decompressobj()
    try:
        # One byte past the bound tells a payload over it from one exactly at it.
        plain = inflater.decompress(payload.data, MAX_PAYLOAD + 1)
    except zlib.error as error:
        raise UndecodablePayload(f"a compressed payload is corrupt: {error}") from error
    if len(plain) > MAX_PAYLOAD:
        raise UndecodablePayload(f"a compressed payload of {len(payload.data):,} bytes inflates past "
                                 f"{MAX_PAYLOAD:,}: refused as a decompression bomb")
    if not inflater.eof:
        raise UndecodablePayload("a compressed payload is truncated")
    return Payload.FromString(plain)


class DisputeflowCodec(PayloadCodec):
    """Compress, then encrypt with `encryption` when there is one; decode in reverse."""

    def __init__(self, encryption: EncryptionCodec | None):
        self.encryption = encryption

    def encode_payload(self, payload: Payload) -> Payload:
        packed = compress(payload)
        return self.encryption.encrypt(packed) if self.encryption else packed

    def decode_payload(self, payload: Payload) -> Payload:
        """The payload as written; what was never encrypted or compressed passes through (and an
        encrypted one stays sealed where no keys are configured)."""
        return decompress(self.encryption.decrypt(payload) if self.encryption else payload)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encode_payload(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decode_payload(payload) for payload in payloads]

    def decode_message(self, message: Message) -> None:
        """Decode, in place, every payload anywhere inside `message` (a history event, a whole
        history): the SDK's visitors only know the worker's own messages."""
        for field, value in message.ListFields():
            if field.message_type is None:
                continue
            is_map = field.message_type.GetOptions().map_entry
            if is_map and field.message_type.fields_by_name["value"].message_type is None:
                continue
            items = value.values() if is_map else value if field.is_repeated else [value]
            for item in items:
                if isinstance(item, Payload):
                    decoded = self.decode_payload(item)
                    if decoded is not item:
                        item.CopyFrom(decoded)
                else:
                    self.decode_message(item)

"""AES-GCM encryption of Temporal payloads, with a key id in each so keys can rotate.

Every payload the worker, the API and the CLI send to Temporal (workflow inputs, update
arguments, activity results, query answers) is encrypted with the current key; the key id
travels in the payload's metadata, so a payload written under an older key still decrypts
while that key is configured. Payloads written before encryption was turned on (the
committed histories in tests/histories/) carry no such metadata and pass through as they
are, so every recorded case still replays. Search attributes are not payloads of the codec
and stay readable for visibility queries: they hold ids and states, never personal data.
"""

import base64
import binascii
import json
import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from temporalio.api.common.v1 import Payload

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
_NONCE_BYTES = 12


class PayloadKeyring(BaseModel):
    """DISPUTEFLOW_PAYLOAD_KEYS, e.g. `{"current": "2026-12", "keys": {"2026-12": "<base64>",
    "2026-06": "<base64>"}}`: new payloads use `current`, the others only decrypt."""

    model_config = ConfigDict(frozen=True)

    current: str = Field(min_length=1, max_length=64)
    keys: dict[str, SecretStr]

    @model_validator(mode="after")
    def _usable(self) -> "PayloadKeyring":
        if self.current not in self.keys:
            raise ValueError(f"the current key {self.current!r} is not among the keys")
        for key_id in self.keys:
            if len(self.key_bytes(key_id)) not in (16, 24, 32):
                raise ValueError(f"key {key_id!r} must be 16, 24 or 32 bytes of base64 (32 recommended)")
        return self

    def key_bytes(self, key_id: str) -> bytes:
        try:
            return base64.b64decode(self.keys[key_id].get_secret_value(), validate=True)
        except binascii.Error as error:
            raise ValueError(f"key {key_id!r} is not base64") from error

    def revealed(self) -> dict[str, str]:
        return {key_id: secret.get_secret_value() for key_id, secret in self.keys.items()}

    def to_json(self) -> str:
        """The keyring with its keys written out, as the keys file and the variable hold it."""
        return json.dumps({"current": self.current, "keys": self.revealed()}, indent=2)

    def codec(self) -> "EncryptionCodec":
        return EncryptionCodec({key_id: self.key_bytes(key_id) for key_id in self.keys}, self.current)


def new_keyring(key_id: str) -> PayloadKeyring:
    """A keyring of one fresh 256-bit key."""
    return PayloadKeyring(current=key_id, keys={key_id: base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()})


def write_development_keyring(path: Path) -> PayloadKeyring:
    """A fresh keyring in `path`, readable by its owner only: `disputeflow up`'s key when
    none is configured, so the embedded stack encrypts as production does."""
    keyring = new_keyring(f"dev-{date.today():%Y%m%d}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(keyring.to_json() + "\n", encoding="utf-8")
    return keyring


class UnknownKey(LookupError):
    def __init__(self, key_id: str):
        super().__init__(f"payload encrypted with key {key_id!r}, which is not among DISPUTEFLOW_PAYLOAD_KEYS")
        self.key_id = key_id


def is_encrypted(payload: Payload) -> bool:
    return payload.metadata.get("encoding") == ENCODING


class EncryptionCodec:
    """Encrypts with `current`; decrypts with whichever of `keys` a payload names. The
    project's payload codec (config.codec) runs it after compression."""

    def __init__(self, keys: Mapping[str, bytes], current: str):
        if current not in keys:
            raise ValueError(f"the current payload key {current!r} is not among the keys")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current = current

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(_NONCE_BYTES)
        key_id = self.current.encode()
        # The key id is authenticated too: a payload cannot be passed off as another key's.
        sealed = self._ciphers[self.current].encrypt(nonce, payload.SerializeToString(), key_id)
        return Payload(metadata={"encoding": ENCODING, KEY_ID: key_id}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        """The payload as written; one that was never encrypted is returned unchanged."""
        if not is_encrypted(payload):
            return payload
        key_id = payload.metadata.get(KEY_ID, b"")
        cipher = self._ciphers.get(key_id.decode())
        if cipher is None:
            raise UnknownKey(key_id.decode())
        plain = cipher.decrypt(payload.data[:_NONCE_BYTES], payload.data[_NONCE_BYTES:], key_id)
        return Payload.FromString(plain)

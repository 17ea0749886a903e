"""Encryption of customer data in Temporal: the payload codec every client and the
worker use (`activities.client.data_converter`). The codec endpoint that lets the
Temporal Web UI and CLI show it to people allowed to see it is `starter.codec`.

With `ONBOARDING_CODEC_KEYS` set, every payload this service sends to Temporal (workflow
and activity inputs and results, signals, updates, queries, memo, the UI summary and
failure messages) is AES-256-GCM encrypted before it leaves the process, so contact
names, emails and notes are ciphertext in Temporal's history. Search attributes are not
payloads and stay readable: ours hold no customer data.

A payload is stored as `nonce (12 bytes) + ciphertext` of the original serialized Payload,
with metadata `encoding: binary/encrypted` and `encryption-key-id: <id>`. The key id is
the associated data too, so a payload cannot be relabelled with another key's id.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Sequence
from typing import Annotated

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, Field, SecretBytes, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from activities.settings import _split

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
KEY_BYTES = 32
_KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")


class EncryptionKey(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    secret: SecretBytes


def parse_keys(value: object) -> object:
    """`id:base64key, ...` -> keys; errors name the entry and its id, never the key."""
    if not isinstance(value, str):
        return value
    keys: list[EncryptionKey] = []
    for n, entry in enumerate((e.strip() for e in value.split(",") if e.strip()), start=1):
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep or not _KEY_ID_PATTERN.fullmatch(key_id):
            raise ValueError(
                f"entry {n} is not `key_id:base64key` (key_id: 1-64 of A-Z a-z 0-9 . _ -)"
            )
        try:
            secret = base64.b64decode(encoded.strip(), validate=True)
        except ValueError:
            raise ValueError(f"key {key_id!r} is not base64") from None
        if len(secret) != KEY_BYTES:
            raise ValueError(
                f"key {key_id!r} is {len(secret)} bytes; AES-256 needs {KEY_BYTES} "
                "(base64 of os.urandom(32))"
            )
        if any(k.id == key_id for k in keys):
            raise ValueError(f"key id {key_id!r} is given twice")
        keys.append(EncryptionKey(id=key_id, secret=SecretBytes(secret)))
    return keys


class CodecSettings(BaseSettings):
    # hide_input_in_errors: a bad ONBOARDING_CODEC_KEYS must not print the keys in an error.
    model_config = SettingsConfigDict(env_prefix="ONBOARDING_", hide_input_in_errors=True)

    codec_keys: Annotated[list[EncryptionKey], NoDecode] = Field(
        default=[],
        description="`key_id:base64key` (32-byte AES-256 keys), comma-separated: the first "
        "encrypts, every one decrypts (rotation). Unset: payloads are not encrypted",
    )
    codec_cors_origins: Annotated[list[str], NoDecode] = Field(
        default=["http://localhost:8233"],
        description="Web UI origins allowed to call the codec endpoint",
    )

    _parse_keys = field_validator("codec_keys", mode="before")(parse_keys)
    _split_lists = field_validator("codec_cors_origins", mode="before")(_split)


class DecryptionError(ValueError):
    """A payload could not be decrypted; the message names the key id and the reason."""


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over whole payloads; the first key encrypts, every key decrypts."""

    def __init__(self, keys: Sequence[EncryptionKey]) -> None:
        if not keys:
            raise ValueError("an EncryptionCodec needs at least one key")
        self._ciphers = {k.id: AESGCM(k.secret.get_secret_value()) for k in keys}
        self.key_id = keys[0].id

    @classmethod
    def from_settings(cls, settings: CodecSettings) -> EncryptionCodec | None:
        """The codec, or None when no key is configured (payloads stay plain)."""
        return cls(settings.codec_keys) if settings.codec_keys else None

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self.key_id.encode()
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.key_id].encrypt(nonce, payload.SerializeToString(), key_id)
        return Payload(metadata={"encoding": ENCODING, KEY_ID: key_id}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        """The original payload; one not encrypted (recorded before the codec) as it is."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        raw_id = payload.metadata.get(KEY_ID)
        if raw_id is None:
            raise DecryptionError(f"an encrypted payload has no {KEY_ID!r} metadata")
        key_id = raw_id.decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            known = ", ".join(map(repr, self._ciphers))
            raise DecryptionError(
                f"payload encrypted with key {key_id!r}, which is not in "
                f"ONBOARDING_CODEC_KEYS (known: {known}); add that key to decrypt it"
            )
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, raw_id)
        except InvalidTag:
            raise DecryptionError(
                f"payload encrypted with key {key_id!r} does not authenticate: it was "
                "altered, or the key under that id is not the one that encrypted it"
            ) from None
        return Payload.FromString(plain)

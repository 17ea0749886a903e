"""Encryption of customer data in Temporal: a payload codec, and the codec endpoint that
lets the Temporal Web UI and CLI show it to people allowed to see it.

With `ONBOARDING_CODEC_KEYS` set, every payload this service sends to Temporal (workflow
and activity inputs and results, signals, updates, queries, memo, the UI summary and
failure messages) is AES-256-GCM encrypted before it leaves the process, so contact
names, emails and notes are ciphertext in Temporal's history. Search attributes are not
payloads and stay readable: ours hold no customer data.

A payload is stored as `nonce (12 bytes) + ciphertext` of the original serialized Payload,
with metadata `encoding: binary/encrypted` and `encryption-key-id: <id>`. The key id is
the associated data too, so a payload cannot be relabelled with another key's id.

    POST /codec/decode    {"payloads": [{"metadata": {...}, "data": "..."}]} -> same shape
    POST /codec/encode    (Temporal's remote codec protocol, for the Web UI and CLI)

Who may call it is `starter.auth`'s one scheme (the status API's too).
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Sequence
from typing import Annotated
from urllib.parse import parse_qs

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from google.protobuf import json_format
from pydantic import BaseModel, ConfigDict, Field, SecretBytes, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from starter.auth import SESSION_COOKIE, SESSION_TTL_S, ApiAuth
from starter.limits import BodyTooLarge, read_capped

log = structlog.get_logger("codec")

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
KEY_BYTES = 32
_KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")


class EncryptionKey(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    secret: SecretBytes


def _split(value: object) -> object:
    """`a, b` from the environment becomes `["a", "b"]` (as in activities/settings.py; this
    module stays free of the activities package, which imports the client, which imports
    this)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


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


# --------------------------------------------------------------------------- codec endpoint

# The Web UI without single sign-on cannot send a bearer token: a person signs in once at
# /codec/login, which sets the session cookie, and the UI sends it ("include credentials").
ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace"

_LOGIN_PAGE = """<!doctype html><title>Codec sign-in</title>
<h1>Decode onboarding data in the Temporal UI</h1>
<p>{message}</p>
<form method="post" action="login">
<label>API token <input type="password" name="token" autocomplete="off" required></label>
<button>Sign in</button></form>"""


def _error(status: int, error: str, field: str, reason: str, headers: dict[str, str]) -> Response:
    body = {"error": error, "field": field, "reason": reason}
    return JSONResponse(body, status_code=status, headers=headers)


def codec_router(
    auth: ApiAuth, settings: CodecSettings | None = None, *, max_body_bytes: int = 1_000_000
) -> APIRouter:
    """`/codec/encode`, `/codec/decode` (Temporal's codec server protocol, with CORS for
    the Web UI) and `/codec/login`. Every call needs `Authorization: Bearer <token>` (one
    of `ONBOARDING_API_TOKENS`) or the session cookie from `/codec/login` (`auth`)."""
    settings = settings or CodecSettings()
    codec = EncryptionCodec.from_settings(settings)
    router = APIRouter(prefix="/codec", tags=["Codec server"])

    def cors(request: Request) -> dict[str, str]:
        """CORS headers for an allowed Web UI origin; none for any other."""
        origin = request.headers.get("origin")
        headers = {"Vary": "Origin"}
        if origin and origin in settings.codec_cors_origins:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    def refusal(request: Request, headers: dict[str, str]) -> Response | None:
        """The 401/503 answer for a caller not allowed to use the codec, else None."""
        refused = auth.refusal(request)
        if refused is None:
            return None
        return _error(refused.status, refused.error, refused.field, refused.reason, headers)

    async def apply(request: Request, action: str) -> Response:
        headers = cors(request)
        refused = refusal(request, headers)
        if refused is not None:
            return refused
        if codec is None:
            reason = "no keys configured: this service does not encrypt payloads"
            return _error(503, "not_configured", "ONBOARDING_CODEC_KEYS", reason, headers)
        try:
            body = await read_capped(request, max_body_bytes)
        except BodyTooLarge as exc:
            return _error(413, "too_large", "body", str(exc), headers)
        try:
            payloads = json_format.Parse(body, Payloads(), ignore_unknown_fields=True)
        except (json_format.ParseError, UnicodeDecodeError) as exc:
            reason = f"not a Payloads JSON object: {exc}"
            return _error(400, "malformed", "body", reason, headers)
        out = Payloads()
        for i, payload in enumerate(payloads.payloads):
            try:
                done = codec.encrypt(payload) if action == "encode" else codec.decrypt(payload)
            except DecryptionError as exc:
                return _error(422, "undecodable", f"payloads[{i}]", str(exc), headers)
            out.payloads.append(done)
        # Who read customer data, and how much: for the audit trail (never the data).
        log.info(
            f"codec {action}",
            payloads=len(out.payloads),
            namespace=request.headers.get("x-namespace"),
            origin=request.headers.get("origin"),
        )
        answer = json_format.MessageToJson(out, indent=None)
        return Response(answer, media_type="application/json", headers=headers)

    @router.post("/decode", summary="Decrypt payloads for the Web UI and CLI")
    async def decode(request: Request) -> Response:
        return await apply(request, "decode")

    @router.post("/encode", summary="Encrypt payloads (input typed in the Web UI or CLI)")
    async def encode(request: Request) -> Response:
        return await apply(request, "encode")

    @router.options("/decode", include_in_schema=False)
    @router.options("/encode", include_in_schema=False)
    async def preflight(request: Request) -> Response:
        headers = cors(request)
        if "Access-Control-Allow-Origin" not in headers:
            origin = request.headers.get("origin") or "(none)"
            reason = f"origin {origin} is not in ONBOARDING_CODEC_CORS_ORIGINS"
            return _error(403, "origin_not_allowed", "Origin", reason, headers)
        headers |= {
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600",
        }
        return Response(status_code=204, headers=headers)

    @router.get("/login", include_in_schema=False)
    async def login_page() -> HTMLResponse:
        return HTMLResponse(_LOGIN_PAGE.format(message="Sign in with an API token."))

    @router.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode(errors="replace"))
        presented = (form.get("token") or [""])[0].strip()
        if not auth.valid_token(presented):
            page = _LOGIN_PAGE.format(message="Not a valid API token.")
            return HTMLResponse(page, status_code=401)
        message = (
            "Signed in for 8 hours: this browser may read account status (/accounts/...) "
            "and decode. In the Temporal UI's codec server settings, turn on "
            "<em>Include cross-origin credentials</em>."
        )
        response = HTMLResponse(_LOGIN_PAGE.format(message=message))
        response.set_cookie(
            SESSION_COOKIE,
            auth.session(presented),
            max_age=SESSION_TTL_S,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        log.info("codec sign-in", origin=request.headers.get("origin"))
        return response

    return router

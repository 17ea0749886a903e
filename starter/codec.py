"""The codec endpoint: lets the Temporal Web UI and CLI show the payloads that
`activities.codec` encrypts to people allowed to see them.

    POST /codec/decode    {"payloads": [{"metadata": {...}, "data": "..."}]} -> same shape
    POST /codec/encode    (Temporal's remote codec protocol, for the Web UI and CLI)

Who may call it is `starter.auth`'s one scheme (the status API's too).
"""

from __future__ import annotations

from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from activities.codec import CodecSettings, DecryptionError, EncryptionCodec
from starter.auth import ApiAuth
from starter.limits import BodyTooLarge, read_capped

log = structlog.get_logger("codec")

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
        auth.sign_in(response, presented, secure=request.url.scheme == "https")
        log.info("codec sign-in", origin=request.headers.get("origin"))
        return response

    return router

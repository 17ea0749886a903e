"""Who may read customer data over HTTP: one scheme for the status API (`GET
/accounts/{id}`) and the codec endpoint (`/codec/*`).

A caller sends `Authorization: Bearer <token>`, one of `ONBOARDING_API_TOKENS`
(comma-separated, so a token can be rotated: add the new one, move the callers, drop the
old one; the older name `ONBOARDING_CODEC_AUTH_TOKENS` is read when it is unset), or a
browser sends the session cookie that a sign-in form (`/codec/login`, `/dashboard/login`)
sets with `ApiAuth.sign_in`. The cookie holds an expiry and an HMAC under the token, never
the token, so removing a token ends its sessions.

The check reads only the request: a refused caller costs Temporal nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "onboarding_session"
SESSION_TTL_S = 8 * 3600
TOKENS_SETTING = "ONBOARDING_API_TOKENS"


@dataclass(frozen=True)
class Refusal:
    """Why a caller may not read: the answer's status, error, field and reason."""

    status: int
    error: str
    field: str
    reason: str


def _session_mac(token: bytes, expires: int) -> str:
    return hmac.new(token, f"session:{expires}".encode(), hashlib.sha256).hexdigest()


class ApiAuth:
    """The tokens that may read customer data, and the check of a request against them."""

    def __init__(self, tokens: Sequence[SecretStr]) -> None:
        self._tokens = [t.get_secret_value().encode() for t in tokens]

    @property
    def configured(self) -> bool:
        """Whether any token is set: without one nobody can read or sign in."""
        return bool(self._tokens)

    def valid_token(self, presented: str) -> bool:
        # Compared with every token in constant time: timing tells nothing about any.
        matches = [hmac.compare_digest(presented.encode(), t) for t in self._tokens]
        return any(matches)

    def sign_in(self, response: Response, token: str, *, secure: bool) -> None:
        """Set the session cookie for a valid `token` on `response`, good for SESSION_TTL_S.
        HttpOnly (no script reads it) and SameSite=Strict: a browser never sends it with a
        request another site starts, so no cross-site form or link acts as the person.
        `secure` (over HTTPS): never sent in the clear."""
        expires = int(time.time()) + SESSION_TTL_S
        response.set_cookie(
            SESSION_COOKIE,
            f"{expires}.{_session_mac(token.encode(), expires)}",
            max_age=SESSION_TTL_S,
            path="/",
            httponly=True,
            samesite="strict",
            secure=secure,
        )

    def _valid_session(self, cookie: str) -> bool:
        expires, _, mac = cookie.partition(".")
        if not expires.isdigit() or int(expires) < time.time():
            return False
        matches = [hmac.compare_digest(mac, _session_mac(t, int(expires))) for t in self._tokens]
        return any(matches)

    def refusal(self, request: Request) -> Refusal | None:
        """None when the request shows a valid token or sign-in; else 401 saying what is
        wrong, or 503 when no token is configured (nobody can read)."""
        if not self.configured:
            reason = f"no tokens configured: set {TOKENS_SETTING} to enable it"
            return Refusal(503, "not_configured", TOKENS_SETTING, reason)
        header = request.headers.get("authorization")
        cookie = request.cookies.get(SESSION_COOKIE)
        if header is not None:
            scheme, _, presented = header.partition(" ")
            if scheme.lower() != "bearer" or not presented.strip():
                reason = "expected `Bearer <token>`"
            elif not self.valid_token(presented.strip()):
                reason = f"not a valid token (one of {TOKENS_SETTING})"
            else:
                return None
        elif cookie is not None:
            if self._valid_session(cookie):
                return None
            reason = "the sign-in has expired or its token was revoked: sign in again"
        else:
            reason = "missing: send `Bearer <token>`, or sign in at /codec/login (browser)"
        return Refusal(401, "unauthorized", "Authorization", reason)


def sign_out(response: Response) -> None:
    """Clear the session cookie `ApiAuth.sign_in` set (same path and attributes)."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")

"""Reading a request, in the order it is trusted: who may read customer data (`reader`),
the raw body under the size cap, its signature (checked over those bytes before anything
parses them), JSON, then the domain model. Each step's refusal is an `ApiError` naming
the field and the reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import ValidationError

from activities.crm_records import PayloadError
from starter import crm, signatures
from starter.ingress.errors import ApiError, validation_errors
from starter.ingress.state import IngressDep, ingress_of
from starter.limits import BodyTooLarge, read_capped


async def reader(request: Request) -> None:
    """Customer data only for a valid token or sign-in (`starter.auth`), checked before
    Temporal or the records store is asked (on the event loop: nothing in it blocks)."""
    refused = ingress_of(request).auth.refusal(request)
    if refused is not None:
        raise ApiError(refused.status, refused.error, refused.field, refused.reason)


async def raw_body(request: Request, ingress: IngressDep) -> bytes:
    """The body's bytes; 413 above `ONBOARDING_MAX_BODY_BYTES`."""
    try:
        return await read_capped(request, ingress.settings.max_body_bytes)
    except BodyTooLarge as exc:
        raise ApiError(413, "too_large", "body", str(exc)) from None


RawBody = Annotated[bytes, Depends(raw_body)]


def parse_json(body: bytes) -> Any:
    """The JSON value of `body`; 400 `malformed` for anything not usable JSON text."""
    try:
        value = json.loads(body)
        # A lone surrogate (`"\ud800"`) is valid JSON but not Unicode: nothing
        # downstream (Temporal's payloads, our answers) can carry it. Encoding the value
        # finds it. In UTF-8 text it can only come from a `\u` escape or from bytes that
        # begin with 0xED (`json.loads` decodes with "surrogatepass"): a body with
        # neither (most) is spared the encoding, about as long as the parse.
        if json.detect_encoding(body) != "utf-8" or b"\\u" in body or b"\xed" in body:
            json.dumps(value, ensure_ascii=False).encode()
    except UnicodeDecodeError:
        raise ApiError(400, "malformed", "body", "not UTF-8 text") from None
    except UnicodeEncodeError:
        raise ApiError(
            400, "malformed", "body", "a string holds a lone surrogate (not Unicode)"
        ) from None
    except json.JSONDecodeError as exc:
        raise ApiError(
            400, "malformed", "body", f"not JSON: {exc.msg} (line {exc.lineno})"
        ) from None
    except RecursionError:
        raise ApiError(400, "malformed", "body", "JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise ApiError(400, "malformed", "body", f"not usable JSON: {exc}") from None
    return value


def verified(check: Callable[[], object]) -> Any:
    """`check()`'s result; a bad or missing signature is 401 naming its header."""
    try:
        return check()
    except signatures.SignatureError as exc:
        raise ApiError(401, "invalid_signature", exc.header, exc.reason) from None


def as_domain(make: Callable[[], Any]) -> Any:
    """Payload -> domain model; a field problem becomes 422 naming the field."""
    try:
        return make()
    except crm.MalformedError as exc:
        raise ApiError(400, "malformed", exc.field, exc.reason) from None
    except PayloadError as exc:
        errors = [{"field": f, "reason": r} for f, r in exc.problems]
        raise ApiError(422, "invalid_payload", exc.field, exc.reason, errors=errors) from None
    except ValidationError as exc:
        errors = validation_errors(exc)
        first = errors[0]
        raise ApiError(
            422, "invalid_payload", first["field"], first["reason"], errors=errors
        ) from None

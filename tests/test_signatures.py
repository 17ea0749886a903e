"""Webhook signatures: every expected value here is computed with hmac/hashlib in the
test itself, never by the code under test."""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import inspect
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks import webhooks as standard_webhooks

from starter import signatures
from starter.signatures import (
    SignatureError,
    sign_hubspot_v3,
    sign_salesforce,
    sign_segment,
    standard_webhook_headers,
    verify_hubspot_v3,
    verify_outbound_token,
    verify_salesforce,
    verify_segment,
    verify_standard_webhook,
)
from tests.support.strategies import PROPERTY

BODY = b'[{"eventId":100,"subscriptionType":"deal.propertyChange","objectId":1234}]'
URI = "https://onboarding.example.com/webhooks/hubspot"
NOW = 1_700_000_000.0

# A failing property (hypothesis) shows the example that broke it.
pytestmark = pytest.mark.usefixtures("hypothesis_shows_examples")


def b64_hmac(secret: bytes, message: bytes, digest: str = "sha256") -> str:
    return base64.b64encode(hmac.new(secret, message, digest).digest()).decode()


# --------------------------------------------------------------------------- HubSpot v3


def hubspot_signature(secret: str, uri: str, body: bytes, ts: str) -> str:
    return b64_hmac(secret.encode(), b"POST" + uri.encode() + body + ts.encode())


def check_hubspot(
    secrets: list[str],
    signature: str | None,
    timestamp: str | None = str(int(NOW * 1000)),
    *,
    uri: str = URI,
    body: bytes = BODY,
) -> None:
    verify_hubspot_v3(
        secrets,
        method="POST",
        uri=uri,
        body=body,
        signature=signature,
        timestamp=timestamp,
        now=NOW,
    )


TS = str(int(NOW * 1000))


def test_hubspot_valid_signature_passes() -> None:
    check_hubspot(["client-secret"], hubspot_signature("client-secret", URI, BODY, TS))


def test_hubspot_signing_helper_matches_the_independent_computation() -> None:
    expected = hubspot_signature("client-secret", URI, BODY, TS)
    assert sign_hubspot_v3("client-secret", "POST", URI, BODY, int(TS)) == expected


@pytest.mark.parametrize(
    ("secrets", "body", "header", "reason_part"),
    [
        (["client-secret"], BODY + b" ", "X-HubSpot-Signature-v3", "does not match"),
        (["other-secret"], BODY, "X-HubSpot-Signature-v3", "does not match"),
    ],
    ids=["tampered body", "wrong secret"],
)
def test_hubspot_rejects_tampering_and_wrong_secret(
    secrets: list[str], body: bytes, header: str, reason_part: str
) -> None:
    signature = hubspot_signature("client-secret", URI, BODY, TS)
    with pytest.raises(SignatureError) as err:
        check_hubspot(secrets, signature, body=body)
    assert err.value.header == header
    assert reason_part in err.value.reason
    assert "client-secret" not in str(err.value)


def test_hubspot_rejects_a_different_uri() -> None:
    signature = hubspot_signature("client-secret", URI, BODY, TS)
    with pytest.raises(SignatureError):
        check_hubspot(["client-secret"], signature, uri=URI.replace("https", "http"))


def test_hubspot_missing_headers_are_named() -> None:
    with pytest.raises(SignatureError) as err:
        check_hubspot(["s"], None)
    assert err.value.header == "X-HubSpot-Signature-v3"
    with pytest.raises(SignatureError) as err:
        check_hubspot(["s"], hubspot_signature("s", URI, BODY, TS), timestamp=None)
    assert err.value.header == "X-HubSpot-Request-Timestamp"


def test_hubspot_malformed_headers_are_named() -> None:
    with pytest.raises(SignatureError) as err:
        check_hubspot(["s"], "not base64 at all!")
    assert (err.value.header, err.value.reason) == ("X-HubSpot-Signature-v3", "is not base64")
    with pytest.raises(SignatureError) as err:
        check_hubspot(["s"], hubspot_signature("s", URI, BODY, TS), timestamp="yesterday")
    assert err.value.header == "X-HubSpot-Request-Timestamp"


def test_hubspot_rejects_stale_and_far_future_timestamps() -> None:
    stale = str(int((NOW - 301) * 1000))
    with pytest.raises(SignatureError) as err:
        check_hubspot(["s"], hubspot_signature("s", URI, BODY, stale), timestamp=stale)
    assert err.value.header == "X-HubSpot-Request-Timestamp"
    assert "replay" in err.value.reason
    future = str(int((NOW + 301) * 1000))
    with pytest.raises(SignatureError) as err:
        check_hubspot(["s"], hubspot_signature("s", URI, BODY, future), timestamp=future)
    assert "future" in err.value.reason
    recent = str(int((NOW - 299) * 1000))
    check_hubspot(["s"], hubspot_signature("s", URI, BODY, recent), timestamp=recent)


def test_hubspot_rotation_accepts_the_old_secret_second_and_not_a_removed_one() -> None:
    signed_with_old = hubspot_signature("old", URI, BODY, TS)
    check_hubspot(["new", "old"], signed_with_old)
    with pytest.raises(SignatureError):
        check_hubspot(["new"], signed_with_old)


def test_hubspot_without_secrets_names_the_setting() -> None:
    with pytest.raises(SignatureError) as err:
        check_hubspot([], hubspot_signature("s", URI, BODY, TS))
    assert err.value.header == "X-HubSpot-Signature-v3"
    assert "ONBOARDING_HUBSPOT_SECRETS" in err.value.reason


def test_hubspot_decodes_its_listed_escapes_before_signing() -> None:
    # HubSpot signs the URI with %3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B decoded
    # and every other escape (here %20) left as sent.
    received = URI + "?portal=a%3Ab%2Cc%40d&note=x%20y%28z%29"
    signed = URI + "?portal=a:b,c@d&note=x%20y(z)"
    check_hubspot(["s"], hubspot_signature("s", signed, BODY, TS), uri=received)
    lower_case_escapes = URI + "?portal=a%3ab%2cc%40d&note=x%20y%28z%29"
    check_hubspot(["s"], hubspot_signature("s", signed, BODY, TS), uri=lower_case_escapes)
    with pytest.raises(SignatureError):  # %20 is not decoded by HubSpot
        check_hubspot(["s"], hubspot_signature("s", URI + "?note=x y", BODY, TS), uri=received)


# --------------------------------------------------------------------------- Salesforce


SF_BODY = b'{"Opportunity":{"Id":"006A","StageName":"Closed Won"}}'


def test_salesforce_valid_signature_passes_and_helper_agrees() -> None:
    signature = b64_hmac(b"sf-secret", SF_BODY)
    verify_salesforce(["sf-secret"], SF_BODY, signature)
    assert sign_salesforce("sf-secret", SF_BODY) == signature


def test_salesforce_rejects_tampering_wrong_secret_missing_and_malformed() -> None:
    signature = b64_hmac(b"sf-secret", SF_BODY)
    for secrets, body, sig in [
        (["sf-secret"], SF_BODY.replace(b"Won", b"Lost"), signature),
        (["other"], SF_BODY, signature),
        (["sf-secret"], SF_BODY, None),
        (["sf-secret"], SF_BODY, "%%%"),
    ]:
        with pytest.raises(SignatureError) as err:
            verify_salesforce(secrets, body, sig)
        assert err.value.header == "X-Salesforce-Signature"


def test_salesforce_rotation() -> None:
    signature = b64_hmac(b"old", SF_BODY)
    verify_salesforce(["new", "old"], SF_BODY, signature)
    with pytest.raises(SignatureError):
        verify_salesforce(["new"], SF_BODY, signature)
    with pytest.raises(SignatureError) as err:
        verify_salesforce([], SF_BODY, signature)
    assert "ONBOARDING_SALESFORCE_SECRETS" in err.value.reason


def test_outbound_token() -> None:
    verify_outbound_token(["tok-new", "tok-old"], "tok-old")
    for tokens, token in [(["tok-new"], "tok-old"), (["tok-new"], None), ([], "tok-new")]:
        with pytest.raises(SignatureError) as err:
            verify_outbound_token(tokens, token)
        assert err.value.header == "token"
        assert "tok-" not in err.value.reason


# --------------------------------------------------------------------------- Segment


SEGMENT_BODY = b'{"type":"track","event":"Report Created","groupId":"acme"}'


def test_segment_valid_signature_passes_and_helper_agrees() -> None:
    signature = hmac.new(b"seg-secret", SEGMENT_BODY, hashlib.sha1).hexdigest()
    verify_segment(["seg-secret"], SEGMENT_BODY, signature)
    assert sign_segment("seg-secret", SEGMENT_BODY) == signature


def test_segment_rejections() -> None:
    signature = hmac.new(b"seg-secret", SEGMENT_BODY, hashlib.sha1).hexdigest()
    cases = [
        (["seg-secret"], SEGMENT_BODY + b"\n", signature, "does not match"),
        (["other"], SEGMENT_BODY, signature, "does not match"),
        (["seg-secret"], SEGMENT_BODY, None, "missing"),
        (["seg-secret"], SEGMENT_BODY, "zz-not-hex", "hex"),
        (["new"], SEGMENT_BODY, signature, "does not match"),  # the secret was rotated out
    ]
    for secrets, body, sig, reason in cases:
        with pytest.raises(SignatureError) as err:
            verify_segment(secrets, body, sig)
        assert err.value.header == "X-Signature"
        assert reason in err.value.reason
    verify_segment(["new", "seg-secret"], SEGMENT_BODY, signature)


# --------------------------------------------------------------------------- Standard Webhooks

SECRET_KEY = b"standard-webhooks-test-key-32byt"
SECRET = "whsec_" + base64.b64encode(SECRET_KEY).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-key-entirely-32-bytes!!!").decode()
DEAL_BODY = b'{"account_id":"acme","account_name":"Acme"}'


def standard_headers(
    key: bytes, body: bytes, msg_id: str = "msg_1", ts: int | None = None
) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    signed = f"{msg_id}.{ts}.".encode() + body
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": "v1," + b64_hmac(key, signed),
    }


def test_standard_webhook_valid_returns_the_id() -> None:
    headers = standard_headers(SECRET_KEY, DEAL_BODY, "msg_2f9")
    assert verify_standard_webhook([SECRET], DEAL_BODY, headers) == "msg_2f9"
    # Header names are case-insensitive; several signatures may be listed.
    mixed = {k.title(): v for k, v in headers.items()}
    mixed["Webhook-Signature"] = "v1,AAAA " + mixed["Webhook-Signature"]
    assert verify_standard_webhook([SECRET], DEAL_BODY, mixed) == "msg_2f9"


def test_standard_webhook_helper_matches_the_independent_computation() -> None:
    expected = standard_headers(SECRET_KEY, DEAL_BODY, "msg_9", ts=int(time.time()))
    at = datetime.fromtimestamp(int(expected["webhook-timestamp"]), UTC)
    assert standard_webhook_headers(SECRET, DEAL_BODY, "msg_9", at) == expected


def test_standard_webhook_rejects_tampering_and_wrong_secret() -> None:
    headers = standard_headers(SECRET_KEY, DEAL_BODY)
    with pytest.raises(SignatureError) as err:
        verify_standard_webhook([SECRET], DEAL_BODY.replace(b"Acme", b"Evil"), headers)
    assert err.value.header == "webhook-signature"
    with pytest.raises(SignatureError) as err:
        verify_standard_webhook([OTHER_SECRET], DEAL_BODY, headers)
    assert err.value.header == "webhook-signature"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_standard_webhook_missing_header_is_named(missing: str) -> None:
    headers = standard_headers(SECRET_KEY, DEAL_BODY)
    del headers[missing]
    with pytest.raises(SignatureError) as err:
        verify_standard_webhook([SECRET], DEAL_BODY, headers)
    assert err.value.header == missing
    assert err.value.reason.startswith("missing")


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("webhook-signature", "v1"),
        ("webhook-signature", "v1,not*base64"),
        ("webhook-signature", "v1,a,b"),
        ("webhook-timestamp", "soon"),
        ("webhook-timestamp", "1e9"),
    ],
)
def test_standard_webhook_malformed_header_is_a_signature_error(header: str, value: str) -> None:
    headers = standard_headers(SECRET_KEY, DEAL_BODY) | {header: value}
    with pytest.raises(SignatureError) as err:
        verify_standard_webhook([SECRET], DEAL_BODY, headers)
    assert err.value.header == header


def test_standard_webhook_body_that_is_not_utf8_is_refused() -> None:
    body = b"\xff\xfe not text"
    headers = standard_headers(SECRET_KEY, body)
    with pytest.raises(SignatureError) as err:
        verify_standard_webhook([SECRET], body, headers)
    assert "UTF-8" in err.value.reason


def test_standard_webhook_rejects_stale_and_future() -> None:
    for offset in (-301, 301):
        ts = int(time.time()) + offset
        headers = standard_headers(SECRET_KEY, DEAL_BODY, ts=ts)
        with pytest.raises(SignatureError) as err:
            verify_standard_webhook([SECRET], DEAL_BODY, headers)
        assert err.value.header == "webhook-timestamp"


def test_standard_webhook_rotation() -> None:
    headers = standard_headers(SECRET_KEY, DEAL_BODY)
    assert verify_standard_webhook([OTHER_SECRET, SECRET], DEAL_BODY, headers) == "msg_1"
    with pytest.raises(SignatureError):
        verify_standard_webhook([OTHER_SECRET], DEAL_BODY, headers)
    with pytest.raises(SignatureError) as err:
        verify_standard_webhook([], DEAL_BODY, headers, setting="ONBOARDING_EVENTS_WEBHOOK_SECRETS")
    assert "ONBOARDING_EVENTS_WEBHOOK_SECRETS" in err.value.reason


# --------------------------------------------------------------------------- properties

body_and_change = st.tuples(
    st.binary(min_size=1, max_size=300),
    st.integers(min_value=0),
    st.integers(min_value=1, max_value=255),
)


def changed(body: bytes, position: int, delta: int) -> bytes:
    """The body with exactly one byte changed."""
    i = position % len(body)
    return body[:i] + bytes([body[i] ^ delta]) + body[i + 1 :]


@settings(PROPERTY, max_examples=150)
@given(case=body_and_change)
def test_segment_refuses_any_one_byte_change(case: tuple[bytes, int, int]) -> None:
    body, position, delta = case
    signature = hmac.new(b"segment-secret", body, hashlib.sha1).hexdigest()
    signatures.verify_segment(["segment-secret"], body, signature)
    with pytest.raises(signatures.SignatureError):
        signatures.verify_segment(["segment-secret"], changed(body, position, delta), signature)


@settings(PROPERTY, max_examples=150)
@given(case=body_and_change)
def test_salesforce_refuses_any_one_byte_change(case: tuple[bytes, int, int]) -> None:
    body, position, delta = case
    mac = hmac.new(b"sf-secret", body, hashlib.sha256).digest()
    signature = base64.b64encode(mac).decode()
    signatures.verify_salesforce(["sf-secret"], body, signature)
    with pytest.raises(signatures.SignatureError):
        signatures.verify_salesforce(["sf-secret"], changed(body, position, delta), signature)


@settings(PROPERTY, max_examples=150)
@given(case=body_and_change)
def test_hubspot_refuses_any_one_byte_change(case: tuple[bytes, int, int]) -> None:
    body, position, delta = case
    uri = "https://ingress.test/webhooks/hubspot"
    stamp = str(int(time.time() * 1000))
    source = b"POST" + uri.encode() + body + stamp.encode()
    signature = base64.b64encode(hmac.new(b"hs", source, hashlib.sha256).digest()).decode()

    def verify(sent: bytes) -> None:
        signatures.verify_hubspot_v3(
            ["hs"], method="POST", uri=uri, body=sent, signature=signature, timestamp=stamp
        )

    verify(body)
    with pytest.raises(signatures.SignatureError):
        verify(changed(body, position, delta))


WHSEC_RAW = b"property-test-webhook-secret-000"
WHSEC = "whsec_" + base64.b64encode(WHSEC_RAW).decode()


@settings(PROPERTY, max_examples=150)
@given(text=st.text(min_size=1, max_size=200), position=st.integers(0), delta=st.integers(1, 255))
def test_standard_webhooks_refuse_any_one_byte_change(text: str, position: int, delta: int) -> None:
    body = text.encode()
    stamp = str(int(time.time()))
    mac = hmac.new(WHSEC_RAW, f"msg_1.{stamp}.".encode() + body, hashlib.sha256).digest()
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }
    assert signatures.verify_standard_webhook([WHSEC], body, headers) == "msg_1"
    with pytest.raises(signatures.SignatureError):
        signatures.verify_standard_webhook([WHSEC], changed(body, position, delta), headers)


SIGNATURE_NAMES = {"given", "signature", "token", "expected", "mac", "digest", "sig"}


def test_signatures_are_compared_in_constant_time_only() -> None:
    """Every check compares with `hmac.compare_digest`, and no `==` / `!=` / `in` ever
    touches a signature, a token or a computed MAC (a timing side channel)."""
    tree = ast.parse(inspect.getsource(signatures))
    checks = {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("verify_")
    }
    for name in (
        "verify_hubspot_v3",
        "verify_salesforce",
        "verify_outbound_token",
        "verify_segment",
    ):
        calls = [
            n for n in ast.walk(checks[name]) if isinstance(n, ast.Call) and _is_compare_digest(n)
        ]
        assert calls, f"{name} does not use hmac.compare_digest"
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        called = {
            n.func.id
            for n in ast.walk(node)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        }
        assert not names & SIGNATURE_NAMES, f"line {node.lineno}: {ast.unparse(node)}"
        assert "_mac" not in called, f"line {node.lineno}: {ast.unparse(node)}"
    # Standard Webhooks are checked by the `standardwebhooks` library: it must too.
    assert "hmac.compare_digest" in inspect.getsource(standard_webhooks.Webhook.verify)


def _is_compare_digest(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "compare_digest"
    )

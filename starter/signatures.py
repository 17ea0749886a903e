"""Webhook signature checks, over the raw body, before anything is parsed.

Every check takes a list of secrets and accepts a match with any of them, so a secret is
rotated without downtime (see `starter.settings`). Comparisons are constant-time
(`hmac.compare_digest`). A failure raises `SignatureError`, which the app answers with
401; its text names the header at fault and never echoes a secret.

The `sign_*` helpers compute the same signatures for senders (the CLI's `send-event`,
the benchmark, tests of the app).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

HUBSPOT_SIGNATURE = "X-HubSpot-Signature-v3"
HUBSPOT_TIMESTAMP = "X-HubSpot-Request-Timestamp"
SALESFORCE_SIGNATURE = "X-Salesforce-Signature"
SEGMENT_SIGNATURE = "X-Signature"
WEBHOOK_ID = "webhook-id"
WEBHOOK_TIMESTAMP = "webhook-timestamp"
WEBHOOK_SIGNATURE = "webhook-signature"


class SignatureError(Exception):
    """The request is not proven to come from the sender: HTTP 401.

    `header` names the header (or field) at fault, `reason` says why; neither ever
    contains a secret.
    """

    def __init__(self, header: str, reason: str) -> None:
        super().__init__(f"{header}: {reason}")
        self.header = header
        self.reason = reason


# --------------------------------------------------------------------------- HubSpot

# HubSpot decodes exactly these percent-escapes in the URI before signing (its
# "Validating requests" guide, v3); every other escape (%20, %26, ...) stays as sent.
_HUBSPOT_DECODED = re.compile(r"%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)", re.IGNORECASE)


def hubspot_uri(uri: str) -> str:
    """The URI as HubSpot signs it: the full URL it called, with HubSpot's table of
    percent-escapes (`%3A` `:`, `%2F` `/`, `%3F` `?`, `%40` `@`, `%21` `!`, `%24` `$`,
    `%27` `'`, `%28` `(`, `%29` `)`, `%2A` `*`, `%2C` `,`, `%3B` `;`) decoded."""
    return _HUBSPOT_DECODED.sub(lambda m: chr(int(m.group(1), 16)), uri)


def sign_hubspot_v3(secret: str, method: str, uri: str, body: bytes, timestamp_ms: int) -> str:
    """base64(HMAC-SHA256(client secret, method + uri + body + timestamp))."""
    source = f"{method.upper()}{hubspot_uri(uri)}".encode() + body + str(timestamp_ms).encode()
    return base64.b64encode(_mac(secret, source, "sha256")).decode()


def verify_hubspot_v3(
    secrets: Sequence[str],
    *,
    method: str,
    uri: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    tolerance_s: int = 300,
    now: float | None = None,
) -> None:
    """Check HubSpot's v3 signature.

    `uri` is the full URL HubSpot called (scheme, host, path and query, still
    percent-encoded): behind a proxy, build it from the public URL, not from the Host
    header. `timestamp` is in milliseconds; a request older than `tolerance_s` (HubSpot
    says 5 minutes) is a replay, and one as far in the future is refused as well.
    """
    if not secrets:
        raise SignatureError(
            HUBSPOT_SIGNATURE, "no HubSpot secret is configured (ONBOARDING_HUBSPOT_SECRETS)"
        )
    if not signature:
        raise SignatureError(HUBSPOT_SIGNATURE, "missing: HubSpot signs every webhook request (v3)")
    if not timestamp:
        raise SignatureError(HUBSPOT_TIMESTAMP, "missing: needed to check the signature is fresh")
    if not timestamp.isascii() or not timestamp.isdigit():
        raise SignatureError(HUBSPOT_TIMESTAMP, "must be milliseconds since the epoch")
    _check_age(HUBSPOT_TIMESTAMP, int(timestamp) / 1000, tolerance_s, now)
    given = _b64(HUBSPOT_SIGNATURE, signature)
    source = f"{method.upper()}{hubspot_uri(uri)}".encode() + body + timestamp.encode()
    if not any(hmac.compare_digest(given, _mac(secret, source, "sha256")) for secret in secrets):
        raise SignatureError(
            HUBSPOT_SIGNATURE,
            "does not match the request: check the client secret and that the URL HubSpot "
            "calls is exactly ONBOARDING_PUBLIC_URL plus the path",
        )


# --------------------------------------------------------------------------- Salesforce


def sign_salesforce(secret: str, body: bytes) -> str:
    """base64(HMAC-SHA256(secret, raw body))."""
    return base64.b64encode(_mac(secret, body, "sha256")).decode()


def verify_salesforce(secrets: Sequence[str], body: bytes, signature: str | None) -> None:
    """Check `X-Salesforce-Signature` on a JSON callout from Apex or a Flow.

    Salesforce has no built-in signature for callouts, so the sender computes it over the
    exact body it posts, with this one line of Apex:

        EncodingUtil.base64Encode(Crypto.generateMac('hmacSHA256', Blob.valueOf(body), Blob.valueOf(secret)))
    """  # noqa: E501 - the Apex line is meant to be copied whole
    if not secrets:
        raise SignatureError(
            SALESFORCE_SIGNATURE,
            "no Salesforce secret is configured (ONBOARDING_SALESFORCE_SECRETS)",
        )
    if not signature:
        raise SignatureError(
            SALESFORCE_SIGNATURE, "missing: sign the body with HMAC-SHA256 (see the docs)"
        )
    given = _b64(SALESFORCE_SIGNATURE, signature)
    if not any(hmac.compare_digest(given, _mac(s, body, "sha256")) for s in secrets):
        raise SignatureError(SALESFORCE_SIGNATURE, "does not match the body")


def verify_outbound_token(tokens: Sequence[str], token: str | None) -> None:
    """Check the `?token=` of a Salesforce Outbound Message (SOAP).

    Outbound Messages carry no signature we can check without Salesforce's client
    certificate, so the endpoint URL configured in Salesforce holds a secret token
    instead; it is compared in constant time with each configured one. Use HTTPS.
    """
    if not tokens:
        raise SignatureError(
            "token",
            "no Outbound Message token is configured (ONBOARDING_SALESFORCE_OUTBOUND_TOKENS)",
        )
    if not token:
        raise SignatureError("token", "missing: the endpoint URL must end with ?token=<secret>")
    given = token.encode()
    if not any(hmac.compare_digest(given, t.encode()) for t in tokens):
        raise SignatureError("token", "is not one of the configured tokens")


# --------------------------------------------------------------------------- Segment


def sign_segment(secret: str, body: bytes) -> str:
    """hex(HMAC-SHA1(shared secret, raw body)), as Segment's webhook destination sends."""
    return _mac(secret, body, "sha1").hex()


def verify_segment(secrets: Sequence[str], body: bytes, signature: str | None) -> None:
    """Check `X-Signature` from Segment's webhook destination."""
    if not secrets:
        raise SignatureError(
            SEGMENT_SIGNATURE, "no Segment secret is configured (ONBOARDING_SEGMENT_SECRETS)"
        )
    if not signature:
        raise SignatureError(
            SEGMENT_SIGNATURE, "missing: set a shared secret on the Segment destination"
        )
    try:
        given = bytes.fromhex(signature)
    except ValueError:
        raise SignatureError(SEGMENT_SIGNATURE, "must be a hex HMAC-SHA1") from None
    if not any(hmac.compare_digest(given, _mac(s, body, "sha1")) for s in secrets):
        raise SignatureError(SEGMENT_SIGNATURE, "does not match the body")


# --------------------------------------------------------------------------- Standard Webhooks


def standard_webhook_headers(
    secret: str, body: bytes, msg_id: str, at: datetime | None = None
) -> dict[str, str]:
    """The `webhook-id`, `webhook-timestamp` and `webhook-signature` headers for a body."""
    # The library reads any datetime as UTC, whatever its zone: hand it UTC (naive = UTC).
    if at is None:
        at = datetime.now(UTC)
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    signature = Webhook(secret).sign(msg_id, at, body.decode())
    return {
        WEBHOOK_ID: msg_id,
        WEBHOOK_TIMESTAMP: str(int(at.timestamp())),
        WEBHOOK_SIGNATURE: signature,
    }


def verify_standard_webhook(
    secrets: Sequence[str],
    body: bytes,
    headers: Mapping[str, str],
    tolerance_s: int = 300,
    *,
    setting: str = "ONBOARDING_WEBHOOK_SECRETS",
) -> str:
    """Check a Standard Webhooks signature and return the `webhook-id`, the delivery's
    idempotency key.

    The `standardwebhooks` library refuses timestamps more than 5 minutes off, so
    `tolerance_s` can only narrow that. A body that is not UTF-8 cannot have been signed
    under the spec (it signs text), so it is a SignatureError too. `setting` names the
    environment variable in the "no secret configured" message. A configured secret that
    is not `whsec_` + base64 raises ValueError: that is the operator's mistake, not the
    sender's.
    """
    if not secrets:
        raise SignatureError(WEBHOOK_SIGNATURE, f"no webhook secret is configured ({setting})")
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get(WEBHOOK_ID)
    stamp = lowered.get(WEBHOOK_TIMESTAMP)
    signature = lowered.get(WEBHOOK_SIGNATURE)
    for name, value in (
        (WEBHOOK_ID, msg_id),
        (WEBHOOK_TIMESTAMP, stamp),
        (WEBHOOK_SIGNATURE, signature),
    ):
        if not value:
            raise SignatureError(
                name,
                "missing: sign per Standard Webhooks (webhook-id, -timestamp, -signature)",
            )
    assert msg_id and stamp and signature
    if not stamp.isascii() or not stamp.isdigit():
        raise SignatureError(WEBHOOK_TIMESTAMP, "must be whole seconds since the epoch")
    _check_age(WEBHOOK_TIMESTAMP, int(stamp), tolerance_s, None)
    # Checked here because the library raises ValueError or binascii.Error on these.
    entries = signature.split()
    for entry in entries:
        version, _, value = entry.partition(",")
        if not version or not value or "," in value:
            raise SignatureError(WEBHOOK_SIGNATURE, "each signature must look like v1,<base64>")
        if version == "v1":
            _b64(WEBHOOK_SIGNATURE, value)
    lowered[WEBHOOK_SIGNATURE] = " ".join(entries)
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise SignatureError(
            WEBHOOK_SIGNATURE, "the body is not UTF-8, so it cannot carry this signature"
        ) from None
    for secret in secrets:
        try:
            hook = Webhook(secret)
        except (binascii.Error, ValueError, EmptyWebhookSecretError) as exc:
            raise ValueError(
                f"{setting}: a secret is not whsec_ followed by base64 ({exc})"
            ) from None
        try:
            hook.verify(text, lowered, json_parse=False)
        except WebhookVerificationError as exc:
            if "timestamp" in str(exc).lower():
                raise SignatureError(WEBHOOK_TIMESTAMP, f"refused: {exc}") from None
            continue
        return msg_id
    raise SignatureError(WEBHOOK_SIGNATURE, "no v1 signature matches the body")


# --------------------------------------------------------------------------- helpers


def _mac(secret: str, data: bytes, digest: str) -> bytes:
    return hmac.new(secret.encode(), data, digest).digest()


def _b64(header: str, value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(header, "is not base64") from None


def _check_age(header: str, sent_at: float, tolerance_s: int, now: float | None) -> None:
    age = (time.time() if now is None else now) - sent_at
    if age > tolerance_s:
        raise SignatureError(
            header, f"the request is {int(age)} s old; more than {tolerance_s} s is a replay"
        )
    if -age > tolerance_s:
        raise SignatureError(
            header,
            f"the request is dated {int(-age)} s in the future; check the sender's clock",
        )

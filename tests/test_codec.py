"""Encryption of customer data in Temporal: the payload codec, what lands in history, and
the codec endpoint the Web UI and CLI decode through.

Ciphertexts given to the code under test are made here with `AESGCM` directly, and its
ciphertexts are opened here the same way, so the wire format is checked independently.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload, WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import Settings, activities_for
from activities.client import data_converter
from activities.codec import CodecSettings, DecryptionError, EncryptionCodec
from activities.converter import CONVERTER
from starter.app import create_app
from starter.auth import SESSION_COOKIE
from starter.settings import IngressSettings
from tests.support.deals import make_deal
from tests.support.temporal import time_skipping
from workflows.models import OnboardingInput, OnboardingStatus, Playbook
from workflows.onboarding import AccountOnboarding

OLD_KEY = bytes(range(32))
NEW_KEY = bytes(range(100, 132))
TOKEN = "codec-token-for-tests"
OLD_TOKEN = "codec-token-being-rotated-out"
UI = "http://localhost:8233"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def keys_env(*keys: tuple[str, bytes]) -> str:
    return ",".join(f"{key_id}:{b64(key)}" for key_id, key in keys)


def codec(*keys: tuple[str, bytes]) -> EncryptionCodec:
    found = EncryptionCodec.from_settings(CodecSettings(codec_keys=keys_env(*keys)))
    assert found is not None
    return found


def contact_payload() -> Payload:
    """What the pydantic converter makes of a contact, as Temporal would store it."""
    value = {"name": "Cara Champion", "email": "cara@acme.test", "role": "champion"}
    return CONVERTER.payload_converter.to_payloads([value])[0]


def seal(payload: Payload, key_id: str, key: bytes) -> Payload:
    """Encrypt as the codec's format says, independently of the codec."""
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, payload.SerializeToString(), key_id.encode())
    return Payload(
        metadata={"encoding": b"binary/encrypted", "encryption-key-id": key_id.encode()},
        data=nonce + sealed,
    )


# --------------------------------------------------------------------------- the codec


async def test_payloads_round_trip_and_are_aes_gcm_with_the_key_id() -> None:
    original = contact_payload()
    [encrypted] = await codec(("k1", OLD_KEY)).encode([original])

    assert encrypted.metadata["encoding"] == b"binary/encrypted"
    assert encrypted.metadata["encryption-key-id"] == b"k1"
    assert b"cara@acme.test" not in encrypted.SerializeToString()
    # Opened here with AESGCM alone: nonce (12 bytes) + ciphertext, key id as associated data.
    opened = AESGCM(OLD_KEY).decrypt(encrypted.data[:12], encrypted.data[12:], b"k1")
    assert Payload.FromString(opened) == original
    assert await codec(("k1", OLD_KEY)).decode([encrypted]) == [original]


async def test_each_encryption_uses_a_fresh_nonce() -> None:
    original = contact_payload()
    first, second = await codec(("k1", OLD_KEY)).encode([original, original])
    assert first.data[:12] != second.data[:12]
    assert first.data != second.data


async def test_after_rotation_old_payloads_still_decode_and_new_ones_use_the_new_key() -> None:
    original = contact_payload()
    [old] = await codec(("k1", OLD_KEY)).encode([original])

    rotated = codec(("k2", NEW_KEY), ("k1", OLD_KEY))  # the new key first: it encrypts
    assert await rotated.decode([old]) == [original]
    [new] = await rotated.encode([original])
    assert new.metadata["encryption-key-id"] == b"k2"
    opened = AESGCM(NEW_KEY).decrypt(new.data[:12], new.data[12:], b"k2")
    assert Payload.FromString(opened) == original


async def test_a_payload_under_an_unknown_key_fails_naming_that_key() -> None:
    old = seal(contact_payload(), "k1", OLD_KEY)
    with pytest.raises(DecryptionError, match=r"key 'k1', which is not in ONBOARDING_CODEC_KEYS"):
        await codec(("k2", NEW_KEY)).decode([old])


async def test_tampered_or_relabelled_ciphertext_fails() -> None:
    both = codec(("k1", OLD_KEY), ("k2", NEW_KEY))
    sealed = seal(contact_payload(), "k1", OLD_KEY)
    flipped = Payload()
    flipped.CopyFrom(sealed)
    flipped.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(DecryptionError, match="does not authenticate"):
        await both.decode([flipped])

    # The key id is authenticated: relabelling the payload with another key's id fails.
    relabelled = Payload()
    relabelled.CopyFrom(sealed)
    relabelled.metadata["encryption-key-id"] = b"k2"
    with pytest.raises(DecryptionError, match="'k2' does not authenticate"):
        await both.decode([relabelled])


async def test_payloads_recorded_without_encryption_pass_through_decode() -> None:
    plain = contact_payload()
    assert await codec(("k1", OLD_KEY)).decode([plain]) == [plain]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"k1:{b64(b'too short')}", "key 'k1' is 9 bytes; AES-256 needs 32"),
        ("k1:not base64!!", "key 'k1' is not base64"),
        (b64(OLD_KEY), "entry 1 is not `key_id:base64key`"),
        (f"k1:{b64(OLD_KEY)},k1:{b64(NEW_KEY)}", "key id 'k1' is given twice"),
    ],
)
def test_bad_keys_are_refused_naming_the_entry_without_printing_keys(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    monkeypatch.setenv("ONBOARDING_CODEC_KEYS", value)
    with pytest.raises(ValidationError) as caught:
        CodecSettings()
    assert caught.value.errors()[0]["loc"] == ("codec_keys",)
    assert expected in str(caught.value)
    assert b64(OLD_KEY) not in str(caught.value)
    assert b64(NEW_KEY) not in str(caught.value)


async def test_without_keys_payloads_stay_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONBOARDING_CODEC_KEYS", raising=False)
    converter = data_converter()
    [sent] = await converter.encode([{"name": "Cara Champion", "email": "cara@acme.test"}])
    assert sent.metadata["encoding"] == b"json/plain"
    assert b"cara@acme.test" in sent.data


# --------------------------------------------------------------------------- history


@pytest.fixture
async def encrypted_env(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[WorkflowEnvironment]:
    monkeypatch.setenv("ONBOARDING_CODEC_KEYS", keys_env(("k1", OLD_KEY)))
    environment = await time_skipping(data_converter())
    yield environment
    await environment.shutdown()


async def raw_history(client: Client, workflow_id: str) -> Any:
    """The history as Temporal stores it: straight from the service, nothing decoded."""
    response = await client.workflow_service.get_workflow_execution_history(
        GetWorkflowExecutionHistoryRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
        )
    )
    return response.history


async def test_history_holds_no_contact_data_in_plaintext(
    encrypted_env: WorkflowEnvironment, playbook: Playbook
) -> None:
    client = encrypted_env.client
    deal = make_deal(
        f"acct-{uuid.uuid4().hex[:8]}", close_date=await encrypted_env.get_current_time()
    )
    task_queue = f"codec-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[AccountOnboarding],
        activities=activities_for(Settings(notify_channels=["log"])),
        workflow_failure_exception_types=[Exception],
    ):
        handle = await client.start_workflow(
            AccountOnboarding.run,
            OnboardingInput(deal=deal, playbook=playbook),
            id=deal.workflow_id,
            task_queue=task_queue,
        )
        # Wait for the welcome email to the champion: an activity input naming her.
        for _ in range(200):
            history = await raw_history(client, handle.id)
            kinds = [e.event_type for e in history.events]
            if EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED in kinds:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("no activity completed")
        status = await handle.query(AccountOnboarding.status)

    stored = history.SerializeToString()
    for secret in (b"cara@acme.test", b"Cara Champion", b"sam@acme.test", b"Acme Corp"):
        assert secret not in stored
    assert b"10 invoices processed weekly" not in stored  # the deal's notes
    assert b"binary/encrypted" in stored

    # Through the codec the same history reads back: the start input names the champion.
    started = history.events[0].workflow_execution_started_event_attributes
    [decoded] = await client.data_converter.decode(started.input.payloads, [OnboardingInput])
    assert [c.email for c in decoded.deal.contacts] == ["cara@acme.test", "sam@acme.test"]
    assert isinstance(status, OnboardingStatus)
    assert status.account_name == "Acme Corp"
    assert status.success_criteria == ["10 invoices processed weekly"]


# --------------------------------------------------------------------------- the endpoint


@pytest.fixture
async def ingress(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("ONBOARDING_CODEC_KEYS", keys_env(("k2", NEW_KEY), ("k1", OLD_KEY)))
    monkeypatch.setenv("ONBOARDING_CODEC_AUTH_TOKENS", f"{TOKEN},{OLD_TOKEN}")
    monkeypatch.delenv("ONBOARDING_CODEC_CORS_ORIGINS", raising=False)
    # The codec routes never call Temporal: a client that never connects will do.
    temporal = await Client.connect("127.0.0.1:1", lazy=True)
    app = create_app(IngressSettings(), temporal)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8000") as http:
        yield http


def payloads_json(*payloads: Payload) -> dict[str, Any]:
    """Temporal's payloads JSON (protobuf JSON: bytes are base64), built by hand."""
    return {
        "payloads": [
            {"metadata": {k: b64(v) for k, v in p.metadata.items()}, "data": b64(p.data)}
            for p in payloads
        ]
    }


def ui_headers(token: str | None = TOKEN) -> dict[str, str]:
    headers = {"Origin": UI, "X-Namespace": "default", "Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


async def test_preflight_allows_the_web_ui_origin_only(ingress: httpx.AsyncClient) -> None:
    ask = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }
    allowed = await ingress.options("/codec/decode", headers={"Origin": UI} | ask)
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == UI
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    granted = {
        h.strip().lower() for h in allowed.headers["access-control-allow-headers"].split(",")
    }
    assert {"authorization", "content-type", "x-namespace"} <= granted

    other = await ingress.options("/codec/decode", headers={"Origin": "https://evil.example"} | ask)
    assert "access-control-allow-origin" not in other.headers
    assert other.status_code == 403
    assert other.json()["field"] == "Origin"


async def test_decode_gives_back_the_original_json(ingress: httpx.AsyncClient) -> None:
    original = contact_payload()
    body = payloads_json(seal(original, "k1", OLD_KEY), original)

    response = await ingress.post("/codec/decode", json=body, headers=ui_headers())

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == UI
    decrypted, untouched = response.json()["payloads"]
    assert base64.b64decode(decrypted["metadata"]["encoding"]) == b"json/plain"
    assert json.loads(base64.b64decode(decrypted["data"])) == {
        "name": "Cara Champion",
        "email": "cara@acme.test",
        "role": "champion",
    }
    assert untouched == payloads_json(original)["payloads"][0]


async def test_encode_then_decode_through_the_endpoint(ingress: httpx.AsyncClient) -> None:
    original = contact_payload()
    encoded = await ingress.post(
        "/codec/encode", json=payloads_json(original), headers=ui_headers(OLD_TOKEN)
    )
    assert encoded.status_code == 200
    [sealed] = encoded.json()["payloads"]
    assert base64.b64decode(sealed["metadata"]["encryption-key-id"]) == b"k2"
    raw = base64.b64decode(sealed["data"])
    opened = AESGCM(NEW_KEY).decrypt(raw[:12], raw[12:], b"k2")
    assert Payload.FromString(opened) == original


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "missing"),
        ("Bearer not-the-token", "not a valid token"),
        (f"Basic {TOKEN}", "expected `Bearer <token>`"),
    ],
)
async def test_no_decoding_without_a_valid_token(
    ingress: httpx.AsyncClient, authorization: str | None, reason: str
) -> None:
    headers = ui_headers(None)
    if authorization:
        headers["Authorization"] = authorization
    body = payloads_json(seal(contact_payload(), "k1", OLD_KEY))

    response = await ingress.post("/codec/decode", json=body, headers=headers)

    assert response.status_code == 401
    answer = response.json()
    assert answer["error"] == "unauthorized"
    assert answer["field"] == "Authorization"
    assert reason in answer["reason"]
    assert "cara@acme.test" not in response.text
    assert response.headers["access-control-allow-origin"] == UI  # the UI can show why


async def test_the_web_ui_decodes_after_signing_in(ingress: httpx.AsyncClient) -> None:
    """The dev UI sends no token: a person signs in once, the UI sends the cookie."""
    body = payloads_json(seal(contact_payload(), "k1", OLD_KEY))
    refused = await ingress.post("/codec/login", data={"token": "wrong"})
    assert refused.status_code == 401
    assert "set-cookie" not in refused.headers

    signed_in = await ingress.post("/codec/login", data={"token": TOKEN})
    assert signed_in.status_code == 200
    cookie = signed_in.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert TOKEN not in signed_in.headers["set-cookie"]

    decoded = await ingress.post("/codec/decode", json=body, headers=ui_headers(None))
    assert decoded.status_code == 200
    assert b"cara@acme.test" in base64.b64decode(decoded.json()["payloads"][0]["data"])

    ingress.cookies.set(SESSION_COOKIE, "9999999999.forged", path="/")
    forged = await ingress.post("/codec/decode", json=body, headers=ui_headers(None))
    assert forged.status_code == 401


async def test_a_payload_under_an_unknown_key_is_named(ingress: httpx.AsyncClient) -> None:
    plain = contact_payload()
    body = payloads_json(plain, seal(plain, "k0", bytes(32)))

    response = await ingress.post("/codec/decode", json=body, headers=ui_headers())

    assert response.status_code == 422
    answer = response.json()
    assert answer["field"] == "payloads[1]"
    assert "'k0'" in answer["reason"]


async def test_malformed_body_is_refused(ingress: httpx.AsyncClient) -> None:
    response = await ingress.post("/codec/decode", content=b'{"payloads": 3}', headers=ui_headers())
    assert response.status_code == 400
    assert response.json()["field"] == "body"

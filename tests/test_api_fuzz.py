"""The HTTP API fuzzed: from its OpenAPI schema (schemathesis), and with signed hostile
bodies for the webhook routes, against the real app, a real dev server and its worker.

What a sender may rely on, whatever it sends: never a 5xx (a 5xx makes every sender
retry, forever, something that can never succeed), and a request answered 4xx started
and signalled nothing. Checked request by request with the app's own counters, and at
the end against the dev server: every workflow started during the run is one a 2xx
answer named.

The webhook routes read their raw body (the signature covers its bytes), so the schema
documents no request body for them and schemathesis generates none: their bodies are
generated here (JSON values, near-valid deals and Segment calls, random bytes) and signed
by hand, so the fuzzer reaches the parsers behind the signature checks. The size and
batch caps are checked at their edges. The signed bodies of any shape are fuzzed in
`test_api_fuzz_signed.py`; every crash found so far is kept in `test_api_fuzz_hostile.py`.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
import requests
import schemathesis
from hypothesis import example, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from temporalio.testing import WorkflowEnvironment

from activities import Settings
from tests.support.fuzz import (
    BASE_URL,
    FUZZ,
    FuzzedApp,
    fuzz_settings,
    fuzzing,
    signed,
    track_call,
    valid_deal,
)
from tests.support.ingress import (
    OUTBOUND_TOKEN,
    dumps,
    segment_signature,
    standard_signature,
)

# A failing example shows itself; every feature is configured.
pytestmark = pytest.mark.usefixtures("hypothesis_shows_examples", "fuzz_configured")


# --------------------------------------------------------------------------- from the schema


def _prepared(case: schemathesis.Case) -> tuple[str, str, dict[str, str], bytes]:
    """The exact request schemathesis would send: method, URL, headers, body bytes."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    kwargs.pop("auth", None)
    request = requests.Request(**kwargs).prepare()
    body = request.body or b""
    assert isinstance(body, str | bytes), f"a streamed body: {body!r}"
    data = body.encode() if isinstance(body, str) else body
    headers = {k: v if isinstance(v, str) else v.decode() for k, v in request.headers.items()}
    return request.method or "GET", request.url or BASE_URL, headers, data


async def test_no_request_the_schema_allows_or_forbids_gets_a_5xx(fuzzed: FuzzedApp) -> None:
    """Every operation, with valid and invalid parameters, signed (where the route takes
    a signature) and not: no 5xx, answers as documented, no side effect when refused."""
    schema = await asyncio.to_thread(schemathesis.openapi.from_asgi, "/openapi.json", fuzzed.app)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert {"POST /webhooks/deals", "POST /events", "GET /accounts/{account_id}"} <= {
        op.label for op in operations
    }
    # One real onboarding, so the status route answers 200 and its schema is checked too.
    known = f"fz-{uuid.uuid4().hex[:12]}"
    body = dumps(valid_deal(known))
    sent, response = await fuzzed.exchange(
        "POST", "/webhooks/deals", standard_signature(body), body
    )
    assert response.status_code == 201, f"{sent}"

    def fuzz(operation: schemathesis.APIOperation) -> None:
        cases = st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )
        if "{account_id}" in operation.path:
            cases |= operation.as_strategy(path_parameters={"account_id": known})

        @settings(FUZZ, max_examples=40)
        @given(case=cases, sign=st.booleans())
        def check(case: schemathesis.Case, sign: bool) -> None:
            method, url, headers, body = _prepared(case)
            if sign:
                headers |= signed(operation.path, body, url)
            _, response = fuzzed.run(fuzzed.exchange(method, url, headers, body))
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )

        check()

    for operation in operations:
        await asyncio.to_thread(fuzz, operation)
    assert fuzzed.exchanges > 2 * len(operations)


# --------------------------------------------------------------------------- caps

CAP = 512
BODY_ROUTES = [
    "/webhooks/deals",
    "/events",
    "/webhooks/hubspot",
    "/webhooks/salesforce",
    f"/webhooks/salesforce/outbound?token={OUTBOUND_TOKEN}",
    "/codec/encode",
    "/codec/decode",
]


async def test_no_route_takes_a_body_over_the_size_cap(
    dev_env: WorkflowEnvironment, dev_worker: Settings
) -> None:
    """Over `max_body_bytes`, signed or not, announced or streamed: 413, nothing read."""
    async with fuzzing(dev_env, fuzz_settings(max_body_bytes=CAP)) as fuzz:

        @settings(FUZZ, max_examples=60)
        @given(
            route=st.sampled_from(BODY_ROUTES),
            size=st.integers(CAP - 1, CAP + 1) | st.integers(0, 4 * CAP),
            chunked=st.booleans(),
        )
        def check(route: str, size: int, chunked: bool) -> None:
            body = b"{" * size
            headers = signed(route, body, f"{BASE_URL}{route}")
            exchange = fuzz.exchange("POST", route, headers, body, chunked=chunked)
            sent, response = fuzz.run(exchange)
            if size > CAP:
                assert response.status_code == 413, f"{sent}"
                assert response.json()["field"] == "body", f"{sent}"
            else:
                assert response.status_code != 413, f"{sent}"

        await asyncio.to_thread(check)


async def test_an_events_batch_over_the_cap_is_refused_whole(fuzzed: FuzzedApp) -> None:
    """Up to 1000 calls a request are answered one by one; more are refused, untouched."""
    account = f"fz-{uuid.uuid4().hex[:12]}"

    @settings(FUZZ, max_examples=8)
    @given(calls=st.sampled_from([999, 1000, 1001]) | st.integers(990, 1100))
    @example(calls=1001)
    def check(calls: int) -> None:
        body = dumps({"batch": [track_call(account, event="page_viewed")] * calls})
        sent, response = fuzzed.run(
            fuzzed.exchange("POST", "/events", segment_signature(body), body)
        )
        if calls > 1000:
            assert response.status_code == 422, f"{sent}"
            assert response.json()["field"] == "batch", f"{sent}"
        else:
            assert len(response.json()["events"]) == calls, f"{sent}"

    await asyncio.to_thread(check)

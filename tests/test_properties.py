"""Properties under hostile input: the tier rule, the playbook loader, the event mapper,
the Segment parser and planner, and the webhook signature checks (hypothesis).

Each property is what a user relies on: any deal gets a tier and the clause that
decided it; any playbook file loads or is refused naming the key at fault; any event
body gets one answer per call; any change to a signed body is caught.
"""

from __future__ import annotations

import ast
import base64
import copy
import hashlib
import hmac
import inspect
import json
import math
import operator
import re
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hypothesis.core
import pytest
from hypothesis import HealthCheck, example, given, reject, settings
from hypothesis import strategies as st
from hypothesis.vendor import pretty
from pydantic import ValidationError
from standardwebhooks import webhooks as standard_webhooks

from activities.crm_records import PayloadError
from starter import signatures
from starter.events import EventCall, EventProblem, parse_calls, plan_signals
from tests.support.strategies import json_scalars, json_values
from workflows.event_mapping import condition_holds, matches
from workflows.models import (
    ClosedWonDeal,
    EventMatch,
    Playbook,
    PropertyCondition,
    Tier,
    TierDecision,
    TierRule,
)
from workflows.playbook import DEFAULT_PLAYBOOK, PlaybookError, load_playbook, parse_playbook
from workflows.rules import assign_tier

# No example database: a failure prints its example, and nothing is written to the repo.
PROPERTY = settings(database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def _failures_show_their_example(monkeypatch: pytest.MonkeyPatch) -> None:
    # Importing schemathesis (its pytest plugin loads with the session) swaps Hypothesis'
    # printer for one that prints nothing, for speed: put it back, so that a failure
    # here shows the example that broke the property.
    monkeypatch.setattr(hypothesis.core, "RepresentationPrinter", pretty.RepresentationPrinter)


DEFAULT_TEXT = DEFAULT_PLAYBOOK.read_text()
PLAYBOOK = load_playbook()
RULE = PLAYBOOK.tier_rule

# --------------------------------------------------------------------------- §1 tier rule


@st.composite
def tier_rules(draw: st.DrawFn) -> TierRule:
    floor = draw(st.floats(min_value=1, max_value=1e6))
    return TierRule(
        smb_floor_acv_usd=floor,
        enterprise_acv_usd=floor + draw(st.floats(min_value=1, max_value=1e6)),
        high_touch_min_stakeholders=draw(st.integers(min_value=1, max_value=10)),
        high_touch_config_hours_over=draw(st.floats(min_value=0, max_value=20)),
        tech_touch_setup_hours_under=draw(st.floats(min_value=0.5, max_value=20)),
    )


rules = st.just(RULE) | tier_rules()
# Any ACV the model accepts (finite: the model refuses infinity and NaN).
acvs = st.floats(min_value=0, max_value=1e7) | st.sampled_from([0.0, 4_999.99, 5_000.0, 50_000.0])
hours = st.sampled_from([0.0, 1.5, 2.0, 2.5]) | st.floats(min_value=0, max_value=100)


def deal_of(**facts: Any) -> ClosedWonDeal:
    """A valid deal with these facts, or the example is discarded (the model refused it)."""
    fields = {"account_id": "acme", "account_name": "Acme", "close_date": "2031-01-01"}
    try:
        return ClosedWonDeal.model_validate(fields | facts)
    except ValidationError:
        reject()


@st.composite
def deals(draw: st.DrawFn) -> ClosedWonDeal:
    return deal_of(
        acv_usd=draw(acvs),
        stakeholder_count=draw(st.integers(min_value=0, max_value=20)),
        configuration_hours=draw(hours),
        needs_api_integration=draw(st.booleans()),
        custom_data_migration=draw(st.booleans()),
        integrations=draw(st.lists(st.sampled_from(["slack", "gmail", "sso"]), max_size=2)),
    )


def expected_tier(deal: ClosedWonDeal, rule: TierRule) -> tuple[Tier, set[str]]:
    """The table of rules §1 (docs/rules.md), read independently: the tier and every
    clause that may name it."""
    high = {
        "high_touch.acv": deal.acv_usd >= rule.enterprise_acv_usd,
        "high_touch.api_integration": deal.needs_api_integration,
        "high_touch.data_migration": deal.custom_data_migration,
        "high_touch.stakeholders": deal.stakeholder_count >= rule.high_touch_min_stakeholders,
        "high_touch.configuration_hours": (
            deal.configuration_hours > rule.high_touch_config_hours_over
        ),
    }
    if any(high.values()):
        return Tier.HIGH_TOUCH, {clause for clause, fired in high.items() if fired}
    in_smb_band = deal.acv_usd < rule.smb_floor_acv_usd
    if not in_smb_band and deal.configuration_hours < rule.tech_touch_setup_hours_under:
        return Tier.TECH_TOUCH, {"tech_touch.all"}
    if in_smb_band and deal.configuration_hours == 0 and not deal.integrations:
        return Tier.SELF_SERVE, {"self_serve.all"}
    band = Tier.SELF_SERVE if in_smb_band else Tier.TECH_TOUCH
    return band.next_up(), {"next_tier_up"}


@pytest.mark.parametrize("acv", [math.inf, -math.inf, math.nan, "1e400", "Infinity"])
def test_a_deal_without_a_finite_acv_is_refused_by_name(acv: object) -> None:
    # JSON `1e400` or `Infinity` once crashed the tier rule (`int(inf)`) after a 201.
    with pytest.raises(ValidationError) as refused:
        ClosedWonDeal.model_validate(
            {"account_id": "a", "account_name": "A", "close_date": "2031-01-01", "acv_usd": acv}
        )
    assert refused.value.errors()[0]["loc"] == ("acv_usd",)


@settings(PROPERTY, max_examples=200)
@given(deal=deals(), rule=rules)
def test_every_deal_gets_a_tier_and_the_clause_that_decided_it(
    deal: ClosedWonDeal, rule: TierRule
) -> None:
    decision = assign_tier(deal, rule)
    assert isinstance(decision, TierDecision)
    tier, clauses = expected_tier(deal, rule)
    assert decision.tier is tier
    assert decision.clause in clauses
    assert decision.reason


@settings(PROPERTY, max_examples=150)
@given(deal=deals(), rule=rules, more_acv=st.floats(min_value=0, max_value=1e7))
def test_a_bigger_contract_never_gets_less_touch(
    deal: ClosedWonDeal, rule: TierRule, more_acv: float
) -> None:
    bigger = deal.model_copy(update={"acv_usd": deal.acv_usd + more_acv})
    assert assign_tier(bigger, rule).tier.rank >= assign_tier(deal, rule).tier.rank


@settings(PROPERTY, max_examples=150)
@given(
    deal=deals(),
    rule=rules,
    stakeholders=st.integers(min_value=0, max_value=10),
    more_hours=st.floats(min_value=0, max_value=10),
    api=st.booleans(),
    migration=st.booleans(),
    integration=st.booleans(),
)
def test_more_complexity_never_gets_less_touch(
    deal: ClosedWonDeal,
    rule: TierRule,
    stakeholders: int,
    more_hours: float,
    api: bool,
    migration: bool,
    integration: bool,
) -> None:
    """rules §1 (docs/rules.md): value-path complexity (people, setup, integrations) beats ARR."""
    harder = deal.model_copy(
        update={
            "stakeholder_count": deal.stakeholder_count + stakeholders,
            "configuration_hours": deal.configuration_hours + more_hours,
            "needs_api_integration": deal.needs_api_integration or api,
            "custom_data_migration": deal.custom_data_migration or migration,
            "integrations": [*deal.integrations, *(["hris"] if integration else [])],
        }
    )
    assert assign_tier(harder, rule).tier.rank >= assign_tier(deal, rule).tier.rank


@settings(PROPERTY, max_examples=200)
@given(deal=deals(), rule=rules)
def test_self_serve_only_below_the_smb_floor_and_high_touch_from_the_enterprise_line(
    deal: ClosedWonDeal, rule: TierRule
) -> None:
    tier = assign_tier(deal, rule).tier
    if tier is Tier.SELF_SERVE:
        assert deal.acv_usd < rule.smb_floor_acv_usd
        assert deal.configuration_hours == 0 and not deal.integrations
        assert not (deal.needs_api_integration or deal.custom_data_migration)
    if deal.acv_usd >= rule.enterprise_acv_usd:
        assert tier is Tier.HIGH_TOUCH


# --------------------------------------------------------------------------- playbook loader

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # inf, nan and 1e+20 are TOML too
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def to_toml(document: dict[str, Any]) -> str:
    """A document as TOML (inline tables), for mutations of the default playbook."""
    return "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in document.items())


DEFAULT_DOC = tomllib.loads(DEFAULT_TEXT)
assert tomllib.loads(to_toml(DEFAULT_DOC)) == DEFAULT_DOC


def key_paths(node: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every key and list element of a document, parents before children."""
    children: list[tuple[str | int, object]] = []
    if isinstance(node, dict):
        children = list(node.items())
    elif isinstance(node, list):
        children = list(enumerate(node))
    out = []
    for key, child in children:
        out += [(*path, key), *key_paths(child, (*path, key))]
    return out


DEFAULT_PATHS = key_paths(DEFAULT_DOC)
wrong_types = st.sampled_from(["x", "", 7, 1.5, True, [], {}, [1, "a"], {"x": 1}])


def mutated(document: dict[str, Any], path: tuple[str | int, ...], how: str, new: object) -> str:
    doc = copy.deepcopy(document)
    *parents, last = path
    node: Any = doc
    for part in parents:
        node = node[part]
    if how == "drop":
        del node[last]
    elif how == "negate" and type(node[last]) in (int, float):
        node[last] = -node[last] if node[last] else -1
    else:
        node[last] = new
    return to_toml(doc)


PLAYBOOK_KEYS = set(Playbook.model_fields)


def assert_refused_naming_keys(error: PlaybookError, text: str) -> None:
    """Every problem starts with the key at fault (`tier_rule.smb_floor_acv_usd: ...`):
    a playbook key, or a key of the file the playbook does not know. A whole-playbook
    check says "(top level)" and then names the key."""
    try:
        keys = PLAYBOOK_KEYS | set(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, RecursionError):
        keys = PLAYBOOK_KEYS
    assert error.problems, str(error)
    for problem in error.problems:
        if problem.startswith("not valid TOML: "):
            continue
        key, _, reason = problem.removeprefix("(top level): ").partition(": ")
        assert reason, problem
        assert any(key == k or key.startswith((f"{k}.", f"{k}[")) for k in keys), problem


@settings(PROPERTY, max_examples=100)
@given(
    path=st.sampled_from(DEFAULT_PATHS),
    how=st.sampled_from(["drop", "negate", "retype"]),
    new=wrong_types,
)
def test_a_damaged_playbook_loads_or_is_refused_naming_the_key(
    path: tuple[str | int, ...], how: str, new: object
) -> None:
    text = mutated(DEFAULT_DOC, path, how, new)
    try:
        parse_playbook(text)
    except PlaybookError as error:
        assert_refused_naming_keys(error, text)


@settings(PROPERTY, max_examples=200)
@given(text=st.text(max_size=200) | st.sampled_from(DEFAULT_TEXT.splitlines(keepends=True)))
@example(text="a = " + "[" * 5_000 + "]" * 5_000)  # deep nesting: RecursionError in tomllib
@example(text="a = " + "{b = " * 3_000 + "1" + "}" * 3_000)
def test_any_text_loads_or_is_refused_as_a_playbook_error(text: str) -> None:
    try:
        parse_playbook(text)
    except PlaybookError as error:
        assert_refused_naming_keys(error, text)


@settings(PROPERTY, max_examples=100)
@given(data=st.binary(max_size=200) | st.just(DEFAULT_TEXT.encode("utf-16")))
@example(data=b"\xff\xfeversion = 1")  # not UTF-8: UnicodeDecodeError escapes load_playbook
def test_any_file_loads_or_is_refused_as_a_playbook_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "playbook.toml"
        path.write_bytes(data)
        try:
            load_playbook(path)
        except PlaybookError as error:
            assert str(path) in str(error)


# --------------------------------------------------------------------------- event mapper

# A playbook's conditions are finite (the model refuses infinity and NaN).
finite = st.floats(allow_nan=False, allow_infinity=False)
bounds = finite | st.none()
scalars_or_none = st.none() | st.text(max_size=6) | st.integers() | finite | st.booleans()


@st.composite
def conditions(draw: st.DrawFn) -> PropertyCondition:
    fields = {
        "eq": draw(scalars_or_none),
        "ne": draw(scalars_or_none),
        "gt": draw(bounds),
        "gte": draw(bounds),
        "lt": draw(bounds),
        "lte": draw(bounds),
    }
    given_fields = {k: v for k, v in fields.items() if v is not None}
    if not given_fields:
        reject()
    return PropertyCondition.model_validate(given_fields)


@settings(PROPERTY, max_examples=300)
@given(condition=conditions(), value=json_values)
@example(condition=PropertyCondition(gte=3), value=10**400)  # beyond float range
@example(condition=PropertyCondition(eq=3), value=10**400)
def test_a_condition_answers_yes_or_no_for_any_property_value(
    condition: PropertyCondition, value: object
) -> None:
    assert condition_holds(condition, value) in (True, False)


paths = st.sampled_from(["role", "plan.tier", "seats", "a.b.c", "", "."]) | st.text(max_size=6)


@settings(PROPERTY, max_examples=100)
@given(
    where=st.dictionaries(paths, conditions(), max_size=3),
    name=st.sampled_from(["user_invited", "other"]),
    properties=st.dictionaries(paths, json_values, max_size=4),
)
@example(
    where={"seats": PropertyCondition(gte=3)}, name="user_invited", properties={"seats": 10**400}
)
def test_matching_answers_yes_or_no_for_any_event(
    where: dict[str, PropertyCondition], name: str, properties: dict[str, Any]
) -> None:
    rule = EventMatch(event="user_invited", where=where)
    answer = matches(rule, name, properties)
    assert answer in (True, False)
    if name != "user_invited":
        assert answer is False


COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
finite_numbers = (
    st.integers()
    | st.integers(min_value=2**53, max_value=2**64)
    | st.integers(min_value=2**1024, max_value=10**400)
    | st.floats(allow_nan=False, allow_infinity=False)
)


@settings(PROPERTY, max_examples=300)
@given(
    value=finite_numbers,
    bound=st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False),
    op=st.sampled_from(sorted(COMPARISONS)),
)
@example(value=2**53 + 1, bound=float(2**53), op="gt")  # float() would make them equal
@example(value=2**53 + 1, bound=2**53, op="eq")
@example(value=10**400, bound=3.0, op="gte")
def test_numeric_conditions_agree_with_python_on_finite_numbers(
    value: int | float, bound: int | float, op: str
) -> None:
    if op != "eq":
        bound = float(bound)  # gt / gte / lt / lte take floats
    condition = PropertyCondition.model_validate({op: bound})
    assert condition_holds(condition, value) is COMPARISONS[op](value, bound)


# --------------------------------------------------------------------------- Segment calls

ACCOUNT_PATHS = ["groupId", "context.groupId"]
timestamps = (
    st.builds(
        lambda at, zone: at.isoformat() + zone,
        st.datetimes(),
        st.sampled_from(["", "Z", "+00:00", "+05:00", "-10:00"]),
    )
    | st.text(max_size=10)
    | json_scalars
)


@st.composite
def segment_calls(draw: st.DrawFn) -> dict[str, Any]:
    """A Segment call, near-valid or not: each field present or not, usual or hostile."""
    field_values: dict[str, st.SearchStrategy[Any]] = {
        "type": st.sampled_from(["track", "identify", "group", "page", "screen", "alias"])
        | json_scalars,
        "messageId": st.sampled_from(["m-1", "m-2", "m-3", " "]) | json_scalars,
        "event": st.sampled_from(["user_logged_in", "user_invited", "setup_completed", "x"])
        | json_values,
        "properties": st.dictionaries(st.sampled_from(["role", "seats"]), json_values)
        | json_values,
        "traits": json_values,
        "context": st.fixed_dictionaries(
            {}, optional={"groupId": json_scalars, "traits": json_values}
        )
        | json_values,
        "groupId": st.sampled_from(["acct-1", "acct-2", "bad id!", "", "x" * 70]) | json_scalars,
        "userId": json_scalars,
        "anonymousId": json_scalars,
        "timestamp": timestamps,
        "sentAt": timestamps,
    }
    present = draw(st.sets(st.sampled_from(sorted(field_values))))
    return {field: draw(field_values[field]) for field in sorted(present)}


def envelopes(calls: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A single call, an array of calls, or a Segment batch with shared context."""
    return (
        calls
        | st.lists(calls, max_size=6)
        | st.builds(lambda batch: {"batch": batch}, st.lists(calls, max_size=6))
        | st.builds(
            lambda batch, ctx, sent: {"batch": batch, "context": ctx, "sentAt": sent},
            st.lists(calls, max_size=6),
            json_values,
            timestamps,
        )
    )


def call_count(payload: object) -> int | None:
    """How many calls the body holds; None when it is no envelope of calls (a scalar, a
    `batch` that is not an array, a batch `context` that is not an object)."""
    if isinstance(payload, list):
        return len(payload)
    if not isinstance(payload, dict):
        return None
    if "batch" not in payload:
        return 1
    batch, context = payload["batch"], payload.get("context")
    if not isinstance(batch, list) or (context and not isinstance(context, dict)):
        return None
    return len(batch)


EXTREME_TIME = {
    "type": "track",
    "messageId": "m-1",
    "event": "user_logged_in",
    "groupId": "acct-1",
    "timestamp": "9999-12-31T23:00:00-05:00",  # valid ISO 8601, past datetime.max in UTC
}


@settings(PROPERTY, max_examples=200)
@given(payload=envelopes(segment_calls()) | json_values)
@example(payload=EXTREME_TIME)
@example(payload={"batch": [EXTREME_TIME | {"timestamp": "0001-01-01T00:00:00+05:00"}]})
def test_every_call_of_any_body_gets_one_answer(payload: object) -> None:
    try:
        parsed = parse_calls(payload, ACCOUNT_PATHS)
    except PayloadError as error:
        assert error.field and error.reason
        assert call_count(payload) is None
        return
    assert [p.index for p in parsed] == list(range(call_count(payload) or 0))
    for problem in (p for p in parsed if isinstance(p, EventProblem)):
        assert problem.reason


def with_conditions() -> Playbook:
    """The default playbook with a conditioned event, so the planner tests conditions."""
    raw = PLAYBOOK.model_dump(mode="json")
    for milestone in raw["milestones"]:
        if milestone["id"] == "team_adoption":
            milestone["completed_by"]["where"] = {"role": {"ne": "guest"}, "seats": {"gte": 1}}
    return Playbook.model_validate(raw)


PLANNING_PLAYBOOKS = [PLAYBOOK, with_conditions()]


@settings(PROPERTY, max_examples=100)
@given(
    payload=envelopes(segment_calls()),
    playbook=st.sampled_from(PLANNING_PLAYBOOKS),
)
def test_every_call_is_answered_once_or_signalled_once(payload: object, playbook: Playbook) -> None:
    try:
        parsed = parse_calls(payload, ACCOUNT_PATHS)
    except PayloadError:
        return
    batches, outcomes = plan_signals(parsed, playbook)
    placed = [o.index for o in outcomes] + [i for b in batches.values() for i in b.outcomes]
    assert sorted(placed) == list(range(len(parsed)))  # a partition of the calls
    signalled = [e.event_id for b in batches.values() for e in b.events]
    assert len(signalled) == len(set(signalled))  # a messageId is signalled once
    by_index = {p.index: p for p in parsed}
    for account, batch in batches.items():
        for index in batch.outcomes:
            call = by_index[index]
            assert isinstance(call, EventCall) and call.account_id == account


# --------------------------------------------------------------------------- signatures

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


def test_the_playbook_mutations_start_from_the_default_playbook() -> None:
    """Re-emitted as TOML, the default playbook loads the same (else every refusal of a
    mutation could be the emitter's fault)."""
    loaded = parse_playbook(to_toml(DEFAULT_DOC))
    assert loaded.model_dump(exclude={"content_hash"}) == PLAYBOOK.model_dump(
        exclude={"content_hash"}
    )

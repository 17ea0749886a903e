"""Segment calls in, one planned signal per account out, and an answer for every call."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from activities.crm_records import PayloadError
from starter.events import (
    AccountBatch,
    EventCall,
    EventOutcome,
    EventProblem,
    filter_awaited,
    parse_calls,
    plan_signals,
)
from tests.support.strategies import PROPERTY, envelopes, json_values, segment_calls
from workflows.models import Playbook, ProductEvent
from workflows.playbook import load_playbook

PB = load_playbook()
PATHS = ["groupId", "context.groupId"]

# A failing property (hypothesis) shows the example that broke it.
pytestmark = pytest.mark.usefixtures("hypothesis_shows_examples")


def track(message_id: str, event: str, account: str | None = "acme", **extra: Any) -> dict:
    call: dict[str, Any] = {"type": "track", "messageId": message_id, "event": event, **extra}
    if account is not None:
        call.setdefault("context", {})["groupId"] = account
    return call


def only_call(payload: object, paths: list[str] = PATHS) -> EventCall:
    [call] = parse_calls(payload, paths)
    assert isinstance(call, EventCall), call
    return call


def only_problem(payload: object) -> EventProblem:
    [problem] = parse_calls(payload, PATHS)
    assert isinstance(problem, EventProblem), problem
    return problem


def test_a_single_track_call() -> None:
    call = only_call(
        {
            "type": "track",
            "messageId": "ajs-1",
            "event": "user_logged_in",
            "userId": "u-1",
            "groupId": "acme",
            "properties": {"method": "sso"},
            "timestamp": "2031-11-03T10:15:00.250Z",
        }
    )
    assert call == EventCall(
        type="track",
        message_id="ajs-1",
        name="user_logged_in",
        properties={"method": "sso"},
        account_id="acme",
        user_id="u-1",
        at=datetime(2031, 11, 3, 10, 15, 0, 250000, tzinfo=UTC),
        index=0,
    )


def test_time_falls_back_to_sent_at_and_naive_times_are_utc() -> None:
    call = only_call(track("m", "setup_completed", sentAt="2031-11-03T10:00:00"))
    assert call.at == datetime(2031, 11, 3, 10, tzinfo=UTC)
    offset = only_call(track("m", "setup_completed", timestamp="2031-11-03T12:00:00+02:00"))
    assert offset.at == datetime(2031, 11, 3, 10, tzinfo=UTC)
    assert only_call(track("m", "setup_completed")).at is None


def test_batch_level_context_is_merged_under_each_call() -> None:
    calls = parse_calls(
        {
            "batch": [
                {"type": "track", "messageId": "a", "event": "user_logged_in", "anonymousId": "x"},
                {
                    "type": "track",
                    "messageId": "b",
                    "event": "setup_completed",
                    "context": {"groupId": "globex", "ip": "10.0.0.1"},
                },
            ],
            "context": {"groupId": "acme", "library": {"name": "analytics-node"}},
            "sentAt": "2031-11-03T10:00:00Z",
        },
        PATHS,
    )
    assert [c.account_id for c in calls if isinstance(c, EventCall)] == ["acme", "globex"]
    assert [c.index for c in calls] == [0, 1]
    first = calls[0]
    assert isinstance(first, EventCall)
    assert first.user_id == "x"  # anonymousId when there is no userId
    assert first.at == datetime(2031, 11, 3, 10, tzinfo=UTC)  # the batch's sentAt


def test_identify_uses_traits_and_context_group_id() -> None:
    call = only_call(
        {
            "type": "identify",
            "messageId": "i-1",
            "userId": 42,
            "traits": {"role": "admin"},
            "context": {"groupId": "acme", "traits": {"role": "member", "email": "a@acme.io"}},
        }
    )
    assert (call.name, call.account_id, call.user_id) == ("identify", "acme", "42")
    assert call.properties == {"role": "admin", "email": "a@acme.io"}  # top-level traits win


def test_group_call_carries_the_group_traits() -> None:
    call = only_call(
        {"type": "group", "messageId": "g-1", "groupId": "acme", "traits": {"plan": "pro"}}
    )
    assert (call.name, call.account_id, call.properties) == ("group", "acme", {"plan": "pro"})


def test_page_calls_parse_but_complete_nothing() -> None:
    calls = parse_calls({"type": "page", "messageId": "p-1", "groupId": "acme"}, PATHS)
    batches, outcomes = plan_signals(calls, PB)
    assert batches == {}
    assert outcomes == [
        EventOutcome(
            index=0,
            message_id="p-1",
            account_id="acme",
            outcome="ignored",
            reason="no milestone of playbook 2026.12.3 is completed by 'page'",
        )
    ]


def test_a_custom_account_path_is_tried_in_order() -> None:
    paths = ["context.traits.crm_account_id", "groupId"]
    call = {
        "type": "track",
        "messageId": "m",
        "event": "user_logged_in",
        "groupId": "workspace-9",
        "context": {"traits": {"crm_account_id": "0015g00000XyZ"}},
    }
    assert only_call(call, paths).account_id == "0015g00000XyZ"
    call["context"] = {"traits": {"crm_account_id": ""}}  # empty: the next path decides
    assert only_call(call, paths).account_id == "workspace-9"


def test_calls_that_cannot_be_used_are_answered_one_by_one() -> None:
    calls = parse_calls(
        {
            "batch": [
                track("ok", "user_logged_in"),
                {"type": "track", "event": "user_logged_in", "groupId": "acme"},
                track("no-account", "user_logged_in", account=None),
                track("bad-account", "user_logged_in", account="acme corp"),
                track("bad-time", "user_logged_in", timestamp="yesterday"),
                {"type": "purchase", "messageId": "odd", "groupId": "acme"},
                "not a call",
            ]
        },
        PATHS,
    )
    problems = {c.index: (c.message_id, c.field) for c in calls if isinstance(c, EventProblem)}
    assert problems == {
        1: (None, "batch[1].messageId"),
        2: ("no-account", "batch[2].groupId"),
        3: ("bad-account", "batch[3].context.groupId"),
        4: ("bad-time", "batch[4].timestamp"),
        5: ("odd", "batch[5].type"),
        6: (None, "batch[6]"),
    }
    batches, outcomes = plan_signals(calls, PB)
    assert [e.event_id for e in batches["acme"].events] == ["ok"]
    reasons = {o.index: o.reason for o in outcomes}
    assert all(o.outcome == "rejected" for o in outcomes)
    assert sorted(reasons) == [1, 2, 3, 4, 5, 6]
    assert reasons[1] == (
        "batch[1].messageId: is required: it is the key that makes a retry harmless"
    )
    assert reasons[2] == (
        "batch[2].groupId: no account id: name the account at groupId or context.groupId"
    )
    assert "'acme corp' is not an account id" in str(reasons[3])
    assert reasons[4] == "batch[4].timestamp: 'yesterday' is not an ISO 8601 date-time"
    assert "'purchase' is not one of track, identify, group" in str(reasons[5])


def test_a_single_call_problem_names_the_bare_field() -> None:
    problem = only_problem({"type": "track", "messageId": "m", "groupId": "acme"})
    assert (problem.field, problem.reason) == ("event", "a track call needs the event name")


def test_more_than_1000_calls_fail_the_request() -> None:
    calls = [track(f"m{i}", "user_invited") for i in range(1001)]
    with pytest.raises(PayloadError) as info:
        parse_calls({"batch": calls}, PATHS)
    assert info.value.field == "batch"
    assert info.value.reason.endswith("at most 1000 events per request")
    assert len(parse_calls(calls[:1000], PATHS)) == 1000


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("track", "(body)"),
        (7, "(body)"),
        ({"batch": {"x": 1}}, "batch"),
        ({"batch": [], "context": 3}, "context"),
    ],
)
def test_a_body_that_is_not_calls_fails_the_request(body: object, field: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse_calls(body, PATHS)
    assert info.value.field == field


def test_a_repeated_message_id_is_a_duplicate() -> None:
    calls = parse_calls(
        [track("m1", "user_invited"), track("m2", "user_invited"), track("m1", "user_invited")],
        PATHS,
    )
    batches, outcomes = plan_signals(calls, PB)
    assert [e.event_id for e in batches["acme"].events] == ["m1", "m2"]
    assert outcomes == [
        EventOutcome(
            index=2,
            message_id="m1",
            account_id="acme",
            outcome="duplicate",
            reason="messageId 'm1' already came at index 0",
        )
    ]


def test_two_accounts_make_two_batches_in_arrival_order() -> None:
    calls = parse_calls(
        [
            track("a1", "user_logged_in", account="acme", userId="ann"),
            track("g1", "setup_completed", account="globex"),
            track("a2", "page_viewed", account="acme"),
            track("a3", "user_invited", account="acme", timestamp="2031-11-03T10:00:00Z"),
            track("g2", "user_invited", account="globex"),
        ],
        PATHS,
    )
    batches, outcomes = plan_signals(calls, PB)
    assert list(batches) == ["acme", "globex"]
    acme, globex = batches["acme"], batches["globex"]
    assert acme.events == [
        ProductEvent(event_id="a1", name="user_logged_in", user_id="ann"),
        ProductEvent(event_id="a3", name="user_invited", at=datetime(2031, 11, 3, 10, tzinfo=UTC)),
    ]
    assert acme.outcomes == [0, 3]
    assert [e.event_id for e in globex.events] == ["g1", "g2"]
    assert globex.outcomes == [1, 4]
    assert [(o.index, o.outcome) for o in outcomes] == [(2, "ignored")]
    assert [(o.index, o.outcome, o.account_id) for o in globex.accepted()] == [
        (1, "accepted", "globex"),
        (4, "accepted", "globex"),
    ]


def test_events_the_onboarding_no_longer_awaits_are_ignored() -> None:
    batch = AccountBatch(
        account_id="acme",
        events=[
            ProductEvent(event_id="a1", name="user_logged_in"),
            ProductEvent(event_id="a2", name="user_invited"),
        ],
        outcomes=[0, 3],
    )
    kept, ignored = filter_awaited(batch, ["user_invited", "setup_completed"])
    assert kept is not None
    assert [(e.event_id, i) for e, i in zip(kept.events, kept.outcomes, strict=True)] == [("a2", 3)]
    assert ignored == [
        EventOutcome(
            index=0,
            message_id="a1",
            account_id="acme",
            outcome="ignored",
            reason="no open milestone of this onboarding needs 'user_logged_in'",
        )
    ]
    nothing, all_ignored = filter_awaited(batch, [])
    assert nothing is None
    assert [o.index for o in all_ignored] == [0, 3]


def test_a_device_clock_is_corrected_by_its_offset_like_segment_does() -> None:
    # Dates far from today on purpose: pure parsing, the arrival time is an argument.
    received = datetime(2031, 3, 4, 12, 0, tzinfo=UTC)
    # The phone's clock runs 2 hours fast: it stamped the event and the send with it.
    call = track(
        "m", "user_logged_in", timestamp="2031-03-01T11:00:00Z", sentAt="2031-03-04T14:00:00Z"
    )
    [corrected] = parse_calls(call, PATHS, received=received)
    assert isinstance(corrected, EventCall)
    assert corrected.at == datetime(2031, 3, 1, 9, 0, tzinfo=UTC)
    # Relayed by Segment (receivedAt set): its timestamp is already corrected.
    relayed = call | {"receivedAt": "2031-03-04T12:00:01Z"}
    [as_sent] = parse_calls(relayed, PATHS, received=received)
    assert isinstance(as_sent, EventCall)
    assert as_sent.at == datetime(2031, 3, 1, 11, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- properties


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
        parsed = parse_calls(payload, PATHS)
    except PayloadError as error:
        assert error.field and error.reason
        assert call_count(payload) is None
        return
    assert [p.index for p in parsed] == list(range(call_count(payload) or 0))
    for problem in (p for p in parsed if isinstance(p, EventProblem)):
        assert problem.reason


def with_conditions() -> Playbook:
    """The default playbook with a conditioned event, so the planner tests conditions."""
    raw = PB.model_dump(mode="json")
    for milestone in raw["milestones"]:
        if milestone["id"] == "team_adoption":
            milestone["completed_by"]["where"] = {"role": {"ne": "guest"}, "seats": {"gte": 1}}
    return Playbook.model_validate(raw)


PLANNING_PLAYBOOKS = [PB, with_conditions()]


@settings(PROPERTY, max_examples=100)
@given(
    payload=envelopes(segment_calls()),
    playbook=st.sampled_from(PLANNING_PLAYBOOKS),
)
def test_every_call_is_answered_once_or_signalled_once(payload: object, playbook: Playbook) -> None:
    try:
        parsed = parse_calls(payload, PATHS)
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

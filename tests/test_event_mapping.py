"""Which product events complete which milestones: conditions, matching, awaited events."""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import example, given, reject, settings
from hypothesis import strategies as st

from tests.support.strategies import PROPERTY, json_values
from workflows.event_mapping import (
    EventMapper,
    awaited_events,
    condition_holds,
    event_names,
    matches,
)
from workflows.models import (
    EventMatch,
    MilestoneStatus,
    Playbook,
    ProductEvent,
    PropertyCondition,
    Tier,
)
from workflows.playbook import load_playbook
from workflows.rules import build_plan

PB = load_playbook()

# A failing property (hypothesis) shows the example that broke it.
pytestmark = pytest.mark.usefixtures("hypothesis_shows_examples")

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def with_where(where: dict[str, Any]) -> Playbook:
    """The default playbook, with team_adoption's user_invited conditioned on `where`."""
    raw = PB.model_dump(mode="json")
    for milestone in raw["milestones"]:
        if milestone["id"] == "team_adoption":
            milestone["completed_by"]["where"] = where
    return Playbook.model_validate(raw)


def cond(raw: object) -> PropertyCondition:
    return PropertyCondition.model_validate(raw)


@pytest.mark.parametrize(
    ("condition", "value", "holds"),
    [
        ("admin", "admin", True),  # a bare value means eq
        ("admin", "Admin", False),  # strings compare exactly
        ({"eq": 3}, "3", True),  # numeric strings compare as numbers
        ({"eq": "3"}, 3.0, True),
        ({"eq": 3}, "3 seats", False),
        ({"ne": "member"}, "admin", True),
        ({"ne": "member"}, "member", False),
        ({"ne": 3}, "3.0", False),
        ({"gte": 3}, 3, True),
        ({"gte": 3}, "4", True),
        ({"gte": 3}, 2.5, False),
        ({"gt": 3}, 3, False),
        ({"lt": 10}, 9.99, True),
        ({"lt": 10}, 10, False),
        ({"lte": 10}, 10, True),
        ({"gte": 3, "lt": 10}, 10, False),  # every operator must hold
        ({"gte": 3, "lt": 10}, 5, True),
        ({"gte": 3}, "many", False),  # a bound needs a number
        ({"gte": 0}, "nan", False),
        ({"gte": 0}, True, False),  # a bool is not a number
        ({"eq": 1}, True, False),
        ({"eq": True}, True, True),
        ({"eq": True}, "true", False),
        ({"eq": "admin"}, None, False),  # missing or null meets nothing ...
        ({"ne": "admin"}, None, False),  # ... not even ne
        ({"ne": "admin"}, {"role": "x"}, False),  # nor does an object
    ],
)
def test_condition_holds(condition: object, value: object, holds: bool) -> None:
    assert condition_holds(cond(condition), value) is holds


def test_matches_needs_the_name_and_every_condition_including_nested_paths() -> None:
    rule = EventMatch(
        event="user_invited", where={"role": cond("admin"), "plan.seats": cond({"gte": 5})}
    )
    good = {"role": "admin", "plan": {"seats": "5"}}
    assert matches(rule, "user_invited", good)
    assert not matches(rule, "user_logged_in", good)
    assert not matches(rule, "user_invited", {"role": "admin", "plan": {"seats": 4}})
    assert not matches(rule, "user_invited", {"role": "admin"})  # nested path missing
    assert not matches(rule, "user_invited", {"role": "admin", "plan": "pro"})
    # A key that itself contains the dot is read as it is.
    assert matches(rule, "user_invited", {"role": "admin", "plan.seats": 9})
    assert matches(EventMatch(event="user_invited"), "user_invited", {})


def test_event_names_are_every_completed_by_event_and_the_watched_ones() -> None:
    assert event_names(PB) == {
        "support_ticket_opened",  # the skip net's (rules §6.4)
        "tutorial_abandoned",  # a behavioral ladder step's (rules §4)
        "webinar_attended",  # group programs' attendance (rules §1)
        "office_hours_attended",
        "user_logged_in",
        "Signed In",
        "Signed Up",
        "setup_completed",
        "data_import_validated",
        "core_workflow_completed",
        "user_invited",
        "Invite Sent",
        "Account Added User",
        "integration_connected",  # the roles' activation events (rules §7)
        "report_viewed",
        "dashboard_viewed",
    }


def test_awaited_events_are_those_of_open_milestones_only() -> None:
    plan = build_plan(PB, Tier.TECH_TOUCH, T0)
    assert awaited_events(PB, plan) == [
        "Account Added User",
        "Invite Sent",
        "Signed In",
        "Signed Up",
        "core_workflow_completed",
        "dashboard_viewed",
        "data_import_validated",
        "integration_connected",
        "office_hours_attended",
        "report_viewed",
        "setup_completed",
        "support_ticket_opened",
        "tutorial_abandoned",
        "user_invited",
        "user_logged_in",
        "webinar_attended",
    ]
    for m in plan:
        if m.id == "first_login":
            m.status = MilestoneStatus.DONE
        if m.id == "data_import":
            m.status = MilestoneStatus.SKIPPED
        if m.id == "technical_setup":
            m.status = MilestoneStatus.IN_PROGRESS  # still open: still awaited
    # What the skip net, the behavioral ladder steps and the roles' paths watch stays
    # awaited whatever the plan: here the logins, setups and core workflows; "Signed Up"
    # and data imports are no longer awaited.
    assert awaited_events(PB, plan) == [
        "Account Added User",
        "Invite Sent",
        "Signed In",
        "core_workflow_completed",
        "dashboard_viewed",
        "integration_connected",
        "office_hours_attended",
        "report_viewed",
        "setup_completed",
        "support_ticket_opened",
        "tutorial_abandoned",
        "user_invited",
        "user_logged_in",
        "webinar_attended",
    ]


def test_awaited_events_skip_milestones_the_tier_does_not_plan() -> None:
    plan = build_plan(PB, Tier.SELF_SERVE, T0)  # no data_import for self-serve
    assert "data_import_validated" not in awaited_events(PB, plan)


def test_a_mapped_event_carries_id_time_and_user() -> None:
    event = EventMapper(PB).product_event(
        event_id="m-1",
        name="user_logged_in",
        properties={},
        at=T0,
        user_id="u-7",
    )
    assert event == ProductEvent(event_id="m-1", name="user_logged_in", at=T0, user_id="u-7")


def test_a_watched_event_is_taken_without_a_milestone() -> None:
    event = EventMapper(PB).product_event(
        event_id="t-1", name="support_ticket_opened", properties={}, at=T0, user_id=None
    )
    assert event == ProductEvent(event_id="t-1", name="support_ticket_opened", at=T0)


def test_an_event_no_milestone_uses_is_explained() -> None:
    reason = EventMapper(PB).product_event(
        event_id="m-1", name="page_viewed", properties={}, at=None, user_id=None
    )
    assert reason == "no milestone of playbook 2026.12.3 is completed by 'page_viewed'"


def test_an_event_that_misses_its_condition_is_explained() -> None:
    pb = with_where({"role": "admin"})
    args: dict[str, Any] = {"event_id": "m-1", "name": "user_invited", "at": None, "user_id": None}
    assert isinstance(
        EventMapper(pb).product_event(properties={"role": "admin"}, **args), ProductEvent
    )
    assert EventMapper(pb).product_event(properties={"role": "member"}, **args) == (
        "'user_invited' does not meet milestone team_adoption's condition role eq 'admin' "
        "(role is 'member')"
    )
    assert EventMapper(pb).product_event(properties={}, **args) == (
        "'user_invited' does not meet milestone team_adoption's condition role eq 'admin' "
        "(role is missing)"
    )


def test_a_range_condition_is_named_in_the_reason() -> None:
    pb = with_where({"team.size": {"gte": 3, "lt": 100}})
    reason = EventMapper(pb).product_event(
        event_id="m-1",
        name="user_invited",
        properties={"team": {"size": 2}},
        at=None,
        user_id=None,
    )
    assert reason == (
        "'user_invited' does not meet milestone team_adoption's condition "
        "team.size gte 3 and lt 100 (team.size is 2)"
    )


# --------------------------------------------------------------------------- properties

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

"""Which product events a playbook cares about, and whether one event meets its conditions.

Pure and deterministic (no I/O, no clock): the ingress uses it to turn Segment calls into
`ProductEvent`s, and the workflow uses it to publish which events it still awaits.

Condition semantics (`PropertyCondition`):
- A property that is missing, null, or not a scalar (an object or an array) meets no
  condition, not even `ne`: a condition is a question about a value that is there.
- `eq` / `ne` compare numbers numerically when both sides are numbers or numeric strings
  (`"3"` eq `3`, `"3.0"` eq `3`); otherwise they compare exactly (`"Admin"` ne `"admin"`).
  Booleans are not numbers: `true` equals only `true`, never `1` or `"true"`.
- `gt` / `gte` / `lt` / `lte` need a number or a numeric string; anything else fails.
- Several operators in one condition must all hold (`{ gte = 3, lt = 10 }`).
- A property name may be a dotted path into nested objects (`"plan.tier"`); a key that
  itself contains the dots, if present, wins over the nested path.
"""

from __future__ import annotations

import math
from bisect import insort
from collections.abc import Mapping, Sequence
from datetime import datetime

from workflows.models import (
    IDENTIFY,
    NAME_CHARS,
    EventMatch,
    Milestone,
    MilestoneSpec,
    Playbook,
    ProductEvent,
    PropertyCondition,
    Scalar,
)


def property_value(properties: Mapping[str, object], path: str) -> object:
    """The value at `path` (a key, or a dotted path into nested objects); None if absent."""
    if path in properties:
        return properties[path]
    node: object = properties
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _number(value: object) -> int | float | None:
    """A finite number from a number or numeric string; None for anything else (and bools).

    Integers stay integers: Python compares int with float exactly, so 2**53 + 1 is more
    than 2**53 and a huge integer never overflows."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _same(value: Scalar, expected: Scalar) -> bool:
    if isinstance(value, bool) or isinstance(expected, bool):
        return type(value) is type(expected) and value == expected
    left, right = _number(value), _number(expected)
    if left is not None and right is not None:
        return left == right
    return value == expected


def condition_holds(condition: PropertyCondition, value: object) -> bool:
    if value is None or not isinstance(value, str | int | float | bool):
        return False
    if condition.eq is not None and not _same(value, condition.eq):
        return False
    if condition.ne is not None and _same(value, condition.ne):
        return False
    bounds = (condition.gt, condition.gte, condition.lt, condition.lte)
    if all(bound is None for bound in bounds):
        return True
    number = _number(value)
    if number is None:
        return False
    return not (
        (condition.gt is not None and not number > condition.gt)
        or (condition.gte is not None and not number >= condition.gte)
        or (condition.lt is not None and not number < condition.lt)
        or (condition.lte is not None and not number <= condition.lte)
    )


def matches(rule: EventMatch, name: str, properties: Mapping[str, object]) -> bool:
    """The event has the rule's name and meets every `where` condition (`count` is the
    workflow's business: it counts matching events)."""
    return name in rule.events and all(
        condition_holds(condition, property_value(properties, path))
        for path, condition in rule.where.items()
    )


def event_names(playbook: Playbook) -> frozenset[str]:
    """Every event name some milestone of the playbook is completed by, and those it
    watches besides (`Playbook.event_names_watched`)."""
    return (
        frozenset(
            name for m in playbook.milestones if m.completed_by for name in m.completed_by.events
        )
        | playbook.event_names_watched()
    )


def awaited_events(playbook: Playbook, milestones: Sequence[Milestone]) -> list[str]:
    """Sorted names of the events that complete the plan's open milestones, and those
    the playbook watches whatever the plan: the only events worth signalling to this
    onboarding."""
    names = playbook.event_names_watched()
    for milestone in milestones:
        spec = playbook.milestone(milestone.spec_id)
        if milestone.is_open and spec is not None and spec.completed_by is not None:
            names.update(spec.completed_by.events)
    return sorted(names)


def _shown(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def describe(path: str, condition: PropertyCondition) -> str:
    """`role eq 'admin'`, `seats gte 3 and lt 10`."""
    tests = [
        f"{op} {_shown(bound)}"
        for op in ("eq", "ne", "gt", "gte", "lt", "lte")
        if (bound := getattr(condition, op)) is not None
    ]
    return f"{path} " + " and ".join(tests)


def _unmet(spec: MilestoneSpec, name: str, properties: Mapping[str, object]) -> str:
    assert spec.completed_by is not None
    for path, condition in spec.completed_by.where.items():
        value = property_value(properties, path)
        if not condition_holds(condition, value):
            got = "missing" if value is None else f"{_shown(value)}"
            return (
                f"{name!r} does not meet milestone {spec.id}'s condition "
                f"{describe(path, condition)} ({path} is {got})"
            )
    raise AssertionError("called only for an event that does not match")


class EventMapper:
    """Turns calls into the `ProductEvent`s one playbook understands (`product_event`),
    with what it reads of the playbook worked out once: the ingress maps a request's
    events (a hundred per Segment batch) with one mapper, instead of walking the
    playbook's milestones and watched names for every event."""

    def __init__(self, playbook: Playbook) -> None:
        self.playbook = playbook
        # The playbook guarantees every milestone completed by one event name uses the
        # same conditions, so the first such milestone decides.
        self._completing: dict[str, MilestoneSpec] = {}
        for m in playbook.milestones:
            for name in m.completed_by.events if m.completed_by else []:
                self._completing.setdefault(name, m)
        self._attendance = playbook.attendance_events()
        self._watched = playbook.event_names_watched()

    def product_event(
        self,
        *,
        event_id: str,
        name: str,
        properties: Mapping[str, object],
        at: datetime | None,
        user_id: str | None,
    ) -> ProductEvent | str:
        """The `ProductEvent` the workflow understands, or why this event completes nothing.

        A name only watched (a support ticket, usage for the skip net) has no conditions.
        With `[activation]` (rules §7) an event carries its user's role property, and an
        identify call naming a user and a role is one (`identify`, its traits the
        properties).
        """
        playbook = self.playbook
        role = _role(playbook, properties)
        if name == IDENTIFY and playbook.activation is not None:
            return _identify(playbook.activation.role_property, event_id, at, user_id, role)
        spec = self._completing.get(name)
        if spec is None and name in self._attendance:
            program, why = _program_attended(playbook, name, properties)
            if program is None:
                return why
            return ProductEvent(
                event_id=event_id, name=name, at=at, user_id=user_id, program=program
            )
        if spec is None and name in self._watched:
            return ProductEvent(event_id=event_id, name=name, at=at, user_id=user_id, role=role)
        if spec is None or spec.completed_by is None:
            return f"no milestone of playbook {playbook.version} is completed by {name!r}"
        if not matches(spec.completed_by, name, properties):
            return _unmet(spec, name, properties)
        product = property_value(properties, "product")
        return ProductEvent(
            event_id=event_id,
            name=name,
            at=at,
            user_id=user_id,
            # A multi-product deal's events say which product they happened in (rules §6.2).
            product=product[:NAME_CHARS] if isinstance(product, str) else None,
            role=role,
        )


def _role(playbook: Playbook, properties: Mapping[str, object]) -> str | None:
    """The user's role as the call says it (`[activation].role_property`, a non-blank
    string); None without `[activation]` or without the property."""
    if playbook.activation is None:
        return None
    value = property_value(properties, playbook.activation.role_property)
    return value.strip()[:NAME_CHARS] if isinstance(value, str) and value.strip() else None


def _identify(
    role_property: str, event_id: str, at: datetime | None, user_id: str | None, role: str | None
) -> ProductEvent | str:
    """An identify call says a user's role (rules §7 (docs/rules.md), *Activation by
    role*): it needs both."""
    if user_id is None:
        return "an identify call needs the user (userId or anonymousId) to say their role"
    if role is None:
        return f"an identify call without a {role_property!r} trait says no role"
    return ProductEvent(event_id=event_id, name=IDENTIFY, at=at, user_id=user_id, role=role)


def _program_attended(
    playbook: Playbook, name: str, properties: Mapping[str, object]
) -> tuple[str | None, str]:
    """The program a group program's attendance names (rules §1 (docs/rules.md), *Group
    programs*), or None and why: its `program` property names it; it may be left out when
    only one program is attended by `name`."""
    named = sorted(k for k, p in playbook.programs.items() if p.attended_event == name)
    program = property_value(properties, "program")
    if program is None and len(named) == 1:
        program = named[0]
    if program not in named:
        got = "missing" if program is None else _shown(program)
        return (
            None,
            f"{name!r} needs its program property to be one of {', '.join(named)} (got {got})",
        )
    assert isinstance(program, str)
    return program, ""


# --------------------------------------------------------------------------- when it happened


def times_kept(playbook: Playbook) -> dict[str, int]:
    """Per event name, how many of its earliest times a milestone may need (its `count`)."""
    kept: dict[str, int] = {}
    for rule in (m.completed_by for m in playbook.milestones if m.completed_by):
        for name in rule.events:
            kept[name] = max(kept.get(name, 0), rule.count)
    return kept


def record_time(times: list[datetime], at: datetime, keep: int) -> None:
    """Keep the `keep` earliest of `times` (sorted), `at` included: events replayed from
    an offline queue or a backfill arrive in any order."""
    insort(times, at)
    del times[keep:]


def reached(rule: EventMatch, counts: Mapping[str, int]) -> bool:
    """At least `count` events meeting `rule` have been seen, under any of its names."""
    return sum(counts.get(name, 0) for name in rule.events) >= rule.count


def reached_at(rule: EventMatch, times: Mapping[str, Sequence[datetime]]) -> datetime | None:
    """When the `count`-th event meeting `rule` happened; None when its times were not
    kept (events counted by an onboarding that began before times were kept)."""
    merged = sorted(t for name in rule.events for t in times.get(name, ()))
    return merged[rule.count - 1] if len(merged) >= rule.count else None

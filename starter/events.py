"""Segment-compatible product events: parse a `POST /events` body, find each call's
account, and plan one `product_events` signal per account.

Every call gets an answer. `parse_calls` fails the whole request only when the body
itself is unusable (`PayloadError`); a call it cannot use becomes an `EventProblem` at
its index, and `plan_signals` turns that into a "rejected" outcome while the other calls
go on. Calls that complete no milestone are "ignored" with the reason, a messageId seen
earlier in the same request is a "duplicate", and the rest are grouped per account into
`AccountBatch`es: the ingress answers those "accepted" once Temporal took the signal.

Segment fields read: `type`, `messageId`, `event` and `properties` (track, page, screen),
`traits` (identify: merged over `context.traits`; group: its own `traits`), `userId`
else `anonymousId`, `timestamp` else `sentAt` else `receivedAt` (ISO 8601), and the
account at the first non-empty of the configured dotted paths (`groupId`,
`context.groupId`, `context.traits.crm_account_id`, ...).

When it happened: a call straight from a device (no `receivedAt`: nothing corrected it
on the way) that carries both `timestamp` and `sentAt` was dated by the device's clock,
which may be wrong; like Segment, the ingress corrects it by the device's offset,
`timestamp + (received - sentAt)`. A call relayed by Segment has `receivedAt` and a
`timestamp` Segment already corrected.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from activities.crm_records import PayloadError
from workflows.event_mapping import EventMapper, property_value
from workflows.ids import canonical_account_id
from workflows.models import ACCOUNT_ID, MAX_SIGNAL_EVENTS, Playbook, ProductEvent

CallType = Literal["track", "identify", "group", "page", "screen", "alias"]
CALL_TYPES: tuple[str, ...] = get_args(CallType)
# messageIds are kept by the workflow for deduplication; bound what one can cost.
MAX_MESSAGE_ID = 200
TIME_FIELDS = ("timestamp", "sentAt", "receivedAt")


# The request's own records (a call, a problem, an outcome, an account's batch) are plain
# dataclasses: every field is checked or built by the parsing here, and a pydantic model
# for each of a hundred calls, and again for each answer, was about a fifth of the
# ingress's CPU per `POST /events` (README *Benchmark*).


@dataclass(slots=True, kw_only=True)
class EventCall:
    """One usable Segment call; `index` is its position in the request; `at` is aware
    UTC (`_at`)."""

    type: CallType
    message_id: str
    name: str
    properties: dict[str, Any]
    account_id: str
    user_id: str | None
    at: datetime | None
    index: int


@dataclass(slots=True, kw_only=True)
class EventProblem:
    """A call that cannot be used; `field` locates it in the body (`batch[3].messageId`)."""

    index: int
    message_id: str | None
    field: str
    reason: str


Outcome = Literal["accepted", "duplicate", "ignored", "rejected"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)


@dataclass(slots=True, kw_only=True)
class EventOutcome:
    """The answer for one call of the request."""

    index: int
    message_id: str | None
    account_id: str | None
    outcome: Outcome
    reason: str | None

    def answer(self) -> dict[str, Any]:
        """As the response's `events[]` entry gives it: the fields that are set, in order."""
        answer: dict[str, Any] = {"index": self.index}
        if self.message_id is not None:
            answer["message_id"] = self.message_id
        if self.account_id is not None:
            answer["account_id"] = self.account_id
        answer["outcome"] = self.outcome
        if self.reason is not None:
            answer["reason"] = self.reason
        return answer


@dataclass(slots=True, kw_only=True)
class AccountBatch:
    """The events of one request for one account: one `product_events` signal.
    `outcomes` holds the request indexes of the calls, parallel to `events`."""

    account_id: str
    events: list[ProductEvent]
    outcomes: list[int]

    def accepted(self) -> list[EventOutcome]:
        """The answers once Temporal has taken the signal."""
        return self.answered("accepted", None)

    def answered(self, outcome: Outcome, reason: str | None) -> list[EventOutcome]:
        """The same answer for every event of the batch."""
        return [
            EventOutcome(
                index=index,
                message_id=event.event_id,
                account_id=self.account_id,
                outcome=outcome,
                reason=reason,
            )
            for index, event in zip(self.outcomes, self.events, strict=True)
        ]


# --------------------------------------------------------------------------- parsing


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` wins; nested objects merge key by key."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _envelope(payload: object) -> tuple[list[object], str | None, dict[str, Any]]:
    """The calls, the prefix that locates one in the body (None: the body is the call),
    and batch-level defaults."""
    if isinstance(payload, list):
        return payload, "", {}
    if not isinstance(payload, dict):
        raise PayloadError(
            "(body)", 'must be a Segment call, a {"batch": [...]} object or an array of calls'
        )
    if "batch" not in payload:
        return [payload], None, {}
    calls = payload["batch"]
    if not isinstance(calls, list):
        raise PayloadError("batch", "must be an array of calls")
    context = payload.get("context") or {}
    if not isinstance(context, dict):
        raise PayloadError("context", "must be an object")
    defaults: dict[str, Any] = {"context": context} if context else {}
    if payload.get("sentAt") is not None:
        defaults["sentAt"] = payload["sentAt"]
    return calls, "batch", defaults


class _Unusable(Exception):
    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason


def _text(value: object) -> str | None:
    """A non-blank string (numbers allowed, as some sources send numeric ids)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _object(call: Mapping[str, Any], field: str) -> dict[str, Any]:
    value = call.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Unusable(field, "must be an object")
    return value


def _message_id(call: Mapping[str, Any]) -> str:
    value = call.get("messageId")
    if not isinstance(value, str) or not value.strip():
        raise _Unusable("messageId", "is required: it is the key that makes a retry harmless")
    if len(value) > MAX_MESSAGE_ID:
        raise _Unusable("messageId", f"must be at most {MAX_MESSAGE_ID} characters")
    return value


def _name_and_properties(kind: str, call: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    if kind == "track":
        name = call.get("event")
        if not isinstance(name, str) or not name.strip():
            raise _Unusable("event", "a track call needs the event name")
        return name.strip(), _object(call, "properties")
    if kind == "identify":
        context_traits = _object(_object(call, "context"), "traits")
        return "identify", _merged(context_traits, _object(call, "traits"))
    if kind == "group":
        return "group", _object(call, "traits")
    if kind in ("page", "screen"):
        return kind, _object(call, "properties")
    return "alias", {}


def _account(call: Mapping[str, Any], paths: Sequence[str]) -> str:
    for path in paths:
        value = property_value(call, path)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        account = _text(value)
        if account is not None:
            account = canonical_account_id(account)  # one customer, one id (workflows.ids)
        if account is None or not ACCOUNT_ID.match(account):
            raise _Unusable(
                path,
                f"{value!r} is not an account id (1-64 letters, digits, '.', '_', ':' or "
                "'-', starting with a letter or digit)",
            )
        return account
    raise _Unusable(
        paths[0] if paths else "groupId",
        f"no account id: name the account at {' or '.join(paths) or 'groupId'}",
    )


def _time(call: Mapping[str, Any], field: str) -> datetime | None:
    value = call.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Unusable(field, "must be an ISO 8601 date-time string")
    try:
        at = datetime.fromisoformat(value)
        return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    except ValueError:
        raise _Unusable(field, f"{value!r} is not an ISO 8601 date-time") from None
    except OverflowError:
        raise _Unusable(field, f"{value!r} is outside the range of dates") from None


def _at(call: Mapping[str, Any], received: datetime | None) -> datetime | None:
    """When the call happened (see the module docstring for the device-clock correction)."""
    times = {field: _time(call, field) for field in TIME_FIELDS}
    at = next((t for t in times.values() if t is not None), None)
    sent, timestamp = times["sentAt"], times["timestamp"]
    if received is None or times["receivedAt"] or sent is None or timestamp is None:
        return at
    try:
        return timestamp + (received - sent)
    except OverflowError:  # an offset that leaves the calendar: no correction to trust
        return timestamp


def _call(
    raw: object,
    index: int,
    defaults: dict[str, Any],
    paths: Sequence[str],
    received: datetime | None,
) -> EventCall | EventProblem:
    if not isinstance(raw, dict):
        return EventProblem(index=index, message_id=None, field="", reason="must be an object")
    call = _merged(defaults, raw)
    given = call.get("messageId")
    usable = isinstance(given, str) and given.strip() and len(given) <= MAX_MESSAGE_ID
    message_id = given if usable else None
    try:
        message_id = _message_id(call)
        kind = call.get("type")
        if kind not in CALL_TYPES:
            raise _Unusable("type", f"{kind!r} is not one of {', '.join(CALL_TYPES)}")
        name, properties = _name_and_properties(kind, call)
        return EventCall(
            type=kind,
            message_id=message_id,
            name=name,
            properties=properties,
            account_id=_account(call, paths),
            user_id=_text(call.get("userId")) or _text(call.get("anonymousId")),
            at=_at(call, received),
            index=index,
        )
    except _Unusable as problem:
        return EventProblem(
            index=index, message_id=message_id, field=problem.field, reason=problem.reason
        )


def parse_calls(
    payload: object,
    account_paths: Sequence[str],
    *,
    max_events: int = MAX_SIGNAL_EVENTS,
    received: datetime | None = None,
) -> list[EventCall | EventProblem]:
    """One `EventCall` or `EventProblem` per call, in request order.

    `payload` is the decoded JSON body: a single call, a Segment batch
    `{"batch": [...], "context": {...}, "sentAt": ...}` (batch-level context is merged
    under each call's, and `sentAt` is each call's default), or an array of calls. A
    problem's `field` locates it: `batch[3].messageId`, `[3].type`, or `messageId`.
    `received`: when the request arrived, to correct device clocks (None: no correction).
    """
    calls, prefix, defaults = _envelope(payload)
    if len(calls) > max_events:
        raise PayloadError(
            "batch", f"{len(calls)} events; send at most {max_events} events per request"
        )
    out: list[EventCall | EventProblem] = []
    for index, raw in enumerate(calls):
        parsed = _call(raw, index, defaults, account_paths, received)
        if isinstance(parsed, EventProblem) and prefix is not None:
            where = f"{prefix}[{index}]"
            parsed.field = f"{where}.{parsed.field}" if parsed.field else where
        out.append(parsed)
    return out


# --------------------------------------------------------------------------- planning


def _answer(
    call: EventCall | EventProblem,
    outcome: Literal["duplicate", "ignored", "rejected"],
    reason: str,
) -> EventOutcome:
    return EventOutcome(
        index=call.index,
        message_id=call.message_id,
        account_id=call.account_id if isinstance(call, EventCall) else None,
        outcome=outcome,
        reason=reason,
    )


def plan_signals(
    calls: Sequence[EventCall | EventProblem], playbook: Playbook
) -> tuple[dict[str, AccountBatch], list[EventOutcome]]:
    """One batch per account of the events some milestone is completed by, in arrival
    order, and an outcome for every other call (duplicate, ignored or rejected)."""
    batches: dict[str, AccountBatch] = {}
    outcomes: list[EventOutcome] = []
    first_seen: dict[str, int] = {}
    mapper = EventMapper(playbook)
    for call in calls:
        if call.message_id is not None:
            earlier = first_seen.setdefault(call.message_id, call.index)
            if earlier != call.index:
                reason = f"messageId {call.message_id!r} already came at index {earlier}"
                outcomes.append(_answer(call, "duplicate", reason))
                continue
        if isinstance(call, EventProblem):
            reason = f"{call.field}: {call.reason}" if call.field else call.reason
            outcomes.append(_answer(call, "rejected", reason))
            continue
        event = mapper.product_event(
            event_id=call.message_id,
            name=call.name,
            properties=call.properties,
            at=call.at,
            user_id=call.user_id,
        )
        if isinstance(event, str):
            outcomes.append(_answer(call, "ignored", event))
            continue
        batch = batches.get(call.account_id)
        if batch is None:
            batch = batches[call.account_id] = AccountBatch(
                account_id=call.account_id, events=[], outcomes=[]
            )
        batch.events.append(event)
        batch.outcomes.append(call.index)
    return batches, outcomes


NOT_AWAITED = "no open milestone of this onboarding needs {name!r}"
# Identify calls say a user's role (rules §7); only a running onboarding remembers it.
NO_ONBOARDING = "no onboarding yet to remember the role in: an identify call starts none"


def filter_awaited(
    batch: AccountBatch, awaited: Collection[str], reason: str = NOT_AWAITED
) -> tuple[AccountBatch | None, list[EventOutcome]]:
    """Keep the events this onboarding still awaits (its open milestones' events); the
    rest are ignored with `reason` (`{name}`: the event's name). None when nothing is
    left to signal."""
    kept = AccountBatch(account_id=batch.account_id, events=[], outcomes=[])
    ignored: list[EventOutcome] = []
    for index, event in zip(batch.outcomes, batch.events, strict=True):
        if event.name in awaited:
            kept.events.append(event)
            kept.outcomes.append(index)
        else:
            ignored.append(
                EventOutcome(
                    index=index,
                    message_id=event.event_id,
                    account_id=batch.account_id,
                    outcome="ignored",
                    reason=reason.format(name=event.name),
                )
            )
    return (kept if kept.events else None), ignored

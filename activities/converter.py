"""How the service's values become Temporal payloads: JSON through pydantic, as the SDK's
`temporalio.contrib.pydantic` converter does, with two differences.

- One `TypeAdapter` cache for the process. The SDK's converter keeps one per converter,
  and the worker makes a converter per workflow, so each cached onboarding held its own
  adapters (about 6 KB) and each new one built them again.
- `ReferencingPayloadConverter` (what `activities.client.data_converter` sends with)
  writes every pinned playbook as its reference (README *Where the pinned playbook
  lives*); `PayloadConverter` writes it whole, for a process without the records store
  that keeps the content (the tests' time-skipping servers, recorded histories).
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import TypeAdapter
from pydantic_core import to_json
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)

from workflows.models.playbook import BY_REFERENCE

JSON_PLAIN = b"json/plain"


@functools.lru_cache(maxsize=1024)
def _type_adapter(type_hint: Any) -> TypeAdapter[Any]:
    return TypeAdapter(type_hint)


class JsonConverter(PydanticJSONPlainPayloadConverter):
    """The SDK's pydantic JSON converter, with the process's `TypeAdapter`s."""

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        hint = Any if type_hint is None else type_hint
        try:
            adapter = _type_adapter(hint)
        except TypeError:  # an unhashable hint: not cached
            adapter = TypeAdapter(hint)
        return adapter.validate_json(payload.data)


class ReferencingJsonConverter(JsonConverter):
    """`JsonConverter`, with every `PinnedPlaybook` written as its reference."""

    def to_payload(self, value: object) -> Payload:
        return Payload(metadata={"encoding": JSON_PLAIN}, data=to_json(value, context=BY_REFERENCE))


def _with_json(json: JsonConverter) -> list[Any]:
    return [
        json if isinstance(c, JSONPlainPayloadConverter) else c
        for c in DefaultPayloadConverter.default_encoding_payload_converters
    ]


# The worker makes a payload converter for every activation and activity; these hold no
# state of their own, so each is made once (a pydantic JSON converter builds a serializer).
_PLAIN = _with_json(JsonConverter())
_REFERENCING = _with_json(ReferencingJsonConverter())


class PayloadConverter(CompositePayloadConverter):
    """The SDK's `PydanticPayloadConverter` with `JsonConverter` (a payload converter
    class needs a constructor without arguments)."""

    def __init__(self) -> None:
        super().__init__(*_PLAIN)


class ReferencingPayloadConverter(CompositePayloadConverter):
    """`PayloadConverter`, pinned playbooks by reference."""

    def __init__(self) -> None:
        super().__init__(*_REFERENCING)


# Playbooks whole: for a process without the records store (see the module's docstring).
CONVERTER = DataConverter(payload_converter_class=PayloadConverter)

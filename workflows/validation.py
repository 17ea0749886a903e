"""Pydantic validation errors in words a sender reads: the one place a location becomes a
field path and an error its message."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic_core import ErrorDetails


def dotted(loc: Sequence[int | str]) -> str:
    """A pydantic error location as a field path: `("contacts", 0, "email")` ->
    `contacts[0].email`; `""` for the top level (each caller names that its own way)."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def message(error: ErrorDetails) -> str:
    """The error's message without pydantic's `Value error, ` prefix on a validator's
    own `ValueError`."""
    return error["msg"].removeprefix("Value error, ")

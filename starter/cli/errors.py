"""Expected failures of a command: one line on stderr and exit code 1."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import BaseSettings
from temporalio.service import RPCError

from activities.client import ConnectError
from activities.codec import DecryptionError
from activities.money import FxRatesError
from activities.records.store import RecordStoreError
from activities.roster import RosterError
from activities.settings import settings_problems
from activities.starting import AlreadyOnboardedError
from starter import devserver
from starter.client import worker_catching_up
from workflows.playbook import PlaybookError
from workflows.validation import dotted, message

T = TypeVar("T")


class CliError(Exception):
    """An expected failure: its message is the one line the user sees."""


def fail(message: str) -> NoReturn:
    """`error: <message>` on stderr (whitespace folded to one line), exit code 1."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(1)


def validation_line(exc: ValidationError, source: str | None = None) -> str:
    """One line naming every bad field of a pydantic error, and why."""
    problems = []
    for err in exc.errors():
        problems.append(f"{dotted(err['loc']) or '(top level)'}: {message(err)}")
    prefix = f"{source}: " if source else ""
    return prefix + "; ".join(problems)


def settings_error(exc: ValidationError) -> CliError:
    """Bad ONBOARDING_* settings, every bad one named."""
    return CliError(settings_problems(exc))


S = TypeVar("S", bound=BaseSettings)


def settings_of(kind: type[S]) -> S:
    """`kind` read from the ONBOARDING_* environment; bad settings fail as one line
    naming each of them."""
    try:
        return kind()
    except ValidationError as exc:
        raise settings_error(exc) from None


def run(
    coro: Coroutine[Any, Any, T],
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> T:
    """Run a command's coroutine (on a loop of `loop_factory`, default asyncio's);
    expected failures become one line and exit 1."""
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(coro)
    except (
        CliError,
        ConnectError,
        AlreadyOnboardedError,
        PlaybookError,
        devserver.DevServerError,
        DecryptionError,
        FxRatesError,
        RecordStoreError,
        RosterError,
    ) as exc:
        fail(str(exc))
    except ValidationError as exc:
        fail(validation_line(exc))
    except RPCError as exc:
        if worker_catching_up(exc):  # transient: its workflow task is being retried
            fail(
                f"the worker is catching up on this onboarding (Temporal: {exc.message}); "
                "nothing changed: retry in a few seconds (if it persists, see the worker's log)"
            )
        fail(f"temporal: {exc.message}")

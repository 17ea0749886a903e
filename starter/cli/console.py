"""The `onboarding` console script: the typer app, its exit codes, and its commands in the
order `--help` lists them."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from typing import Any, NoReturn

import typer

from starter.cli import (
    bulk_import,
    demo,
    events,
    links,
    migrate,
    onboardings,
    portfolio,
    records,
    reports,
    send_deal,
    simulate,
    stack,
)


class _Cli(typer.Typer):
    """Typer that reports every error as one line and always exits with the right code.

    Used only for the console script (`app()`); typer's CliRunner calls the click command
    directly and gets the ordinary behaviour.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        code = 0
        try:
            kwargs["standalone_mode"] = False  # errors and exit codes come back to us
            result = typer.main.get_command(self).main(*args, **kwargs)
            code = result if isinstance(result, int) else 0
        except typer.Exit as exc:
            code = exc.exit_code
        except typer.TyperException as exc:  # usage errors: bad option, missing argument
            # (typer >= 0.2x vendors click; its ClickException derives from TyperException)
            code = getattr(exc, "exit_code", 2)
            if type(exc).__name__ == "NoArgsIsHelpError":
                typer.echo(exc.format_message())
            else:
                ctx = getattr(exc, "ctx", None)
                where = f"{ctx.command_path}: " if ctx is not None else ""
                typer.echo(f"error: {where}{' '.join(exc.format_message().split())}", err=True)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            code = 1
        except KeyboardInterrupt:
            code = 130
        except Exception:
            traceback.print_exc()
            code = 1
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        # Exit without interpreter finalization: with the SDK's Rust core still holding
        # threads, a short-lived process can abort at exit with "PyGILState_Release ...
        # finalizing" (temporalio/sdk-python#300; about one run in three of a plain script
        # here), turning work that succeeded into a crash and a wrong exit code. Everything
        # is done and flushed by now, so skipping finalization loses nothing.
        os._exit(code)


app = _Cli(
    name="onboarding",
    help="Customer onboarding as durable Temporal workflows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# `--help` lists the commands in this order.
app.command()(stack.up)
app.command()(stack.serve)
app.command()(onboardings.start)
app.command("import")(bulk_import.import_)
app.command()(onboardings.milestone)
app.command("send-event")(events.send_event)
app.command("send-deal")(send_deal.send_deal)
app.command()(onboardings.pause)
app.command()(onboardings.resume)
app.command("override-tier")(onboardings.override_tier)
app.command()(onboardings.skip)
app.command()(onboardings.cancel)
app.command("confirm-plan")(onboardings.confirm_plan)
app.command("realignment-gate")(onboardings.realignment_gate)
app.command()(onboardings.reassign)
app.command()(reports.status)
app.command("list")(reports.list_)
app.command()(portfolio.report)
app.command()(simulate.simulate)
app.command("migrate-playbook")(migrate.migrate_playbook)
app.add_typer(records.app, name="records")
app.add_typer(links.app, name="link")
app.command()(demo.demo)

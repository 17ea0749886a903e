"""`onboarding`: the command line of the onboarding service.

    onboarding up                       # dev server + UI (:8233) + worker + ingress (:8000)
    onboarding serve                    # only the HTTP ingress
    onboarding import deals.csv         # bulk-start onboardings, with a summary
    onboarding send-event ACCOUNT EVENT # try a product event against the ingress
    onboarding start --file deal.json   # start (or find) an account's onboarding
    onboarding status ACCOUNT           # the whole state, readable
    onboarding list --state at_risk     # a report from the search attributes
    onboarding demo                     # sample accounts that escalate within a minute

Every command talks to Temporal as configured by TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE /
TLS / API key (the SDK's env config); default localhost:7233. Errors are one line on
stderr and a non-zero exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import socket
import sys
import traceback
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import temporalio.client
import typer
from pydantic import BaseModel, ValidationError
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities import Settings
from starter import bulk, devserver
from starter.client import (
    WORKFLOW_TYPE,
    ConnectError,
    connect,
    connect_config,
    data_converter,
    metrics_runtime,
    ui_base_url,
    ui_url,
    worker_catching_up,
)
from starter.codec import CodecSettings, DecryptionError
from starter.deals import inbound_deal
from starter.exports import WON_STAGES
from starter.ids import canonical_account_id
from starter.money import DEFAULT_FX_RATES, FxRates, FxRatesError, load_fx_rates
from starter.settings import IngressSettings, ensure_local_secrets, local_secrets_path
from starter.starting import AlreadyOnboardedError, start_onboarding, usd
from workflows import search_attributes as sa
from workflows.models import (
    CancelRequest,
    ClosedWonDeal,
    MilestoneReport,
    MilestoneStatus,
    OnboardingState,
    OnboardingStatus,
    PauseRequest,
    Playbook,
    ResumeRequest,
    SkipRequest,
    Tier,
    TierOverride,
    workflow_id_for,
)
from workflows.playbook import DEFAULT_PLAYBOOK, PlaybookError, load_playbook

T = TypeVar("T")

# How long a command waits for the workflow (i.e. a worker) to answer a query or update.
ANSWER_TIMEOUT = timedelta(seconds=20)


class CliError(Exception):
    """An expected failure: its message is the one line the user sees."""


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
        # here, see DESIGN.md), turning work that succeeded into a crash and a wrong exit
        # code. Everything is done and flushed by now, so skipping finalization loses nothing.
        os._exit(code)


app = _Cli(
    name="onboarding",
    help="Customer onboarding as durable Temporal workflows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


# --------------------------------------------------------------------------- plumbing


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(1)


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def validation_line(exc: ValidationError, source: str | None = None) -> str:
    """One line naming every bad field of a pydantic error, and why."""
    problems = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        problems.append(f"{_loc(err['loc'])}: {msg}")
    prefix = f"{source}: " if source else ""
    return prefix + "; ".join(problems)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; expected failures become one line and exit 1."""
    try:
        return asyncio.run(coro)
    except (
        CliError,
        ConnectError,
        AlreadyOnboardedError,
        PlaybookError,
        devserver.DevServerError,
        DecryptionError,
        FxRatesError,
    ) as exc:
        _fail(str(exc))
    except ValidationError as exc:
        _fail(validation_line(exc))
    except RPCError as exc:
        if worker_catching_up(exc):  # transient: its workflow task is being retried
            _fail(
                f"the worker is catching up on this onboarding (Temporal: {exc.message}); "
                "nothing changed: retry in a few seconds (if it persists, see the worker's log)"
            )
        _fail(f"temporal: {exc.message}")


def _account_id(account: str) -> str:
    """Accept `acme` or `onboarding-acme`; a Salesforce id in any of its forms names one
    account (`starter.ids`)."""
    return canonical_account_id(account.strip().removeprefix("onboarding-"))


def _when(value: str, what: str) -> datetime:
    """A date (`2026-12-01`, midnight UTC) or an ISO 8601 datetime (naive = UTC)."""
    try:
        at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(
            f"{what}: {value!r} is not a date (YYYY-MM-DD or an ISO 8601 datetime)"
        ) from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _model(factory: Callable[..., BaseModel], **fields: Any) -> Any:
    """Build a request model; a bad value becomes a one-line CliError."""
    try:
        return factory(**fields)
    except ValidationError as exc:
        raise CliError(validation_line(exc)) from None


async def _finished_or_missing(client: temporalio.client.Client, account_id: str) -> CliError:
    """The error for an account whose workflow cannot take messages."""
    wid = workflow_id_for(account_id)
    try:
        desc = await client.get_workflow_handle(wid).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return CliError(f"no onboarding for account {account_id}")
        raise
    state = desc.typed_search_attributes.get(sa.ONBOARDING_STATE)
    status = desc.status.name.lower() if desc.status else "closed"
    return CliError(f"the onboarding of account {account_id} has ended ({state or status})")


async def _query_status(client: temporalio.client.Client, account_id: str) -> OnboardingStatus:
    handle = client.get_workflow_handle(workflow_id_for(account_id))
    try:
        return await handle.query(
            "status", result_type=OnboardingStatus, rpc_timeout=ANSWER_TIMEOUT
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise await _finished_or_missing(client, account_id) from None
        if exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            raise CliError(
                f"no answer to the status query of account {account_id} within "
                f"{ANSWER_TIMEOUT.seconds} s: is a worker running (`onboarding up`)?"
            ) from None
        raise
    except temporalio.client.WorkflowQueryFailedError as exc:
        raise CliError(f"status query of account {account_id} failed: {exc.message}") from None
    except temporalio.client.WorkflowQueryRejectedError as exc:
        raise CliError(f"status query of account {account_id} rejected: {exc}") from None


async def _update(
    client: temporalio.client.Client, account_id: str, name: str, arg: BaseModel
) -> OnboardingStatus:
    """Send an update; a validator's rejection becomes its message."""
    handle = client.get_workflow_handle(workflow_id_for(account_id))
    try:
        return await asyncio.wait_for(
            handle.execute_update(name, arg, result_type=OnboardingStatus),
            ANSWER_TIMEOUT.total_seconds(),
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        raise CliError(f"{name} rejected for account {account_id}: {message}") from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise await _finished_or_missing(client, account_id) from None
        raise
    except TimeoutError:
        raise CliError(
            f"no answer to {name} from account {account_id} within "
            f"{ANSWER_TIMEOUT.seconds} s: is a worker running (`onboarding up`)?"
        ) from None


async def _signal(
    client: temporalio.client.Client, account_id: str, name: str, arg: BaseModel
) -> None:
    handle = client.get_workflow_handle(workflow_id_for(account_id))
    try:
        await handle.signal(name, arg)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise await _finished_or_missing(client, account_id) from None
        raise


def _read_deal(path: Path, playbook: Playbook, rates: FxRates) -> ClosedWonDeal:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    try:
        fields = json.loads(text)
    except ValueError as exc:
        raise CliError(f"{path}: not JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise CliError(f"{path}: must be a JSON object (a ClosedWonDeal)")
    try:
        deal = inbound_deal(fields, rates)
    except ValidationError as exc:
        raise CliError(validation_line(exc, str(path))) from None
    for i, done in enumerate(deal.completed_milestones):
        if playbook.milestone(done.milestone_id) is None:
            known = ", ".join(m.id for m in playbook.milestones)
            raise CliError(
                f"{path}: completed_milestones[{i}].milestone_id: {done.milestone_id!r} is "
                f"not a milestone of playbook {playbook.version} (known: {known})"
            )
    return deal


def _print_started(handle_id: str, new: bool, namespace: str, tier_line: str = "") -> None:
    if new:
        typer.echo(f"started {handle_id}{tier_line}")
    else:
        typer.echo(f"already running {handle_id}: not started again")
    typer.echo(f"  UI: {ui_url(handle_id, namespace)}")


# --------------------------------------------------------------------------- up


Service = Callable[[temporalio.client.Client, asyncio.Event], Awaitable[None]]


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise CliError(f"bad ONBOARDING_* settings: {validation_line(exc)}") from None


async def _worker_service(client: temporalio.client.Client, stop: asyncio.Event) -> None:
    from worker import run_worker

    await run_worker(client, _settings(), stop=stop)


def _ingress_settings() -> IngressSettings:
    try:
        return IngressSettings()
    except ValidationError as exc:
        raise CliError(f"bad ONBOARDING_* settings: {validation_line(exc)}") from None


def _ingress_service(sdk_metrics_url: str | None) -> Service:
    async def ingress(client: temporalio.client.Client, stop: asyncio.Event) -> None:
        from starter.app import serve

        await serve(client, stop, _ingress_settings(), sdk_metrics_url=sdk_metrics_url)

    return ingress


def local_services(sdk_metrics_url: str | None = None) -> list[tuple[str, Service]]:
    """What `onboarding up` runs together against the server, each until `stop` is set."""
    return [("worker", _worker_service), ("HTTP ingress", _ingress_service(sdk_metrics_url))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _watch_server(server: devserver.DevServer, stop: asyncio.Event) -> None:
    while not stop.is_set():
        if not server.running:
            raise CliError(
                f"the Temporal dev server exited (code {server.process.returncode}); "
                f"see {server.log_path}"
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


async def _up(no_server: bool, port: int, ui_port: int, db: Path | None) -> None:
    from activities import configure_logging

    configure_logging()
    _settings()  # bad ONBOARDING_* settings fail before anything starts
    if not no_server:
        data_dir = (db or devserver.default_db_path()).parent
        taken = ensure_local_secrets(local_secrets_path(data_dir))
        if taken:
            typer.echo(f"Secrets:     {local_secrets_path(data_dir)} ({len(taken)} local)")
    ingress = _ingress_settings()
    codec = CodecSettings()  # bad ONBOARDING_CODEC_* settings fail before anything starts
    # The UI (http://localhost:8233) decrypts through the ingress; same site for its cookie.
    codec_endpoint = f"http://localhost:{ingress.port}/codec" if codec.codec_keys else None
    # The SDK serves its own metrics on a private port; the ingress's /metrics adds them.
    metrics_port = _free_port()
    runtime = metrics_runtime(metrics_port)
    stop = asyncio.Event()
    server: devserver.DevServer | None = None
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():  # a second Ctrl-C: stop now
            if server is not None:
                server.process.kill()
            os._exit(130)
        typer.echo("\nstopping (Ctrl-C again to force)...", err=True)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)

    try:
        if no_server:
            client = await connect(runtime=runtime)
            typer.echo(f"Temporal:    {connect_config()['target_host']} (not started here)")
            ui = f"{ui_base_url()}/namespaces/{client.namespace}/workflows"
        else:
            namespace = str(connect_config()["namespace"])
            server = await devserver.start_dev_server(
                port=port,
                ui_port=ui_port,
                db_path=db,
                namespace=namespace,
                ui_codec_endpoint=codec_endpoint,
            )
            # Our own local server: plain gRPC, whatever TLS / API key the env configures.
            client = await temporalio.client.Client.connect(
                server.address,
                namespace=namespace,
                data_converter=data_converter(),
                runtime=runtime,
            )
            typer.echo(f"Temporal:    {server.address} (state {server.db_path})")
            typer.echo(f"Server log:  {server.log_path}")
            ui = f"{server.ui_url}/namespaces/{namespace}/workflows"
        typer.echo(f"Temporal UI: {ui}")
        base = f"http://{ingress.host}:{ingress.port}"
        typer.echo(f"Ingress:     {base}  (API docs {base}/docs, metrics {base}/metrics)")
        services = local_services(f"http://127.0.0.1:{metrics_port}/metrics")
        typer.echo(f"Running:     {', '.join(n for n, _ in services)} (Ctrl-C to stop)")
        async with asyncio.TaskGroup() as group:
            for _, service in services:
                group.create_task(_until_stopped(service(client, stop), stop))
            if server is not None:
                group.create_task(_until_stopped(_watch_server(server, stop), stop))
        typer.echo("stopped", err=True)
    except BaseExceptionGroup as group_error:
        # A service failed: report its own error, not the task group's wrapper.
        raise _first_leaf(group_error) from None
    finally:
        if server is not None:
            await server.stop()


def _first_leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


async def _until_stopped(work: Awaitable[None], stop: asyncio.Event) -> None:
    """Run one service; when it ends (or fails), the others are told to stop too."""
    try:
        await work
    finally:
        stop.set()


@app.command()
def up(
    no_server: Annotated[
        bool, typer.Option("--no-server", help="Use the server TEMPORAL_ADDRESS names")
    ] = False,
    port: Annotated[int, typer.Option(help="Dev server gRPC port")] = devserver.DEFAULT_PORT,
    ui_port: Annotated[int, typer.Option(help="Web UI port")] = devserver.DEFAULT_UI_PORT,
    db: Annotated[Path | None, typer.Option(help="SQLite file (default .data/temporal.db)")] = None,
) -> None:
    """Run the local stack in the foreground: dev server + UI, worker, HTTP ingress.
    Ctrl-C stops it."""
    _run(_up(no_server, port, ui_port, db))


async def _serve() -> None:
    from activities import configure_logging
    from starter.app import serve as serve_ingress

    configure_logging()
    settings = _ingress_settings()
    metrics_port = _free_port()
    client = await connect(runtime=metrics_runtime(metrics_port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    typer.echo(f"Ingress: http://{settings.host}:{settings.port} (Temporal {client.namespace})")
    await serve_ingress(
        client, stop, settings, sdk_metrics_url=f"http://127.0.0.1:{metrics_port}/metrics"
    )


@app.command()
def serve() -> None:
    """Run only the HTTP ingress (ONBOARDING_HOST / ONBOARDING_PORT), against the Temporal
    server the environment names; run workers separately (`python worker.py`)."""
    _run(_serve())


# --------------------------------------------------------------------------- start

FX_RATES_OPTION = typer.Option(
    envvar="ONBOARDING_FX_RATES", help="Dated exchange rates (TOML) for deals not in USD"
)


async def _start(file: Path, playbook_path: Path, fx_rates: Path) -> None:
    playbook = load_playbook(playbook_path)
    deal = _read_deal(file, playbook, load_fx_rates(fx_rates))
    client = await connect()
    handle, new = await start_onboarding(client, deal, playbook)
    from workflows.rules import assign_tier

    decision = assign_tier(deal, playbook.tier_rule)
    _print_started(handle.id, new, client.namespace, f" ({decision.tier.value}: {decision.reason})")


@app.command()
def start(
    file: Annotated[Path, typer.Option("--file", "-f", help="A ClosedWonDeal as JSON")],
    playbook: Annotated[
        Path, typer.Option(help="Playbook TOML pinned into the onboarding")
    ] = DEFAULT_PLAYBOOK,
    fx_rates: Annotated[Path, FX_RATES_OPTION] = DEFAULT_FX_RATES,
) -> None:
    """Start the onboarding of a closed-won deal (idempotent: one per account).

    A past close_date and completed_milestones migrate an account already in flight. A
    deal in another currency gives acv and currency (ISO 4217) instead of acv_usd.
    """
    _run(_start(file, playbook, fx_rates))


# --------------------------------------------------------------------------- import


def _print_import(summary: bulk.ImportSummary) -> None:
    typer.echo(summary.headline())
    for result in summary.of(bulk.Outcome.ALREADY_FINISHED):
        typer.echo(
            f"  line {result.line}: {result.account_id}: already onboarded ({result.reason})"
        )
    for result in summary.of(bulk.Outcome.SKIPPED):
        typer.echo(f"  line {result.line}: skipped: {result.reason}")
    for result in summary.of(bulk.Outcome.REJECTED):
        typer.echo(f"  line {result.line}: {result.reason}")


def _column_mapping(given: list[str]) -> tuple[tuple[str, str], ...]:
    """`--column "Their Header=our_column"` (empty: leave the column out)."""
    pairs = []
    for item in given:
        theirs, sep, ours = item.rpartition("=")
        if not sep or not theirs.strip():
            raise CliError(
                f"--column {item!r}: expected 'Their Header=column' "
                "(or 'Their Header=' to leave it out)"
            )
        pairs.append((theirs.strip(), ours.strip()))
    return tuple(pairs)


async def _import(
    file: Path,
    playbook_path: Path,
    concurrency: int,
    dry_run: bool,
    options: bulk.CsvOptions,
    columns: list[str],
    fx_rates: Path,
) -> bulk.ImportSummary:
    options = dataclasses.replace(options, columns=_column_mapping(columns))
    playbook = load_playbook(playbook_path)
    rates = load_fx_rates(fx_rates)
    try:
        read = bulk.read_file(file, playbook, options=options, rates=rates)
    except bulk.ImportFileError as exc:
        raise CliError(str(exc)) from None
    typer.echo(f"reading {file.name} as {read.layout}", err=True)
    if dry_run:
        return bulk.validate_only(read.rows)
    client = await connect()
    with typer.progressbar(
        length=len(read.rows), label=f"importing {file.name}", file=sys.stderr
    ) as bar:
        return await bulk.import_deals(
            client, read.rows, playbook, concurrency=concurrency, on_result=lambda _: bar.update(1)
        )


class PresetName(StrEnum):
    HUBSPOT = "hubspot"
    SALESFORCE = "salesforce"


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="Deals as .csv (one per row) or .jsonl")],
    playbook: Annotated[
        Path, typer.Option(help="Playbook TOML pinned into each onboarding")
    ] = DEFAULT_PLAYBOOK,
    concurrency: Annotated[
        int, typer.Option(min=1, max=100, help="Deals delivered at the same time")
    ] = 8,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate only; start nothing")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The summary as one JSON object")] = False,
    preset: Annotated[
        PresetName | None,
        typer.Option(help="The CRM export's columns (default: detected from the header)"),
    ] = None,
    column: Annotated[
        list[str] | None,
        typer.Option(
            help="'Their Header=our_column' for a column of another name ('Their Header=' "
            "leaves it out); repeatable"
        ),
    ] = None,
    day_first: Annotated[
        bool, typer.Option("--day-first", help="Dates like 30/11/2026 (default: 11/30/2026)")
    ] = False,
    decimal_comma: Annotated[
        bool,
        typer.Option("--decimal-comma", help="Amounts like 50.000,00 (default: 50,000.00)"),
    ] = False,
    won_stage: Annotated[
        list[str] | None,
        typer.Option(
            help="A stage that means closed-won (default: Closed Won, closedwon); repeatable"
        ),
    ] = None,
    fx_rates: Annotated[Path, FX_RATES_OPTION] = DEFAULT_FX_RATES,
) -> None:
    """Start the onboardings of many closed-won deals (idempotent per account).

    CSV columns: account_id, account_name, acv_usd (or acv with currency), close_date
    and optionally seats, integrations and success_criteria (;-separated),
    needs_api_integration, custom_data_migration, stakeholder_count,
    configuration_hours, champion_name / champion_email, sponsor_name / sponsor_email,
    crm_source, crm_deal_id, stage / won (rows not closed-won are skipped); an empty cell
    takes the default. A HubSpot deals export or a Salesforce opportunity report is read
    as downloaded (--preset, detected by its id columns). JSONL: one ClosedWonDeal object
    per line. Exits 1 if any row was rejected.
    """
    options = bulk.CsvOptions(
        preset=preset.value if preset else None,
        day_first=day_first,
        decimal_comma=decimal_comma,
        won_stages=tuple(won_stage) if won_stage else WON_STAGES,
    )
    summary = _run(_import(file, playbook, concurrency, dry_run, options, column or [], fx_rates))
    if as_json:
        typer.echo(summary.model_dump_json())
    else:
        _print_import(summary)
    if summary.has_rejected:
        raise typer.Exit(1)


# --------------------------------------------------------------------------- signals


def _default_by() -> str:
    return f"cli:{os.environ.get('USER') or 'unknown'}"


async def _milestone(
    account: str, milestone_id: str, event_id: str | None, at: str | None, status: str, by: str
) -> None:
    account_id = _account_id(account)
    report = _model(
        MilestoneReport,
        milestone_id=milestone_id,
        event_id=event_id or f"cli:{milestone_id}:{status}",
        at=_when(at, "--at") if at else None,
        status=status,
        reported_by=by,
    )
    client = await connect()
    await _signal(client, account_id, "milestone_reached", report)
    typer.echo(f"reported {milestone_id} {status} for {workflow_id_for(account_id)}")


@app.command()
def milestone(
    account: Annotated[str, typer.Argument(help="Account id (CRM id)")],
    milestone_id: Annotated[str, typer.Argument(help="Milestone id, e.g. first_login")],
    event_id: Annotated[
        str | None,
        typer.Option(help="Deduplication key (default cli:<milestone>:<status>)"),
    ] = None,
    at: Annotated[str | None, typer.Option(help="When it happened (default now)")] = None,
    in_progress: Annotated[bool, typer.Option("--in-progress", help="Started, not done")] = False,
    by: Annotated[str, typer.Option(help="Who reports it")] = "",
) -> None:
    """Report a milestone reached (a signal; repeats with the same event id count once)."""
    status = "in_progress" if in_progress else "done"
    _run(_milestone(account, milestone_id, event_id, at, status, by or _default_by()))


# --------------------------------------------------------------------------- send-event


class CallType(StrEnum):
    TRACK = "track"
    IDENTIFY = "identify"
    GROUP = "group"


def _property(item: str) -> tuple[str, Any]:
    """`users=3` -> ("users", 3): a value that parses as JSON is that JSON, else a string."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise CliError(f"--property: {item!r} is not key=value")

    def no_constants(name: str) -> Any:
        raise ValueError(name)  # NaN / Infinity would make the body invalid JSON

    try:
        value = json.loads(raw, parse_constant=no_constants)
    except ValueError:
        value = raw
    return key.strip(), value


def segment_call(
    account_id: str,
    call_type: CallType,
    event: str | None,
    properties: dict[str, Any],
    user: str | None,
    message_id: str,
    at: datetime,
) -> dict[str, Any]:
    """A Segment call for the account: `track` names an event and carries `properties`;
    `identify` / `group` carry them as `traits` (the ingress names those by their type)."""
    call: dict[str, Any] = {
        "type": call_type.value,
        "messageId": message_id,
        "groupId": account_id,
        "timestamp": at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    if call_type is CallType.TRACK:
        call["event"] = event
        call["properties"] = properties
    else:
        call["traits"] = properties
    if user:
        call["userId"] = user
    return call


def _signed_headers(body: bytes, message_id: str) -> dict[str, str]:
    """Sign as the ingress checks: Segment's X-Signature first, else Standard Webhooks."""
    from standardwebhooks.webhooks import EmptyWebhookSecretError

    from starter.settings import reveal
    from starter.signatures import sign_segment, standard_webhook_headers

    try:
        # Unset secrets come from the ones `onboarding up` generated for the local stack.
        settings = IngressSettings(_env_file=local_secrets_path())
    except ValidationError as exc:
        raise CliError(f"bad ONBOARDING_* settings: {validation_line(exc)}") from None
    headers = {"Content-Type": "application/json"}
    if settings.segment_secrets:
        headers["X-Signature"] = sign_segment(reveal(settings.segment_secrets)[0], body)
    elif settings.events_webhook_secrets:
        secret = reveal(settings.events_webhook_secrets)[0]
        try:
            headers.update(standard_webhook_headers(secret, body, message_id))
        except (ValueError, EmptyWebhookSecretError):  # ValueError: binascii.Error, not base64
            raise CliError(
                "ONBOARDING_EVENTS_WEBHOOK_SECRETS: the first secret is not whsec_ followed "
                "by base64"
            ) from None
    else:
        typer.echo(
            "warning: neither ONBOARDING_SEGMENT_SECRETS nor ONBOARDING_EVENTS_WEBHOOK_SECRETS "
            "is set: sending unsigned (an ingress with secrets refuses it)",
            err=True,
        )
    return headers


async def _send_event(url: str, call: dict[str, Any]) -> None:
    import httpx

    body = json.dumps(call, separators=(",", ":")).encode()
    headers = _signed_headers(body, call["messageId"])
    endpoint = f"{url.rstrip('/')}/events"
    try:
        async with httpx.AsyncClient(timeout=ANSWER_TIMEOUT.total_seconds()) as http:
            response = await http.post(endpoint, content=body, headers=headers)
    except httpx.ConnectError:
        raise CliError(f"cannot reach the ingress at {url}; is `onboarding up` running?") from None
    except httpx.TimeoutException:
        raise CliError(
            f"no answer from the ingress at {url} within {ANSWER_TIMEOUT.seconds} s"
        ) from None
    except httpx.HTTPError as exc:
        raise CliError(f"{endpoint}: {exc}") from None
    if not response.is_success:
        raise CliError(
            f"the ingress answered {response.status_code} {response.reason_phrase}: "
            f"{response.text or '(no body)'}"
        )
    try:
        typer.echo(json.dumps(response.json(), indent=2))
    except ValueError:
        typer.echo(response.text)


@app.command("send-event")
def send_event(
    account: Annotated[str, typer.Argument(help="Account id (the call's groupId)")],
    event: Annotated[
        str | None,
        typer.Argument(metavar="EVENT_NAME", help="The track event's name, e.g. user_logged_in"),
    ] = None,
    prop: Annotated[
        list[str] | None,
        typer.Option(
            "--property", "-p", help="key=value (repeatable); JSON values keep their type"
        ),
    ] = None,
    user: Annotated[str | None, typer.Option(help="The call's userId")] = None,
    url: Annotated[str, typer.Option(help="The HTTP ingress")] = "http://127.0.0.1:8000",
    message_id: Annotated[
        str | None, typer.Option(help="Deduplication key (default a new uuid)")
    ] = None,
    call_type: Annotated[CallType, typer.Option("--type", help="The Segment call type")] = (
        CallType.TRACK
    ),
) -> None:
    """Send one signed Segment-style product event to the ingress, as a product would.

    Signs with the first of ONBOARDING_SEGMENT_SECRETS (X-Signature), else of
    ONBOARDING_EVENTS_WEBHOOK_SECRETS (Standard Webhooks). Prints the ingress's answer.
    """

    async def go() -> None:
        if call_type is CallType.TRACK and not (event and event.strip()):
            raise CliError("EVENT_NAME: a track call needs the event name")
        if call_type is not CallType.TRACK and event:
            raise CliError(f"EVENT_NAME: a {call_type.value} call has no event name; leave it out")
        call = segment_call(
            _account_id(account),
            call_type,
            event.strip() if event else None,
            dict(_property(item) for item in prop or []),
            user,
            message_id or str(uuid.uuid4()),
            datetime.now(UTC),
        )
        await _send_event(url, call)

    _run(go())


# --------------------------------------------------------------------------- updates


def _print_update(verb: str, status: OnboardingStatus) -> None:
    tier = status.tier.value if status.tier else "none yet"
    typer.echo(
        f"{verb} {status.workflow_id}: state {status.state.value}, tier {tier}, "
        f"phase {status.phase.value if status.phase else 'done'}"
    )


async def _do_update(account: str, name: str, arg: BaseModel, verb: str) -> None:
    account_id = _account_id(account)
    client = await connect()
    status = await _update(client, account_id, name, arg)
    _print_update(verb, status)


@app.command()
def pause(
    account: Annotated[str, typer.Argument(help="Account id")],
    by: Annotated[str, typer.Option(help="Who decided")],
    reason: Annotated[str, typer.Option(help="Why")],
    until: Annotated[
        str | None, typer.Option(help="Resume date (YYYY-MM-DD); none: until resumed")
    ] = None,
) -> None:
    """Formally pause an onboarding: SLA clocks stop, no nudges."""

    async def go() -> None:
        req = _model(
            PauseRequest, by=by, reason=reason, resume_on=_when(until, "--until") if until else None
        )
        await _do_update(account, "pause", req, "paused")

    _run(go())


@app.command()
def resume(
    account: Annotated[str, typer.Argument(help="Account id")],
    by: Annotated[str, typer.Option(help="Who decided")],
    due: Annotated[
        list[str] | None,
        typer.Option(help="Revised deadline milestone=YYYY-MM-DD (repeatable)"),
    ] = None,
    reason: Annotated[str, typer.Option(help="Why")] = "",
) -> None:
    """Resume a pause (deadlines shift by the pause) or settle a stall with a new timeline."""

    async def go() -> None:
        revised: dict[str, datetime] = {}
        for item in due or []:
            milestone_id, sep, date = item.partition("=")
            if not sep or not milestone_id.strip() or not date.strip():
                raise CliError(f"--due: {item!r} is not milestone=YYYY-MM-DD")
            revised[milestone_id.strip()] = _when(date, f"--due {milestone_id.strip()}")
        req = _model(ResumeRequest, by=by, revised_due=revised, reason=reason)
        await _do_update(account, "resume", req, "resumed")

    _run(go())


@app.command("override-tier")
def override_tier(
    account: Annotated[str, typer.Argument(help="Account id")],
    tier: Annotated[Tier, typer.Argument(help="The new tier")],
    approver: Annotated[str, typer.Option(help="Manager who approved")],
    reason: Annotated[str, typer.Option(help="Why")],
) -> None:
    """Override the tier rule (recorded with approver and reason)."""
    _run(
        _do_update(
            account,
            "override_tier",
            _model(TierOverride, tier=tier, approver=approver, reason=reason),
            "tier overridden on",
        )
    )


@app.command()
def skip(
    account: Annotated[str, typer.Argument(help="Account id")],
    milestone_id: Annotated[str, typer.Argument(metavar="MILESTONE", help="Milestone id")],
    by: Annotated[str, typer.Option(help="Who decided")],
    reason: Annotated[str, typer.Option(help="Why the customer skips it")],
) -> None:
    """Skip a milestone the customer refuses (recorded with a risk flag)."""
    _run(
        _do_update(
            account,
            "skip_milestone",
            _model(SkipRequest, milestone_id=milestone_id, by=by, reason=reason),
            f"skipped {milestone_id} on",
        )
    )


@app.command()
def cancel(
    account: Annotated[str, typer.Argument(help="Account id")],
    by: Annotated[str, typer.Option(help="Who decided")],
    reason: Annotated[str, typer.Option(help="Why (churned, deal cancelled, ...)")],
) -> None:
    """End an onboarding (churn, cancelled deal)."""
    _run(_do_update(account, "cancel", _model(CancelRequest, by=by, reason=reason), "cancelled"))


# --------------------------------------------------------------------------- status


def _date(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d") if at else "-"


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _days(value: float | None) -> str:
    return "-" if value is None else f"{value:g} d"


def _relative(at: datetime, now: datetime) -> str:
    days = (at - now) / timedelta(days=1)
    if abs(days) < 1:
        hours = (at - now) / timedelta(hours=1)
        return f"in {hours:.0f} h" if hours >= 0 else f"{-hours:.0f} h ago"
    return f"in {days:.0f} d" if days >= 0 else f"{-days:.0f} d overdue"


_MARK = {
    MilestoneStatus.DONE: "[x]",
    MilestoneStatus.SKIPPED: "[-]",
    MilestoneStatus.IN_PROGRESS: "[~]",
    MilestoneStatus.NOT_STARTED: "[ ]",
}


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def render_waiting(s: OnboardingStatus) -> str:
    """An onboarding that product events started, still waiting for its deal."""
    counts = ", ".join(f"{k} x{v}" for k, v in sorted(s.event_counts.items())) or "none"
    until = _date(s.awaiting_deal_until) if s.awaiting_deal_until else "-"
    return "\n".join(
        [
            f"Account        {s.account_id}  {s.workflow_id}",
            f"State          {s.state.value}: product events came before the closed-won deal",
            f"Events so far  {counts}",
            f"Ends           {until} if no deal arrives",
        ]
    )


def render_status(s: OnboardingStatus, *, recent: int = 8) -> str:
    """The `status` query as plain text: header, plan checklist, escalations, audit."""
    now = s.as_of
    if s.tier is None or s.tier_decision is None:
        return render_waiting(s)
    score = "n/a" if s.health.score is None else f"{s.health.score:g}"
    ttv = s.ttv
    target = f" (target {ttv.target_days[0]}-{ttv.target_days[1]} d)" if ttv.target_days else ""
    if s.next_deadline:
        upcoming = [m for m in s.milestones if m.due_at == s.next_deadline]
        what = f" {upcoming[0].id}" if upcoming else ""
        deadline = f"{_date(s.next_deadline)}{what} ({_relative(s.next_deadline, now)})"
    else:
        deadline = "-"
    decision = s.tier_decision
    rule = f"{decision.reason} [{decision.clause}]"
    if s.tier is decision.tier:
        tier_line = f"{s.tier.value}: {rule}"
    else:
        last = s.tier_changes[-1] if s.tier_changes else None
        why = f" ({last.kind}: {last.reason})" if last else ""
        tier_line = f"{s.tier.value}{why}; assigned {decision.tier.value}: {rule}"
    header = [
        ["Account", f"{s.account_name} ({s.account_id})  {s.workflow_id}"],
        ["Tier", tier_line],
        ["State", s.state.value],
        ["Phase", s.phase.value if s.phase else "done"],
        ["Health", f"{score} ({s.health.band.value}), completion {s.completion_pct:g}%"],
        ["Owner", s.owner or "- (automated)"],
        ["ACV", usd(s.acv_usd)],
        [
            "TTV",
            f"handoff {_days(ttv.handoff_delay_days)} + setup {_days(ttv.setup_days)} + "
            f"activation {_days(ttv.activation_days)} = {_days(ttv.total_days)}{target}",
        ],
        ["Next deadline", deadline],
        ["Closed-won", _date(s.closed_won_at) if s.closed_won_at else "-"],
        ["Playbook", f"{s.playbook_version} ({s.playbook_hash or 'n/a'})"],
        ["As of", _stamp(now) + " UTC"],
    ]
    if s.tier_changes:
        header.append(
            [
                "Tier changes",
                "; ".join(
                    f"{_date(c.at)} {c.from_tier.value} -> {c.to_tier.value} "
                    f"({c.kind} by {c.by}: {c.reason})"
                    for c in s.tier_changes
                ),
            ]
        )
    if s.pause:
        until = f" until {_date(s.pause.resume_on)}" if s.pause.resume_on else ""
        header.append(
            ["Paused", f"since {_date(s.pause.since)}{until} by {s.pause.by}: {s.pause.reason}"]
        )
    if s.decision_required:
        header.append(["Decision", "REQUIRED: resume with a revised timeline, or pause"])
    if s.success_criteria:
        header.append(["Success criteria", "; ".join(s.success_criteria)])
    if s.risk_flags:
        header.append(["Risk flags", "; ".join(s.risk_flags)])
    lines = _table([[k + ":", v] for k, v in header], indent="")

    lines += ["", "Milestones"]
    rows = []
    for m in s.milestones:
        if m.status is MilestoneStatus.DONE:
            late = m.done_at is not None and m.done_at > m.due_at
            when = f"done {_date(m.done_at)}" + (" (late)" if late else "")
        elif m.status is MilestoneStatus.SKIPPED:
            when = "skipped"
        else:
            when = "OVERDUE" if m.overdue else _relative(m.due_at, now)
        credit = "-" if m.credit is None else f"{m.credit:g}"
        rows.append(
            [
                _MARK[m.status],
                m.phase.value,
                m.id,
                m.title,
                f"due {_date(m.due_at)}",
                when,
                f"credit {credit}",
            ]
        )
    lines += _table(rows)

    if s.escalations:
        shown = s.escalations[-recent:]
        lines += ["", f"Escalations (last {len(shown)} of {len(s.escalations)})"]
        lines += _table(
            [
                [
                    _stamp(e.at),
                    f"{e.tier.value}.{e.step_id}",
                    e.milestone_id or "",
                    "superseded by a tier change (not sent)"
                    if e.superseded
                    else "; ".join(e.actions),
                ]
                for e in shown
            ]
        )
    if s.rejected:
        shown_r = s.rejected[-recent:]
        lines += ["", f"Rejected messages (last {len(shown_r)})"]
        lines += _table([[_stamp(r.at), r.kind, r.ref, r.reason] for r in shown_r])
    if s.audit:
        shown_a = s.audit[-recent:]
        lines += ["", f"Audit (last {len(shown_a)} of {len(s.audit)})"]
        lines += _table([[_stamp(a.at), a.kind, a.by or "", a.detail] for a in shown_a])
    return "\n".join(lines)


async def _status(account: str, as_json: bool) -> None:
    account_id = _account_id(account)
    client = await connect()
    status = await _query_status(client, account_id)
    if as_json:
        typer.echo(status.model_dump_json(indent=2))
    else:
        typer.echo(render_status(status))
        typer.echo(f"\nUI: {ui_url(status.workflow_id, client.namespace)}")


@app.command()
def status(
    account: Annotated[str, typer.Argument(help="Account id")],
    as_json: Annotated[bool, typer.Option("--json", help="The status query as JSON")] = False,
) -> None:
    """Show one onboarding: tier and why, state, health, TTV, plan, escalations, audit."""
    _run(_status(account, as_json))


# --------------------------------------------------------------------------- list


def visibility_query(
    state: OnboardingState | None = None,
    tier: Tier | None = None,
    owner: str | None = None,
    running: bool = False,
) -> str:
    parts = [f'WorkflowType = "{WORKFLOW_TYPE}"']
    if state is not None:
        parts.append(f'{sa.ONBOARDING_STATE.name} = "{state.value}"')
    if tier is not None:
        parts.append(f'{sa.ONBOARDING_TIER.name} = "{tier.value}"')
    if owner:
        parts.append(f"{sa.CSM_OWNER.name} = {json.dumps(owner)}")
    if running:
        parts.append('ExecutionStatus = "Running"')
    return " AND ".join(parts)


async def _list(query: str, limit: int) -> None:
    client = await connect()
    rows = [["ACCOUNT", "STATE", "TIER", "PHASE", "HEALTH", "ACV", "OWNER", "NEXT DEADLINE"]]
    async for wf in client.list_workflows(query, limit=limit):
        attrs = wf.typed_search_attributes
        health = attrs.get(sa.ONBOARDING_HEALTH)
        acv = attrs.get(sa.ACV_USD)
        deadline = attrs.get(sa.NEXT_DEADLINE)
        state = attrs.get(sa.ONBOARDING_STATE) or "-"
        if wf.status is not None and wf.status.name not in ("RUNNING", "COMPLETED"):
            state = f"{state} ({wf.status.name.lower()})"
        rows.append(
            [
                wf.id.removeprefix("onboarding-"),
                state,
                attrs.get(sa.ONBOARDING_TIER) or "-",
                attrs.get(sa.ONBOARDING_PHASE) or "-",
                "-" if health is None else str(health),
                "-" if acv is None else usd(acv),
                attrs.get(sa.CSM_OWNER) or "-",
                _date(deadline),
            ]
        )
    if len(rows) == 1:
        typer.echo(f"no onboardings match: {query}", err=True)
        return
    for line in _table(rows, indent=""):
        typer.echo(line)


@app.command("list")
def list_(
    state: Annotated[OnboardingState | None, typer.Option(help="Only this state")] = None,
    tier: Annotated[Tier | None, typer.Option(help="Only this tier")] = None,
    owner: Annotated[str | None, typer.Option(help="Only this CSM")] = None,
    running: Annotated[bool, typer.Option("--running", help="Only running ones")] = False,
    query: Annotated[
        str | None, typer.Option(help="A raw visibility query instead of the filters")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many")] = 200,
) -> None:
    """List onboardings from the search attributes, one line each."""
    _run(_list(query or visibility_query(state, tier, owner, running), limit))


# --------------------------------------------------------------------------- demo


def demo_deals(now: datetime) -> list[tuple[ClosedWonDeal, str]]:
    """Sample accounts (default playbook numbers) and what each shows within a minute."""
    day = timedelta(days=1)

    def contacts(domain: str) -> list[dict[str, str]]:
        return [
            {"name": "Casey Champion", "email": f"casey@{domain}", "role": "champion"},
            {"name": "Sam Sponsor", "email": f"sam@{domain}", "role": "executive_sponsor"},
        ]

    specs: list[tuple[dict[str, Any], str]] = [
        (
            {
                "account_id": "demo-acme",
                "account_name": "Acme Corp",
                "acv_usd": 60000,
                "seats": 120,
                "stakeholder_count": 4,
                "configuration_hours": 6,
                "close_date": now - 6 * day,
                "contacts": contacts("acme.example"),
                "crm": {"source": "hubspot", "deal_id": "D-1001", "company_id": "C-1001"},
            },
            "high_touch, closed 6 days ago, no login: the day-5 CSM check-in fires at once",
        ),
        (
            {
                "account_id": "demo-globex",
                "account_name": "Globex",
                "acv_usd": 85000,
                "seats": 300,
                "needs_api_integration": True,
                "close_date": now - 31 * day,
                "contacts": contacts("globex.example"),
                "success_criteria": ["Nightly sync live for all regions"],
                "completed_milestones": [
                    {"milestone_id": "first_login", "at": now - 29 * day},
                    {"milestone_id": "kickoff_call", "at": now - 24 * day},
                ],
                "crm": {"source": "salesforce", "deal_id": "006-GLX", "company_id": "001-GLX"},
            },
            "high_touch, 31 days in without first value: activation missed, stall escalations",
        ),
        (
            {
                "account_id": "demo-initech",
                "account_name": "Initech",
                "acv_usd": 3000,
                "seats": 5,
                "close_date": now - 14 * day + timedelta(seconds=40),
                "contacts": contacts("initech.example")[:1],
            },
            "self_serve, 14 days without progress in ~40 s: upgrades itself to tech_touch",
        ),
        (
            {
                "account_id": "demo-umbrella",
                "account_name": "Umbrella Health",
                "acv_usd": 24000,
                "seats": 40,
                "configuration_hours": 1,
                "close_date": now - 5 * day,
                "contacts": contacts("umbrella.example"),
                "completed_milestones": [
                    {"milestone_id": "first_login", "at": now - 4 * day},
                    {"milestone_id": "kickoff_call", "at": now - 3 * day},
                ],
            },
            "tech_touch, migrated mid-flight with 2 milestones done, then paused by the demo",
        ),
        (
            {
                "account_id": "demo-hooli",
                "account_name": "Hooli",
                "acv_usd": 12000,
                "seats": 25,
                "configuration_hours": 0.5,
                "close_date": now,
                "contacts": contacts("hooli.example"),
            },
            "tech_touch, closed just now: a fresh plan with every deadline ahead",
        ),
    ]
    return [(ClosedWonDeal.model_validate(spec), note) for spec, note in specs]


async def _demo(playbook_path: Path) -> None:
    playbook = load_playbook(playbook_path)
    client = await connect()
    for deal, note in demo_deals(datetime.now(UTC)):
        try:
            handle, new = await start_onboarding(client, deal, playbook)
        except AlreadyOnboardedError as exc:
            typer.echo(f"{deal.workflow_id}: {exc}")
            continue
        if new:
            typer.echo(f"started {handle.id}: {note}")
        else:
            typer.echo(f"already running {handle.id}")
        if deal.account_id == "demo-umbrella" and new:
            try:
                await _update(
                    client,
                    deal.account_id,
                    "pause",
                    PauseRequest(
                        by="demo",
                        reason="customer froze the project during a re-org",
                        resume_on=datetime.now(UTC) + timedelta(days=21),
                    ),
                )
                typer.echo(f"  paused {handle.id} until in 21 days")
            except CliError as exc:
                typer.echo(f"  could not pause {handle.id}: {exc}", err=True)
    base = f"{ui_base_url()}/namespaces/{client.namespace}/workflows"
    typer.echo(f"\nUI: {base}")
    typer.echo("Watch: onboarding list; onboarding status demo-initech (tier change in ~40 s)")


@app.command()
def demo(
    playbook: Annotated[Path, typer.Option(help="Playbook TOML")] = DEFAULT_PLAYBOOK,
) -> None:
    """Start sample accounts across the tiers, backdated so escalations show at once."""
    _run(_demo(playbook))


if __name__ == "__main__":
    app()

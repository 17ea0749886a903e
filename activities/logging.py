"""structlog setup for the worker: JSON lines off a terminal, readable lines on one."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(json: bool | None = None) -> None:
    """Log to stderr; `json=None` picks JSON unless stderr is a terminal.

    Context bound with `structlog.contextvars` (activities bind `account_id` and
    `workflow_id`) is merged into every line. Calling it again just reconfigures.
    """
    if json is None:
        json = not sys.stderr.isatty()
    # ConsoleRenderer formats exceptions itself; JSON wants them as structured data.
    render: list[structlog.types.Processor] = (
        [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
        if json
        else [structlog.dev.ConsoleRenderer()]
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            *render,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )

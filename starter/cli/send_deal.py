"""`onboarding send-deal`: one signed closed-won deal to the ingress's `POST
/webhooks/deals`, as a CRM or an integration platform would send it (Standard Webhooks,
signed with the first of ONBOARDING_WEBHOOK_SECRETS)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from starter.cli.errors import CliError, run
from starter.cli.events import ingress_settings, post_signed, standard_webhook
from starter.settings import reveal


def deal_body(path: Path, closed_now: bool, now: datetime) -> bytes:
    """The deal file's JSON object as the request body; with `closed_now` its
    `close_date` is `now` (a sample file's date would have the ladder catch up at once)."""
    try:
        deal: Any = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise CliError(f"{path}: not JSON: {exc}") from None
    if not isinstance(deal, dict):
        raise CliError(f"{path}: must be one JSON object (a deal)")
    if closed_now:
        deal["close_date"] = now.astimezone(UTC).isoformat(timespec="seconds")
    return json.dumps(deal, separators=(",", ":")).encode()


def send_deal(
    file: Annotated[Path, typer.Argument(help="A deal as JSON, e.g. examples/deal.json")],
    closed_now: Annotated[
        bool, typer.Option("--closed-now", help="Set close_date to now (try a sample deal)")
    ] = False,
    url: Annotated[str, typer.Option(help="The HTTP ingress")] = "http://127.0.0.1:8000",
    webhook_id: Annotated[
        str | None, typer.Option(help="The idempotency key (default a new one)")
    ] = None,
) -> None:
    """Send one signed closed-won deal to the ingress, as a CRM would. Prints its answer:
    201 started, 200 already onboarding, 202 queued or waiting (see the README's
    *Deals*); a refusal names the field."""

    async def go() -> None:
        body = deal_body(file, closed_now, datetime.now(UTC))
        secrets = ingress_settings().webhook_secrets
        if not secrets:
            raise CliError(
                "ONBOARDING_WEBHOOK_SECRETS is not set: the ingress refuses unsigned deals"
            )
        message_id = webhook_id or f"msg_{uuid.uuid4().hex}"
        headers = {"Content-Type": "application/json"}
        setting = "ONBOARDING_WEBHOOK_SECRETS"
        headers.update(standard_webhook(reveal(secrets)[0], setting, body, message_id))
        await post_signed(url, "/webhooks/deals", body, headers)

    run(go())

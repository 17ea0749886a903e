"""`onboarding send-event`: one signed Segment-style product event to the ingress, as a
product would send it; `post_signed`, the signed POST it and `send-deal` share."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from starter.cli.calls import ANSWER_TIMEOUT
from starter.cli.errors import CliError, run, settings_error
from starter.cli.options import account_id_of, one_of
from starter.settings import IngressSettings, local_secrets_path


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


def ingress_settings() -> IngressSettings:
    """The ingress's settings; unset secrets come from the ones `onboarding up` generated
    for the local stack."""
    try:
        return IngressSettings(_env_file=local_secrets_path())
    except ValidationError as exc:
        raise settings_error(exc) from None


def standard_webhook(secret: str, setting: str, body: bytes, message_id: str) -> dict[str, str]:
    """Standard Webhooks headers signing `body` with `secret` (the first of `setting`)."""
    from standardwebhooks.webhooks import EmptyWebhookSecretError

    from starter.signatures import standard_webhook_headers

    try:
        return standard_webhook_headers(secret, body, message_id)
    except (ValueError, EmptyWebhookSecretError):  # ValueError: binascii.Error, not base64
        raise CliError(f"{setting}: the first secret is not whsec_ followed by base64") from None


def _signed_headers(body: bytes, message_id: str) -> dict[str, str]:
    """Sign as the ingress checks: Segment's X-Signature first, else Standard Webhooks."""
    from starter.settings import reveal
    from starter.signatures import sign_segment

    settings = ingress_settings()
    headers = {"Content-Type": "application/json"}
    if settings.segment_secrets:
        headers["X-Signature"] = sign_segment(reveal(settings.segment_secrets)[0], body)
    elif settings.events_webhook_secrets:
        secret = reveal(settings.events_webhook_secrets)[0]
        setting = "ONBOARDING_EVENTS_WEBHOOK_SECRETS"
        headers.update(standard_webhook(secret, setting, body, message_id))
    else:
        typer.echo(
            "warning: neither ONBOARDING_SEGMENT_SECRETS nor ONBOARDING_EVENTS_WEBHOOK_SECRETS "
            "is set: sending unsigned (an ingress with secrets refuses it)",
            err=True,
        )
    return headers


async def post_signed(url: str, path: str, body: bytes, headers: dict[str, str]) -> None:
    """POST `body` to the ingress at `url` + `path` and print its JSON answer; a refusal
    or an unreachable ingress is a CliError saying so."""
    import httpx

    endpoint = f"{url.rstrip('/')}{path}"
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
    call_type: Annotated[
        CallType,
        typer.Option(
            "--type", help="The Segment call type", parser=one_of(CallType, "a call type")
        ),
    ] = CallType.TRACK,
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
            account_id_of(account),
            call_type,
            event.strip() if event else None,
            dict(_property(item) for item in prop or []),
            user,
            message_id or str(uuid.uuid4()),
            datetime.now(UTC),
        )
        body = json.dumps(call, separators=(",", ":")).encode()
        await post_signed(url, "/events", body, _signed_headers(body, call["messageId"]))

    run(go())

"""Commands that act on one account's onboarding: start, milestone (a signal) and the
operator's updates (pause, resume, override-tier, skip, cancel, reassign)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import temporalio.client
import typer
from pydantic import BaseModel, ValidationError

from activities.client import connect
from activities.deals import inbound_deal, unknown_migrated_milestone
from activities.money import DEFAULT_FX_RATES, FxRates, load_fx_rates
from activities.starting import start_onboarding
from starter.cli.calls import UpdateRejected, query_status, signal, update
from starter.cli.errors import CliError, run, validation_line
from starter.cli.options import FX_RATES_OPTION, account_id_of, one_of
from starter.cli.reports import visibility_query
from starter.client import ui_url
from workflows import contract
from workflows.models import (
    CancelRequest,
    ClosedWonDeal,
    DealAcceptance,
    MilestoneReport,
    OnboardingStatus,
    OwnerReassignment,
    PauseRequest,
    Playbook,
    RealignmentGateDone,
    ResumeRequest,
    SkipRequest,
    StaffRole,
    SuccessPlanConfirmation,
    Tier,
    TierOverride,
    account_id_for,
    workflow_id_for,
)
from workflows.playbook import DEFAULT_PLAYBOOK, load_playbook

# A milestone report checks the plan first, but does not wait long for a worker to answer.
PLAN_CHECK_TIMEOUT = timedelta(seconds=5)


def _when(value: str, what: str) -> datetime:
    """A date (`2026-12-01`, midnight UTC) or an ISO 8601 datetime (naive = UTC)."""
    try:
        at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(
            f"{what}: {value!r} is not a date (YYYY-MM-DD or an ISO 8601 datetime)"
        ) from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _dates_by_milestone(items: list[str] | None, option: str) -> dict[str, datetime]:
    """Repeated `milestone=YYYY-MM-DD` options as {milestone id: datetime in UTC}."""
    dates: dict[str, datetime] = {}
    for item in items or []:
        milestone_id, sep, date = item.partition("=")
        if not sep or not milestone_id.strip() or not date.strip():
            raise CliError(f"{option}: {item!r} is not milestone=YYYY-MM-DD")
        dates[milestone_id.strip()] = _when(date, f"{option} {milestone_id.strip()}")
    return dates


def _model(factory: Callable[..., BaseModel], **fields: Any) -> Any:
    """Build a request model; a bad value becomes a one-line CliError."""
    try:
        return factory(**fields)
    except ValidationError as exc:
        raise CliError(validation_line(exc)) from None


# --------------------------------------------------------------------------- start


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
    unknown = unknown_migrated_milestone(deal, playbook)
    if unknown is not None:
        field, reason = unknown
        raise CliError(f"{path}: {field}: {reason}")
    return deal


def _print_started(
    handle_id: str, accepted: DealAcceptance, namespace: str, tier_line: str = ""
) -> None:
    if accepted.started:
        typer.echo(f"started {handle_id}{tier_line}")
    elif accepted.queued:
        typer.echo(f"queued behind the running onboarding {handle_id}: {accepted.detail}")
    else:
        typer.echo(f"already running {handle_id}: not started again")
    typer.echo(f"  UI: {ui_url(handle_id, namespace)}")


async def _start(file: Path, playbook_path: Path, fx_rates: Path) -> None:
    playbook = load_playbook(playbook_path)
    deal = _read_deal(file, playbook, load_fx_rates(fx_rates))
    client = await connect()
    handle, accepted = await start_onboarding(client, deal, playbook)
    from workflows.rules import decide_tier

    decision = decide_tier(deal, playbook)
    _print_started(
        handle.id, accepted, client.namespace, f" ({decision.tier.value}: {decision.reason})"
    )


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
    run(_start(file, playbook, fx_rates))


# --------------------------------------------------------------------------- milestone


def _default_by() -> str:
    return f"cli:{os.environ.get('USER') or 'unknown'}"


async def _milestone(
    account: str, milestone_id: str, event_id: str | None, at: str | None, status: str, by: str
) -> None:
    account_id = account_id_of(account)
    report = _model(
        MilestoneReport,
        milestone_id=milestone_id,
        event_id=event_id or f"cli:{milestone_id}:{status}",
        at=_when(at, "--at") if at else None,
        status=status,
        reported_by=by,
    )
    client = await connect()
    checked = await _in_plan(client, account_id, milestone_id)
    await signal(client, account_id, contract.MILESTONE_REACHED, report)
    note = "" if checked else " (not checked against the plan: no worker answered)"
    typer.echo(f"reported {milestone_id} {status} for {workflow_id_for(account_id)}{note}")


async def _in_plan(client: temporalio.client.Client, account_id: str, milestone_id: str) -> bool:
    """Refuse a milestone the onboarding's plan does not have (a typo would otherwise be
    "reported" and only show up later as a rejected message). False: not checked, because
    no worker answered in time (the signal still waits in the onboarding's history)."""
    try:
        st = await query_status(client, account_id, PLAN_CHECK_TIMEOUT)
    except CliError as exc:
        if "no answer" in str(exc):
            return False
        raise
    plan = [m.id for m in st.milestones]
    if plan and milestone_id not in plan:  # no plan yet: waiting for the deal, kept for it
        raise CliError(
            f"MILESTONE_ID: no milestone {milestone_id!r} in the plan of "
            f"{account_id} ({', '.join(plan)})"
        )
    return True


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
    run(_milestone(account, milestone_id, event_id, at, status, by or _default_by()))


# --------------------------------------------------------------------------- updates


def _print_update(verb: str, status: OnboardingStatus) -> None:
    tier = status.tier.value if status.tier else "none yet"
    typer.echo(
        f"{verb} {status.workflow_id}: state {status.state.value}, tier {tier}, "
        f"phase {status.phase.value if status.phase else 'done'}"
    )


async def _do_update(account: str, name: str, arg: BaseModel, verb: str) -> None:
    account_id = account_id_of(account)
    client = await connect()
    status = await update(client, account_id, name, arg)
    _print_update(verb, status)


async def _update_with(
    account: str, name: str, verb: str, factory: Callable[..., BaseModel], **fields: Any
) -> None:
    """Build the update's argument from `fields` and send it: inside `run`, so a bad
    value is one `error:` line like any other failure."""
    await _do_update(account, name, _model(factory, **fields), verb)


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
        await _do_update(account, contract.PAUSE, req, "paused")

    run(go())


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
        revised = _dates_by_milestone(due, "--due")
        req = _model(ResumeRequest, by=by, revised_due=revised, reason=reason)
        await _do_update(account, contract.RESUME, req, "resumed")

    run(go())


def override_tier(
    account: Annotated[str, typer.Argument(help="Account id")],
    tier: Annotated[Tier, typer.Argument(help="The new tier", parser=one_of(Tier, "a tier"))],
    approver: Annotated[str, typer.Option(help="Manager who approved")],
    reason: Annotated[str, typer.Option(help="Why")],
) -> None:
    """Override the tier rule (recorded with approver and reason)."""
    run(
        _update_with(
            account,
            contract.OVERRIDE_TIER,
            "tier overridden on",
            TierOverride,
            tier=tier,
            approver=approver,
            reason=reason,
        )
    )


def skip(
    account: Annotated[str, typer.Argument(help="Account id")],
    milestone_id: Annotated[str, typer.Argument(metavar="MILESTONE", help="Milestone id")],
    by: Annotated[str, typer.Option(help="Who decided")],
    reason: Annotated[str, typer.Option(help="Why the customer skips it")],
) -> None:
    """Skip a milestone the customer refuses (recorded with a risk flag)."""
    run(
        _update_with(
            account,
            contract.SKIP_MILESTONE,
            f"skipped {milestone_id} on",
            SkipRequest,
            milestone_id=milestone_id,
            by=by,
            reason=reason,
        )
    )


def cancel(
    account: Annotated[str, typer.Argument(help="Account id")],
    by: Annotated[str, typer.Option(help="Who decided")],
    reason: Annotated[str, typer.Option(help="Why (churned, deal cancelled, ...)")],
) -> None:
    """End an onboarding (churn, cancelled deal)."""
    run(_update_with(account, contract.CANCEL, "cancelled", CancelRequest, by=by, reason=reason))


def confirm_plan(
    account: Annotated[str, typer.Argument(help="Account id")],
    criterion: Annotated[list[str], typer.Option(help="A success criterion (repeatable)")],
    by: Annotated[str, typer.Option(help="Who on the customer's side confirmed")],
    target: Annotated[
        list[str] | None,
        typer.Option(help="Target date milestone=YYYY-MM-DD (repeatable); none: as proposed"),
    ] = None,
) -> None:
    """Record the customer's confirmed success plan: the provisional deadlines (high_touch,
    from pilot on) are re-based on its target dates and stand."""

    async def go() -> None:
        targets = _dates_by_milestone(target, "--target")
        req = _model(SuccessPlanConfirmation, criteria=criterion, target_dates=targets, by=by)
        await _do_update(account, contract.CONFIRM_SUCCESS_PLAN, req, "success plan confirmed on")

    run(go())


def realignment_gate(
    account: Annotated[str, typer.Argument(help="Account id")],
    gate: Annotated[
        str,
        typer.Argument(help="new_primary_contact, realignment_call or milestone_plan"),
    ],
    by: Annotated[str, typer.Option(help="Who reports it")],
    note: Annotated[str, typer.Option(help="What was agreed")] = "",
) -> None:
    """Report a gate of the re-alignment window a champion change opened as done."""
    run(
        _update_with(
            account,
            contract.REALIGNMENT_GATE_DONE,
            f"re-alignment gate {gate} done on",
            RealignmentGateDone,
            gate=gate,
            by=by,
            note=note,
        )
    )


async def _reassign(account: str | None, every: bool, **fields: Any) -> None:
    """One onboarding, or (`every`) each running one the CSM owns, by the `CsmOwner`
    search attribute; each one moved printed, then one `error:` line naming each one not
    moved and why."""
    req: OwnerReassignment = _model(OwnerReassignment, **fields)
    if every == (account is not None):
        raise CliError("give an ACCOUNT, or --every for each onboarding the person owns")
    if every and req.role is not StaffRole.CSM:
        raise CliError("--every: finds CSMs only (the CsmOwner search attribute)")
    client = await connect()
    if account is not None:
        accounts = [account_id_of(account)]
    else:
        query = visibility_query(owner=req.person, running=True)
        accounts = [account_id_for(wf.id) async for wf in client.list_workflows(query)]
        if not accounts:
            raise CliError(f"no running onboarding has {req.person} as its CSM")
    failed: dict[str, str] = {}  # account id -> why not
    for account_id in accounts:
        try:
            status = await update(client, account_id, contract.REASSIGN_OWNER, req)
        except UpdateRejected as exc:
            failed[account_id] = exc.reason
            continue
        except CliError as exc:  # no such onboarding, ended, no worker answered
            failed[account_id] = str(exc)
            continue
        now = status.specialist if req.role is StaffRole.IMPLEMENTATION_SPECIALIST else status.owner
        typer.echo(f"reassigned {status.workflow_id}: {req.role.value} {req.person} -> {now}")
    if len(accounts) == 1 and failed:
        [(account_id, why)] = failed.items()
        raise CliError(f"{account_id} not reassigned: {why}")
    if failed:
        whys = "; ".join(f"{a} ({why})" for a, why in failed.items())
        raise CliError(f"{len(failed)} of {len(accounts)} not reassigned: {whys}")


def reassign(
    person: Annotated[str, typer.Option(help="Who leaves: their roster id (email)")],
    by: Annotated[str, typer.Option(help="Who asks (CS ops)")],
    account: Annotated[str | None, typer.Argument(help="Account id; omit with --every")] = None,
    role: Annotated[
        StaffRole,
        typer.Option(
            help="The role they leave: csm or implementation_specialist",
            parser=one_of(StaffRole, "a role"),
        ),
    ] = StaffRole.CSM,
    reason: Annotated[str, typer.Option(help="Why (left the company, moved team)")] = "",
    every: Annotated[
        bool, typer.Option("--every", help="Each running onboarding the CSM owns")
    ] = False,
) -> None:
    """Move an onboarding from a person who leaves it to the roster's least-loaded
    eligible person (rules §7); audited, and the new person is told."""
    run(_reassign(account, every, person=person, role=role, by=by, reason=reason))

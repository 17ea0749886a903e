"""The `onboarding` command line as a user meets it: a bad value is one `error:` line on
stderr and an exit code, never a traceback; `status` explains one account, every part it
has and nothing it lacks, with a time to value that adds up (rules §3 (docs/rules.md));
`list` numbers an account's onboardings when it shows more than one; a refused
`reassign` says why in one line."""

from __future__ import annotations

import asyncio
import re
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from activities import Settings
from starter.cli import app
from starter.cli.render import render_status, ttv_text
from tests.support.deals import TIER_DEALS, make_deal
from tests.support.ingress import until
from tests.support.temporal import BIN, process_env
from workflows import presentation, progress
from workflows.formats import day_text
from workflows.models import (
    MilestoneStatus,
    OnboardingStatus,
    Phase,
    ProductView,
    ProgramView,
    QueuedDealView,
    RoleActivationView,
    SkipCheckView,
    Trigger,
    TtvBreakdown,
)
from workflows.playbook import load_playbook

DAY = timedelta(days=1)
PLAYBOOK = load_playbook()


def shown(text: str) -> list[str]:
    """The lines of a command's text, each with its runs of spaces folded to one."""
    return [" ".join(line.split()) for line in text.splitlines()]


def usage_error(result: Result) -> str:
    """A usage error as one line (typer draws a box around it under CliRunner; the console
    script prints `error: onboarding CMD: ...`, see `starter.cli.console`)."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", result.stderr).split())


# --------------------------------------------------------------------------- errors

UPDATES_WITH_A_BLANK_VALUE = [
    pytest.param(["pause", "northwind", "--by", "", "--reason", "y"], "by", id="pause"),
    pytest.param(["resume", "northwind", "--by", " "], "by", id="resume"),
    pytest.param(
        ["override-tier", "northwind", "tech_touch", "--approver", "", "--reason", "y"],
        "approver",
        id="override-tier",
    ),
    pytest.param(
        ["skip", "northwind", "first_login", "--by", "", "--reason", "y"], "by", id="skip"
    ),
    pytest.param(["cancel", "northwind", "--by", "", "--reason", "y"], "by", id="cancel"),
    pytest.param(
        ["confirm-plan", "northwind", "--criterion", "10 invoices", "--by", ""],
        "by",
        id="confirm-plan",
    ),
    pytest.param(
        ["realignment-gate", "northwind", "realignment_call", "--by", ""],
        "by",
        id="realignment-gate",
    ),
    pytest.param(["reassign", "northwind", "--person", "", "--by", "ops"], "person", id="reassign"),
]


@pytest.mark.parametrize(("args", "field"), UPDATES_WITH_A_BLANK_VALUE)
def test_every_update_refuses_a_blank_value_in_one_line(args: list[str], field: str) -> None:
    # Nothing listens on port 1: the value is refused before Temporal is asked.
    result = CliRunner().invoke(app, args, env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # typer.Exit: not an escaped CliError
    assert result.stderr == f"error: {field}: must not be blank\n"
    assert result.stdout == ""


def test_the_console_script_refuses_a_blank_approver_in_one_line(tmp_path: Path) -> None:
    """As the user ran it: one line on stderr, exit code 1, no traceback."""
    command = [str(BIN / "onboarding"), "override-tier", "northwind", "tech_touch"]
    command += ["--approver", "", "--reason", "y"]
    env = process_env(tmp_path, TEMPORAL_ADDRESS="127.0.0.1:1")

    ran = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    assert (ran.returncode, ran.stderr, ran.stdout) == (
        1,
        "error: approver: must not be blank\n",
        "",
    )


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (
            ["list", "--tier", "gold"],
            "'--tier': 'gold' is not a tier (high_touch, tech_touch, self_serve)",
        ),
        (
            ["list", "--state", "stuck"],
            "'--state': 'stuck' is not a state (awaiting_deal, active, paused, at_risk, "
            "completed, cancelled)",
        ),
        (
            ["override-tier", "northwind", "gold", "--approver", "a", "--reason", "y"],
            "'tier': 'gold' is not a tier (high_touch, tech_touch, self_serve)",
        ),
        (
            ["reassign", "northwind", "--person", "a@v.test", "--by", "ops", "--role", "boss"],
            "'--role': 'boss' is not a role (csm, implementation_specialist)",
        ),
        (
            ["import", "deals.csv", "--preset", "zoho"],
            "'--preset': 'zoho' is not a preset (hubspot, salesforce)",
        ),
        (
            ["send-event", "northwind", "--type", "page"],
            "'--type': 'page' is not a call type (track, identify, group)",
        ),
    ],
)
def test_a_value_not_among_an_options_choices_is_named_with_them(
    args: list[str], named: str
) -> None:
    result = CliRunner().invoke(app, args, env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})

    assert result.exit_code == 2
    assert f"Invalid value for {named}" in usage_error(result)
    assert "Value error" not in result.stderr


# --------------------------------------------------------------------------- status


@pytest.mark.parametrize(
    ("ttv", "line"),
    [
        pytest.param(
            TtvBreakdown(
                handoff_delay_days=1,
                setup_days=5,
                activation_days=3.5,
                total_days=9.5,
                target_days=(7, 14),
            ),
            "9.5 d = handoff 1 d + setup 5 d + activation 3.5 d (target 7-14 d)",
            id="every-mark-reached",
        ),
        pytest.param(
            TtvBreakdown(activation_days=0, total_days=1.42, target_days=(7, 14)),
            "1.42 d to first value (target 7-14 d); activation 0 d; handoff and setup not "
            "measured: first engagement not reached",
            id="first-value-without-an-engagement",
        ),
        pytest.param(
            TtvBreakdown(handoff_delay_days=0.5, total_days=4, target_days=(1, 7)),
            "4 d to first value (target 1-7 d); handoff 0.5 d; setup and activation not "
            "measured: system ready not reached",
            id="first-value-before-system-ready",
        ),
        pytest.param(
            TtvBreakdown(total_days=6, target_days=(7, 14)),
            "6 d to first value (target 7-14 d); handoff and setup not measured: first "
            "engagement not reached; activation not measured: system ready not reached",
            id="only-first-value",
        ),
        pytest.param(
            TtvBreakdown(handoff_delay_days=2, setup_days=3, target_days=(14, 21)),
            "first value not reached (target 14-21 d); so far handoff 2 d + setup 3 d",
            id="on-the-way",
        ),
        pytest.param(
            TtvBreakdown(target_days=(14, 21)),
            "first value not reached (target 14-21 d)",
            id="nothing-yet",
        ),
        pytest.param(
            TtvBreakdown(handoff_delay_days=3, setup_days=0, activation_days=4, total_days=5),
            "5 d to first value; handoff 3 d, setup 0 d, activation 4 d (marks reached out of "
            "order: the parts overlap)",
            id="system-ready-before-the-engagement",
        ),
    ],
)
def test_the_ttv_line_adds_up_or_says_what_is_not_measured(ttv: TtvBreakdown, line: str) -> None:
    assert ttv_text(ttv) == line


def a_status(now: datetime, **fields: Any) -> OnboardingStatus:
    """The status of a high_touch onboarding in New York that closed 3 days before `now`,
    with `fields` set by hand."""
    deal = make_deal(
        close_date=now - 3 * DAY,
        time_zone="America/New_York",
        country="US",
        **TIER_DEALS["high_touch"],
    )
    o, _ = progress.begin(deal, PLAYBOOK, None, now - 3 * DAY, lambda: True)
    return presentation.status(o, deal.workflow_id, now).model_copy(update=fields)


def test_status_shows_each_part_an_onboarding_has() -> None:
    now = datetime.now(UTC)
    session, skipped = now + 5 * DAY, now - DAY
    st = a_status(
        now,
        owner="csm-1@vendor.test",
        specialist="sam@vendor.test",
        onboarding_number=2,
        programs=[
            ProgramView(
                program="onboarding_webinar",
                title="Weekly onboarding webinar",
                invited_at=now - 2 * DAY,
                session_at=session,
                attended_at=None,
                attendances=0,
            )
        ],
        roles=[
            RoleActivationView(
                role="admin", title="admin", users=1, needed=1, activated_at=now - DAY
            ),
            RoleActivationView(
                role="end_user", title="end user", users=2, needed=3, activated_at=None
            ),
        ],
        products=[
            ProductView(
                id="crm",
                name="CRM",
                licensed_seats=10,
                active_users=5,
                adoption=0.5,
                depends_on=[],
                threshold=0.6,
            ),
            ProductView(
                id="billing",
                name="Billing",
                licensed_seats=4,
                active_users=0,
                adoption=0,
                depends_on=["crm"],
                waiting_at=Phase.GO_LIVE,
                waiting_since=now - DAY,
                predecessor_adoption={"crm": 0.5},
                threshold=0.6,
            ),
        ],
        skip_checks=[
            SkipCheckView(
                milestone_id="first_training",
                title="First training session completed",
                skipped_at=skipped,
                due_at=skipped + 14 * DAY,
                planned_at=skipped + 14 * DAY,
            )
        ],
        queued_deals=[
            QueuedDealView(deal="hubspot:9100000007", account_name="Acme Corp", queued_at=now)
        ],
    )
    first_login = st.milestones[0]
    local_due = first_login.due_at.astimezone(ZoneInfo("America/New_York")).strftime(
        "%Y-%m-%d %H:%M"
    )

    lines = shown(render_status(st))

    assert (
        f"Account: Acme Corp ({st.account_id}) {st.workflow_id} (the account's onboarding #2)"
        in lines
    )
    assert "Owner: csm-1@vendor.test; implementation specialist sam@vendor.test" in lines
    assert "Time zone: America/New_York (deadlines in its local time)" in lines
    assert f"Next deadline: {local_due} first_login (in 2 d)" in lines
    assert (
        "Provisional: deadlines wait for the customer's confirmed success plan "
        "(onboarding confirm-plan records it)"
    ) in lines
    assert (
        f"Programs: Weekly onboarding webinar: invited {day_text(now - 2 * DAY)} to "
        f"{session.strftime('%Y-%m-%d %H:%M')} UTC, not attended yet"
    ) in lines
    assert "Roles: admin 1/1 ✓, end user 2/3; first value by roles: not yet" in lines
    assert (
        f"Queued deals: hubspot:9100000007 (Acme Corp, queued {day_text(now)}): each starts when "
        "the one before finishes"
    ) in lines
    assert (
        f"[ ] kickoff first_login First login / account activation due {local_due} in 2 d credit -"
    ) in lines
    technical_setup = next(line for line in lines if " technical_setup " in line)
    assert "provisional: waits for the success plan" in technical_setup
    assert "OVERDUE" not in technical_setup
    products = lines.index("Products")
    assert lines[products + 1 : products + 3] == [
        "crm CRM adoption 50% (5/10 seats)",
        f"billing Billing adoption 0% (0/4 seats) waits at the go_live gate since "
        f"{day_text(now - DAY)}: crm adoption 50% (threshold 60%)",
    ]
    slas = lines.index("SLAs to come")
    handoff_sla = next(s for s in st.sla_steps if s.trigger is Trigger.NO_HANDOFF)
    assert lines[slas + 1] == (
        f"handoff_late no_handoff 24 business hours due "
        f"{handoff_sla.due_local.replace(' America/New_York', '')}"
    )
    assert lines[slas + 1].endswith(":00, in business hours")
    checks = lines.index("Skip net checks")
    assert lines[checks + 1] == (
        f"First training session completed (skipped {day_text(skipped)}): checked "
        f"{day_text(skipped + 14 * DAY)}"
    )


def test_status_leaves_out_what_an_onboarding_does_not_have() -> None:
    now = datetime.now(UTC)
    st = a_status(
        now,
        time_zone=None,
        schedule_provisional=False,
        sla_steps=[],
        roles=[],
        milestones=[
            m.model_copy(update={"due_local": None, "provisional": False})
            for m in a_status(now).milestones
        ],
    )

    text = render_status(st)

    for absent in (
        "#",
        "implementation specialist",
        "Time zone",
        "Provisional",
        "Programs",
        "Roles",
        "Queued deals",
        "Products",
        "SLAs to come",
        "Skip net checks",
    ):
        assert absent not in text, absent
    first_login = st.milestones[0]
    assert f"due {first_login.due_at.strftime('%Y-%m-%d')} in 2 d" in " ".join(text.split())


def test_done_and_held_milestones_and_a_reached_role_rule_show_as_they_stand() -> None:
    now = datetime.now(UTC)
    base = a_status(now)
    done = base.milestones[0].model_copy(
        update={"status": MilestoneStatus.DONE, "done_at": now - DAY}
    )
    held = base.milestones[1].model_copy(update={"held": True, "overdue": True})
    st = base.model_copy(
        update={
            "milestones": [done, held, *base.milestones[2:]],
            "roles": [
                RoleActivationView(
                    role="admin", title="admin", users=1, needed=1, activated_at=now - DAY
                )
            ],
            "first_value_by_roles_at": now - DAY,
            "programs": [
                ProgramView(
                    program="office_hours",
                    title="Office hours",
                    invited_at=None,
                    session_at=None,
                    attended_at=now - DAY,
                    attendances=2,
                )
            ],
        }
    )
    yesterday = (now - DAY).strftime("%Y-%m-%d")

    lines = shown(render_status(st))

    assert f"Roles: admin 1/1 ✓; first value by roles: {yesterday}" in lines
    assert f"Programs: Office hours, attended {yesterday} (x2)" in lines
    assert any("first_login" in line and f"done {yesterday}" in line for line in lines)
    # A gate its product holds waits, past its day or not (rules §6.2): never OVERDUE.
    kickoff = next(line for line in lines if " kickoff_call " in line)
    assert "held: its product waits" in kickoff and "OVERDUE" not in kickoff


# --------------------------------------------------------------------------- on a server


def cli_env(dev_env: WorkflowEnvironment, tmp_path: Path) -> dict[str, str]:
    return {
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": dev_env.client.namespace,
        "TEMPORAL_CONFIG_FILE": str(tmp_path / "no-such-temporal.toml"),
    }


def deal_file(tmp_path: Path, account_id: str, deal_id: str, **fields: Any) -> Path:
    path = tmp_path / f"{deal_id}.json"
    deal = make_deal(
        account_id,
        close_date=datetime.now(UTC),
        crm={"source": "hubspot", "deal_id": deal_id},
        **fields,
    )
    path.write_text(deal.model_dump_json(), encoding="utf-8")
    return path


async def test_list_numbers_an_accounts_onboardings_and_reassign_says_why_not(
    dev_env: WorkflowEnvironment, dev_worker: Settings, tmp_path: Path
) -> None:
    account = f"cli-{uuid.uuid4().hex[:8]}"
    env = cli_env(dev_env, tmp_path)

    async def onboarding(*args: str) -> Result:
        # In a thread: the command runs its own event loop while this one runs the worker.
        return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)

    first = await onboarding("start", "--file", str(deal_file(tmp_path, account, "9001")))
    assert first.exit_code == 0, first.output
    cancelled = await onboarding("cancel", account, "--by", "ops", "--reason", "deal cancelled")
    assert cancelled.exit_code == 0, cancelled.output
    handle = dev_env.client.get_workflow_handle(f"onboarding-{account}")
    await handle.result(follow_runs=False)  # the run ends after its final record is written
    expansion = deal_file(tmp_path, account, "9002", deal_type="expansion")
    second = await onboarding("start", "--file", str(expansion))
    assert second.stdout.startswith(f"started onboarding-{account}"), second.output

    async def owner() -> str | None:
        return (await handle.query("status", result_type=OnboardingStatus)).owner

    csm = await until(owner)
    assert csm in dev_worker.csm_roster

    async def listed() -> list[str]:
        shown_now = await onboarding("list", "--query", f'WorkflowId = "onboarding-{account}"')
        # (stdout also carries the in-process worker's log lines)
        lines = [x for x in shown(shown_now.stdout) if x.startswith(("ACCOUNT ", account))]
        # (visibility is eventually consistent: until both runs show their state now)
        return lines if len(lines) == 3 and f"{account} #2 active" in lines[1] else []

    lines = await until(listed)
    assert lines[0].startswith("ACCOUNT # STATE TIER")
    assert [line.split()[:3] for line in lines[1:]] == [
        [account, "#2", "active"],
        [account, "#1", "cancelled"],
    ]

    refused = await onboarding("reassign", account, "--person", "nobody@vendor.test", "--by", "ops")

    assert refused.exit_code == 1
    assert [line for line in refused.stderr.splitlines() if line] == [
        f"error: {account} not reassigned: person: nobody@vendor.test is not this "
        f"onboarding's csm ({csm} is)"
    ]
    assert f"reassigned onboarding-{account}" not in refused.stdout
    assert await owner() == csm

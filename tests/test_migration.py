"""Migrating running onboardings to a new playbook version (docs/rules.md §2, *Migrating
to a new playbook version*): who may move and why not, the rebuilt plan (credit kept,
renamed milestones carried over), and the real workflow acting on the new plan."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

import workflows.progress as rule
from activities import Settings
from activities.starting import start_onboarding
from activities.temporal_errors import update_rejection
from starter.cli import app
from starter.cli.calls import query_status
from tests.support.deals import TIER_DEALS, make_deal
from tests.support.onboardings import DUE_DAYS, Onboardings, fresh_progress, status, until
from workflows import contract
from workflows.models import (
    MilestoneReport,
    MilestoneStatus,
    Playbook,
    PlaybookMigration,
    Tier,
)
from workflows.onboarding import AccountOnboarding
from workflows.playbook import DEFAULT_PLAYBOOK, load_playbook, parse_playbook
from workflows.progress import checks, migration

DAY = timedelta(days=1)
T0 = datetime(2026, 1, 5, tzinfo=UTC)  # pure tests only: the workflow test reads its clock
TECH = Tier.TECH_TOUCH


def next_version(
    renamed: dict[str, str] | None = None, due: dict[str, int] | None = None
) -> Playbook:
    """The default playbook as version 2027.1, with milestones renamed (every reference
    to them too) and tech_touch due days moved (`{"data_import": 17}`)."""
    return parse_playbook(next_version_text(renamed, due), "next.toml")


def next_version_text(
    renamed: dict[str, str] | None = None, due: dict[str, int] | None = None
) -> str:
    """`next_version`'s TOML."""
    text = DEFAULT_PLAYBOOK.read_text()
    text = re.sub(r'^version = ".*"$', 'version = "2027.1"', text, count=1, flags=re.M)
    for milestone_id, days in (due or {}).items():
        block = text.index(f'id = "{milestone_id}"')
        at = text.index("tech_touch = ", block)
        end = text.index(" ", at + len("tech_touch = "))
        text = text[:at] + f"tech_touch = {days}" + text[end:].lstrip("0123456789")
    for old, new in (renamed or {}).items():
        text = text.replace(f'"{old}"', f'"{new}"')
    return text


CURRENT = parse_playbook(DEFAULT_PLAYBOOK.read_text(), "default.toml")
NEXT = next_version({"first_training": "training_101"}, {"data_import": 17})


def tech_touch(done: tuple[str, ...] = (), at: float = 2) -> rule.Onboarding:
    """A tech_touch onboarding on the current playbook closed at T0, with `done` reached
    on day `at`."""
    deal = make_deal("acme", close_date=T0, **TIER_DEALS["tech_touch"])
    progress = fresh_progress(CURRENT, TECH, T0)
    for m in progress.milestones:
        if m.id in done:
            m.status, m.done_at = MilestoneStatus.DONE, T0 + at * DAY
    return rule.Onboarding(deal, CURRENT, progress)


def move(mapping: dict[str, str], playbook: Playbook = NEXT) -> PlaybookMigration:
    return PlaybookMigration(playbook=playbook, mapping=mapping, by="ops", reason="2027 plan")


@pytest.mark.parametrize(
    ("playbook", "mapping", "done", "reason"),
    [
        (CURRENT, {}, (), f"playbook: already on 2026.12.3 (hash {CURRENT.content_hash})"),
        (
            NEXT,
            {},
            (),
            "milestones.first_training: not in playbook 2027.1 for tech_touch; map it",
        ),
        (
            NEXT,
            {"first_training": "training_1"},
            (),
            "mapping.first_training: 'training_1' is not a milestone of playbook 2027.1",
        ),
        (
            NEXT,
            {"first_trainin": "training_101"},
            (),
            "mapping.first_trainin: not a milestone of playbook 2026.12.3 (the onboarding's)",
        ),
        (
            NEXT,
            {"first_training": "training_101", "kickoff_call": "training_101"},
            (),
            "mapping: kickoff_call and first_training would both become training_101",
        ),
        (
            next_version({"first_training": "training_101"}),
            {"first_training": "kickoff_call"},
            ("kickoff_call",),
            "mapping: kickoff_call and first_training would both become kickoff_call",
        ),
        (
            CURRENT.model_copy(update={"content_hash": ""}),
            {},
            (),
            "playbook.content_hash: empty; send the playbook as the loader reads it",
        ),
    ],
    ids=[
        "same",
        "unmapped",
        "unknown_target",
        "unknown_source",
        "two_into_one",
        "onto_own",
        "no_hash",
    ],
)
def test_a_migration_is_refused_naming_the_field_and_the_reason(
    playbook: Playbook, mapping: dict[str, str], done: tuple[str, ...], reason: str
) -> None:
    with pytest.raises(ValueError) as err:
        checks.playbook_migration(tech_touch(done), move(mapping, playbook))
    assert str(err.value) == reason


def test_a_done_milestone_needs_no_mapping_and_keeps_its_credit() -> None:
    o = tech_touch(("first_login", "first_training"))
    checks.playbook_migration(o, move({}))  # first_training is done: kept as it is
    moved, _ = migration.migrate(o, move({}), T0 + 10 * DAY, lambda: True)
    plan = {m.id: m for m in moved.progress.milestones}
    assert plan["first_training"].status is MilestoneStatus.DONE  # kept, with its credit
    assert plan["training_101"].status is MilestoneStatus.NOT_STARTED  # the new plan's gate


def test_the_rebuilt_plan_keeps_credit_and_carries_mapped_milestones() -> None:
    o = tech_touch(("first_login", "kickoff_call", "first_training"), at=5)
    before = {m.id: replace(m) for m in o.progress.milestones}
    health = o.health(T0 + 10 * DAY)
    now = T0 + 10 * DAY

    moved, changes = migration.migrate(
        o, move({"first_training": "training_101"}), now, lambda: True
    )

    p = moved.progress
    plan = {m.id: m for m in p.milestones}
    assert moved.playbook == NEXT  # its content (the process may share an equal copy)
    assert "first_training" not in plan
    training = plan["training_101"]
    assert (training.status, training.done_at) == (MilestoneStatus.DONE, T0 + 5 * DAY)
    assert training.due_at == before["first_training"].due_at  # earned on that deadline
    assert training.title == "First training session completed"
    assert plan["first_login"] == before["first_login"]
    assert plan["data_import"].due_at == T0 + 17 * DAY  # the new plan's day, from closed-won
    assert plan["data_import"].revision == before["data_import"].revision + 1
    assert plan["technical_setup"].due_at == T0 + DUE_DAYS[TECH]["technical_setup"] * DAY
    assert moved.health(now) == health  # nothing earned is lost
    [entry] = [a for a in changes.audit if a.kind == "playbook_migrated"]
    assert entry.by == "ops"
    assert entry.detail == (
        f"2026.12.3 (hash {CURRENT.content_hash}) -> 2027.1 (hash {NEXT.content_hash}): "
        "first_training -> training_101 (renamed); data_import re-dated "
        f"{(T0 + 21 * DAY).date()} -> {(T0 + 17 * DAY).date()}; 2027 plan"
    )


def test_steps_already_done_stay_done_and_passed_ones_are_recorded_not_fired() -> None:
    o = tech_touch()
    p = o.progress
    p.fired.append("tech_touch.no_login_email")  # ran on day 3
    now = T0 + 18 * DAY  # data_import's new deadline (day 17) has passed, the old (21) not
    moved, changes = migration.migrate(
        o, move({"first_training": "training_101"}), now, lambda: True
    )
    overdue = [e for e in p.escalations if e.milestone_id == "data_import"]
    assert [(e.step_id, e.superseded, e.due_at) for e in overdue] == [
        ("overdue_nudge", True, T0 + 17 * DAY)
    ]
    assert not changes.fired and not changes.effects  # nothing is sent for it
    assert p.fired.count("tech_touch.no_login_email") == 1
    assert all(s.at > now for s in moved.steps())


def test_the_plan_diff_says_what_moves() -> None:
    o = tech_touch()
    before = [replace(m) for m in o.progress.milestones]
    renamed = migration.renamed_ids(o, move({"first_training": "training_101"}))
    assert renamed == {"first_training": "training_101"}
    moved, _ = migration.migrate(o, move({"first_training": "training_101"}), T0, lambda: True)
    planned = migration.planned_ids(moved, NEXT)
    diff = migration.plan_diff(before, moved.progress.milestones, renamed, planned)
    assert diff.lines() == [
        "first_training -> training_101 (renamed)",
        "data_import re-dated 2026-01-26 -> 2026-01-22",
    ]


# --------------------------------------------------------------------------- the workflow


async def test_a_running_onboarding_moves_to_the_new_version_and_acts_on_it(
    onboardings: Onboardings,
) -> None:
    """Started on the default playbook, migrated on day 10 to a version that moves
    data_import's deadline from day 21 to day 17 and renames first_training: the
    overdue step comes on day 17 and not on day 21, the training done on day 5 keeps its
    credit under its new id, the audit says so; a refused migration changes nothing."""
    closed = await onboardings.now()
    handle = await onboardings.start(make_deal(close_date=closed, **TIER_DEALS["tech_touch"]))
    await onboardings.days_later(5)
    for milestone_id in ("first_login", "kickoff_call", "first_training"):
        report = MilestoneReport(milestone_id=milestone_id, event_id=f"ev-{milestone_id}")
        await handle.signal(AccountOnboarding.milestone_reached, report)
    await until(handle, lambda st: st.completion_pct > 0)
    await onboardings.days_later(5)
    before = await status(handle)

    unmapped = next_version({"team_adoption": "teams_live"})
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(AccountOnboarding.migrate_playbook, move({}, unmapped))
    assert update_rejection(err.value) == (
        "milestones.team_adoption: not in playbook 2027.1 for tech_touch; map it"
    )
    assert (await status(handle)).model_dump(exclude={"as_of"}) == before.model_dump(
        exclude={"as_of"}
    )

    st = await handle.execute_update(
        AccountOnboarding.migrate_playbook, move({"first_training": "training_101"})
    )
    assert (st.playbook_version, st.playbook_hash) == ("2027.1", NEXT.content_hash)
    training = next(m for m in st.milestones if m.id == "training_101")
    was = next(m for m in before.milestones if m.id == "first_training")
    assert (training.status, training.done_at, training.credit) == (
        MilestoneStatus.DONE,
        was.done_at,
        was.credit,
    )
    assert st.health == before.health
    [entry] = [a for a in st.audit if a.kind == "playbook_migrated"]
    assert entry.detail.startswith(
        f"2026.12.3 (hash {CURRENT.content_hash}) -> 2027.1 (hash {NEXT.content_hash}): "
    )
    assert "first_training -> training_101 (renamed)" in entry.detail

    await onboardings.days_later(30 - 10)
    st = await status(handle)
    overdue = {
        e.milestone_id: round((e.due_at - closed) / DAY, 2)
        for e in st.escalations
        if e.step_id == "overdue_nudge" and not e.superseded
    }
    assert overdue["data_import"] == 17  # the new day, not the old 21
    assert [e for e in st.escalations if e.milestone_id == "data_import"][-1].due_at == (
        closed + 17 * DAY
    )
    nudges = [r for r in onboardings.sent(st.account_id) if "overdue_nudge:data_import" in r["key"]]
    assert len(nudges) == 1


# --------------------------------------------------------------------------- the command


async def test_the_bulk_command_migrates_a_query_and_its_dry_run_sends_nothing(
    dev_env: WorkflowEnvironment, dev_worker: Settings, tmp_path: Path
) -> None:
    """Three running onboardings on the real dev server, one already on the new version:
    the dry run shows each plan's diff and the simulated difference and changes nothing;
    without the mapping each is refused with the reason; with it, migrated."""
    client, run = dev_env.client, uuid.uuid4().hex[:6]
    playbook = load_playbook()
    a, b, c = (f"mig-{run}-{x}" for x in "abc")
    closed = datetime.now(UTC) - 2 * DAY
    for account in (a, b, c):
        await start_onboarding(client, make_deal(account, close_date=closed), playbook)
    path = tmp_path / "next.toml"
    path.write_text(next_version_text({"first_training": "training_101"}, {"data_import": 17}))
    new = load_playbook(path)
    await client.get_workflow_handle(f"onboarding-{c}").execute_update(
        contract.MIGRATE_PLAYBOOK,
        PlaybookMigration(
            playbook=new, mapping={"first_training": "training_101"}, by="ops", reason="early"
        ),
    )
    ids = ", ".join(f'"onboarding-{x}"' for x in (a, b, c))
    query = f"WorkflowId IN ({ids})"
    for _ in range(100):  # visibility is eventually consistent
        if (await client.count_workflows(query)).count == 3:
            break
        await asyncio.sleep(0.2)
    env = {
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": client.namespace,
        "TEMPORAL_CONFIG_FILE": str(tmp_path / "no-such-temporal.toml"),
    }

    def onboarding(*args: str) -> Result:
        base = ["migrate-playbook", "--playbook", str(path), "--by", "ops", "--reason", "2027"]
        return CliRunner().invoke(app, base + list(args), env=env)

    async def versions() -> list[str]:
        return [(await query_status(client, x)).playbook_version for x in (a, b, c)]

    # In a thread: the command runs its own event loop while this one runs the worker.
    dry = await asyncio.to_thread(
        onboarding, "--query", query, "--map", "first_training=training_101", "--dry-run"
    )
    assert dry.exit_code == 0, dry.output
    out = dry.stdout
    for account in (a, b):
        assert f"would migrate {account} (tech_touch): first_training -> training_101 " in out
    assert "data_import re-dated" in out and "  simulated: escalations " in out
    assert "would migrate 2 · already on it 1 · refused 0 · failed 0" in out.splitlines()
    assert "all 2" in out  # the summary table
    assert "dry run: migrating to 2027.1" in dry.stderr  # the progress bar
    assert await versions() == ["2026.12.3", "2026.12.3", "2027.1"]  # nothing sent

    refused = await asyncio.to_thread(onboarding, "--query", query)
    assert refused.exit_code == 1
    assert "migrated 0 · already on it 1 · refused 2 · failed 0" in refused.stdout
    reason = "milestones.first_training: not in playbook 2027.1 for tech_touch; map it"
    assert f"  refused {a}: {reason}" in refused.stdout.splitlines()
    assert await versions() == ["2026.12.3", "2026.12.3", "2027.1"]

    done = await asyncio.to_thread(onboarding, a, b, "--map", "first_training=training_101")
    assert done.exit_code == 0, done.output
    assert "migrated 2 · already on it 0 · refused 0 · failed 0" in done.stdout.splitlines()
    assert f"migrated {a} (tech_touch): 2026.12.3 (hash " in done.stdout
    assert await versions() == ["2027.1", "2027.1", "2027.1"]

"""The playbook simulator (docs/rules.md, *Simulating a playbook change*): it decides as
the real workflow does, a moved ladder step changes exactly what it implies, and its
command prints the figures side by side."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from starter.cli import app
from starter.simulation.cohort import sample_cohort
from starter.simulation.compare import figures, run
from starter.simulation.engine import Outcome, simulate
from starter.simulation.model import BehaviourError, BehaviourModel, load_model
from tests.support.onboardings import Onboardings, status
from workflows.models import ClosedWonDeal, OnboardingStatus, Playbook, Tier
from workflows.onboarding import AccountOnboarding
from workflows.playbook import DEFAULT_PLAYBOOK, parse_playbook
from workflows.rules import decide_tier

DAY = timedelta(days=1)
SEED = 3
DAYS = 120


def moved_step_playbook(days: int) -> Playbook:
    """The default playbook with tech_touch's `stall_outreach` (no progress for 14 days)
    moved to `days`."""
    text = DEFAULT_PLAYBOOK.read_text()
    at = text.index("days = 14", text.index('id = "stall_outreach"'))
    return parse_playbook(text[:at] + f"days = {days}" + text[at + len("days = 14") :])


def cohort_by_tier(playbook: Playbook, per_tier: int, close: datetime) -> list[ClosedWonDeal]:
    """`per_tier` sample deals of each tier, all closed at `close`."""
    picked: list[ClosedWonDeal] = []
    for deal in sample_cohort(80, SEED, close, playbook):
        tier = decide_tier(deal, playbook).tier
        if sum(decide_tier(d, playbook).tier is tier for d in picked) < per_tier:
            picked.append(deal.model_copy(update={"close_date": close}))
    return picked


def decisions(
    closed: datetime, escalations: list[Any], tier_changes: list[Any], milestones: list[Any]
) -> dict[str, Any]:
    """What the onboarding decided, in days after closed-won: every ladder step recorded
    (tier, step, milestone, when it came due, fired or only recorded), every tier change
    and every milestone's status and when it was reached."""

    def day(at: datetime | None) -> float | None:
        return None if at is None else round((at - closed) / DAY, 4)

    return {
        "escalations": [
            (e.tier.value, e.step_id, e.milestone_id, day(e.due_at), e.superseded, e.repeats)
            for e in escalations
        ],
        "tier_changes": [
            (c.from_tier.value, c.to_tier.value, c.kind, round(day(c.at) or 0, 2))
            for c in tier_changes
        ],
        "milestones": sorted((m.id, m.status.value, day(m.done_at)) for m in milestones),
    }


def simulated(outcome: Outcome) -> dict[str, Any]:
    p = outcome.progress
    closed = outcome.deal.close_date
    return decisions(closed, p.escalations, p.tier_changes, p.milestones) | {
        "completed": p.finished_at is not None
    }


def real(st: OnboardingStatus, closed: datetime) -> dict[str, Any]:
    return decisions(closed, st.escalations, st.tier_changes, st.milestones) | {
        "completed": st.finished_at is not None
    }


# --------------------------------------------------------------------------- fidelity


async def test_the_real_workflow_decides_exactly_as_the_simulator(
    onboardings: Onboardings,
) -> None:
    """A sample of the cohort, every tier, through the real workflow on the time-skipping
    server: its customers report their milestones at the simulated times, and every
    escalation, tier change and completion comes out as the simulator said."""
    playbook, model = onboardings.playbook, BehaviourModel()
    closed = await onboardings.now()
    deals = cohort_by_tier(playbook, 4, closed)
    outcomes = [simulate(d, playbook, model, SEED, DAYS) for d in deals]
    assert {decide_tier(d, playbook).tier for d in deals} == set(Tier)
    # The sample is worth comparing: tier changes, escalations the customer answered,
    # onboardings completed and not.
    assert any(o.progress.tier_changes for o in outcomes)
    assert any("after" in r.reported_by for o in outcomes for r in o.reports)
    assert {o.progress.finished_at is None for o in outcomes} == {True, False}

    handles = {d.account_id: await onboardings.start(d) for d in deals}
    reports = sorted(
        ((r.at, o.deal.account_id, r) for o in outcomes for r in o.reports if r.at is not None),
        key=lambda x: x[0],
    )
    for at, account_id, report in reports:
        if (wait := at - await onboardings.now()) > timedelta(0):
            await onboardings.env.sleep(wait)
        await handles[account_id].signal(AccountOnboarding.milestone_reached, report)
    await onboardings.env.sleep(closed + DAYS * DAY - await onboardings.now())

    for deal, outcome in zip(deals, outcomes, strict=True):
        assert real(await status(handles[deal.account_id]), closed) == simulated(outcome), (
            deal.account_id
        )


# --------------------------------------------------------------------------- a moved step


def test_moving_a_ladder_step_changes_exactly_what_it_implies(playbook: Playbook) -> None:
    """tech_touch's stall_outreach moved from 14 to 10 days without progress: with
    customers who never answer an escalation, it fires 4 days earlier in every stall that
    reached 14 days, and once more in every stall that ended between days 10 and 14;
    nothing else any onboarding decides changes."""
    model = BehaviourModel.model_validate({"response": {"probability": 0}})
    moved = moved_step_playbook(10)
    start = datetime(2026, 1, 5, tzinfo=UTC)
    deals = sample_cohort(300, SEED, start, playbook)
    before = [simulate(d, playbook, model, SEED, DAYS) for d in deals]
    after = [simulate(d, moved, model, SEED, DAYS) for d in deals]

    changed = 0
    for old, new in zip(before, after, strict=True):

        def rest(o: Outcome) -> dict[str, Any]:  # everything but the moved step
            d = simulated(o)
            d["escalations"] = [e for e in d["escalations"] if e[1] != "stall_outreach"]
            return d

        assert rest(new) == rest(old), old.deal.account_id
        old_days = [e for e in simulated(old)["escalations"] if e[1] == "stall_outreach"]
        new_days = [e for e in simulated(new)["escalations"] if e[1] == "stall_outreach"]
        # Every 14-day one is now a 10-day one, due 4 days earlier (fired, or recorded
        # when a tier change came after it); more may come.
        earlier = {(t, s, m, round(d - 4, 4)) for t, s, m, d, sup, _ in old_days if not sup}
        assert earlier <= {e[:4] for e in new_days}, old.deal.account_id
        changed += new_days != old_days
        if not old_days and not new_days:
            assert old.notices == new.notices  # the same messages, the same day
    assert changed > 0


# --------------------------------------------------------------------------- figures and CLI


def test_the_same_seed_gives_the_same_figures_and_another_seed_other_customers(
    playbook: Playbook,
) -> None:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    deals = sample_cohort(60, SEED, start, playbook)
    model = BehaviourModel()
    once = figures(run(deals, playbook, model, SEED, DAYS, workers=1), playbook, DAYS, 30)
    again = figures(run(deals, playbook, model, SEED, DAYS, workers=2), playbook, DAYS, 30)
    other = figures(run(deals, playbook, model, SEED + 1, DAYS, workers=1), playbook, DAYS, 30)
    assert once == again
    assert once != other
    assert once.onboardings == 60 and sum(once.by_tier.values()) == 60


def test_a_bad_behaviour_model_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "model.toml"
    path.write_text(
        "[tiers.self_serve]\nnever = 1.5\n[tiers.tech_touch.milestones.first_value]\n"
        "days = { low = 9, mode = 3, high = 20 }\n[response]\nchance = 0.2\n"
    )
    with pytest.raises(BehaviourError) as err:
        load_model(path)
    text = str(err.value)
    assert "tiers.self_serve.never: Input should be less than or equal to 1" in text
    assert "tiers.tech_touch.milestones.first_value.days: needs low <= mode <= high" in text
    assert "response.chance: Extra inputs are not permitted" in text


def test_simulate_prints_both_playbooks_side_by_side_and_writes_the_chart(
    tmp_path: Path,
) -> None:
    new = tmp_path / "new.toml"
    text = DEFAULT_PLAYBOOK.read_text()
    at = text.index("days = 14", text.index('id = "stall_outreach"'))
    new.write_text(text[:at] + "days = 10" + text[at + len("days = 14") :])
    page = tmp_path / "sim.html"
    args = ["simulate", "--playbook", str(new), "--sample", "80", "--seed", "5"]
    out = CliRunner().invoke(app, [*args, "--chart", str(page)])
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["current", "new", "change"]
    assert any(line.startswith("  no_progress -> csm ") for line in lines)
    assert any(line.startswith("TTV p75 (days)") for line in lines)
    html = page.read_text()
    assert (
        html.count("<svg") == 3 and "<script" not in html and "http" not in html.split("<svg", 1)[0]
    )
    as_json = CliRunner().invoke(app, [*args, "--format", "json"])
    figures_of = json.loads(as_json.stdout)
    assert figures_of["current"]["onboardings"] == figures_of["new"]["onboardings"] == 80

    neither = CliRunner().invoke(app, ["simulate", "--playbook", str(new)])
    assert neither.exit_code == 1

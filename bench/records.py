"""How long the portfolio report takes over 10,000 onboardings: a records store filled with
onboardings of a realistic shape, then the report (loading the rows and computing every
figure) timed. Goal: under 1 s (issue 10).

    .venv/bin/python bench/records.py                 # or: make bench (10,000 on SQLite)
    .venv/bin/python bench/records.py -n 2000 --url postgresql+psycopg://...

The records follow the default playbook and the service's own rules (`workflows.rules`:
plan, health, time to value): closed-won over the last year, the tier its rule gives (by
ACV, and high_touch for some complex deals in the mid band), each tier's plan with most
accounts reaching every gate (some late) and the others stalling at one, the ladder's
escalations at missed deadlines and stalls, tier changes and overrides, paused and
cancelled onboardings, a pool of CSMs. The store is filled through `RecordStore.save`,
the worker's own write path, so filling takes about a minute.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from activities.records.store import RecordStore
from starter.reports.portfolio import portfolio
from starter.reports.rows import load_rows
from workflows.models import (
    Escalation,
    HealthBand,
    MilestoneStatus,
    OnboardingState,
    Playbook,
    Tier,
    TierChange,
    Trigger,
)
from workflows.models.record import OnboardingRecord
from workflows.models.state import Milestone
from workflows.models.status import MilestoneView
from workflows.playbook import load_playbook
from workflows.rules import (
    build_plan,
    completion_pct,
    health_score,
    milestone_credit,
    time_to_value,
)

DAY = timedelta(days=1)
BUDGET_S = 1.0
# How many of a tier's onboardings reach every gate (about its completion target).
FINISHING = {Tier.HIGH_TOUCH: 0.88, Tier.TECH_TOUCH: 0.72, Tier.SELF_SERVE: 0.5}
CSMS = [f"csm-{i:02d}@example.com" for i in range(30)]


def _tier(acv: float, complex_deal: bool, playbook: Playbook) -> tuple[Tier, str]:
    rule = playbook.tier_rule
    if acv >= rule.enterprise_acv_usd:
        return Tier.HIGH_TOUCH, "high_touch.acv"
    if complex_deal:
        return Tier.HIGH_TOUCH, "high_touch.api_integration"
    if acv < rule.smb_floor_acv_usd:
        return Tier.SELF_SERVE, "self_serve.all"
    return Tier.TECH_TOUCH, "tech_touch.all"


def _escalations(
    playbook: Playbook, tier: Tier, won: datetime, plan: list[Milestone], now: datetime
) -> list[Escalation]:
    """The tier's ladder steps the plan's missed deadlines and stall would have fired
    until `now` (the end, or the start of a pause)."""
    done = sorted(m.done_at for m in plan if m.done_at is not None)
    last_move = done[-1] if done else won
    reached = {m.id for m in plan if m.done_at is not None}
    watched = {
        Trigger.NO_LOGIN: playbook.login_milestone,
        Trigger.ACTIVATION_MISSED: playbook.value_milestone,
    }
    out = []

    def fire(step_id: str, trigger: Trigger, at: datetime, milestone: str | None = None) -> None:
        if at <= now:
            out.append(
                Escalation(
                    at=at,
                    due_at=at,
                    tier=tier,
                    step_id=step_id,
                    trigger=trigger,
                    milestone_id=milestone,
                    actions=[],
                )
            )

    for step in playbook.ladder[tier]:
        if step.when is Trigger.MILESTONE_OVERDUE:
            for m in plan:
                if m.is_open or (m.done_at is not None and m.done_at > m.due_at):
                    fire(step.id, step.when, m.due_at, m.id)
        elif step.when in watched and watched[step.when] not in reached:
            fire(step.id, step.when, won + step.days * DAY)
        elif step.when is Trigger.NO_PROGRESS and any(m.is_open for m in plan):
            at = last_move + step.days * DAY
            while at <= now:
                fire(step.id, step.when, at)
                if step.repeat_days is None:
                    break
                at += step.repeat_days * DAY
    return sorted(out, key=lambda e: e.at)


def _record(i: int, rnd: random.Random, playbook: Playbook, now: datetime) -> OnboardingRecord:
    won = now - rnd.uniform(0.5, 365) * DAY
    acv = round(rnd.lognormvariate(9.6, 1.1), 2)
    initial, clause = _tier(acv, rnd.random() < 0.1, playbook)
    tier, changes = initial, []
    if rnd.random() < 0.06:
        tier = initial.next_up() if initial is not Tier.HIGH_TOUCH else Tier.TECH_TOUCH
        # The ladder only moves up (rules §4); a person may move either way.
        override = initial is Tier.HIGH_TOUCH or rnd.random() < 0.3
        changes.append(
            TierChange(
                at=min(now, won + rnd.uniform(3, 30) * DAY),
                from_tier=initial,
                to_tier=tier,
                kind="override" if override else "automatic",
                by="cs-lead@example.com" if override else "ladder",
                reason="bench",
            )
        )
    plan = build_plan(playbook, tier, won)
    stall_at = None if rnd.random() < FINISHING[tier] else rnd.randrange(len(plan))
    last_move = won
    for k, m in enumerate(plan):
        if k == stall_at:
            break
        if rnd.random() < 0.02:  # the customer refuses the step (rules §6.4)
            m.status = MilestoneStatus.SKIPPED
            continue
        done = max(won + DAY / 24, m.due_at + rnd.gauss(-1.5, 3) * DAY)
        if done > now:
            break
        m.status, m.done_at, last_move = MilestoneStatus.DONE, done, done
    # A stall asks for a decision after 3 weeks (rules §4): most are cancelled or paused.
    decision_at = last_move + 21 * DAY
    finished = quiet_from = None
    state = OnboardingState.ACTIVE
    health = health_score(plan, now, playbook.health)
    fate = rnd.random()
    if all(not m.is_open for m in plan):
        state = OnboardingState.COMPLETED
        finished = max((m.done_at for m in plan if m.done_at), default=won)
    elif stall_at is not None and decision_at < now and fate < 0.75:
        quiet_from = min(now, decision_at + rnd.uniform(0, 14) * DAY)
        if fate < 0.6:
            state, finished = OnboardingState.CANCELLED, quiet_from
        else:
            state = OnboardingState.PAUSED
    elif fate > 0.98:
        state, quiet_from = OnboardingState.PAUSED, now - rnd.uniform(0, 10) * DAY
    elif health.band is not HealthBand.HEALTHY or decision_at < now:
        state = OnboardingState.AT_RISK
    escalations = _escalations(playbook, tier, won, plan, quiet_from or finished or now)
    stalled = [e for e in escalations if e.step_id == "stall_decision"]
    open_due = [m.due_at for m in plan if m.done_at is None and m.due_at > now]
    running = state in (OnboardingState.ACTIVE, OnboardingState.AT_RISK, OnboardingState.PAUSED)
    return OnboardingRecord(
        account_id=f"B{i:07d}",
        workflow_id=f"onboarding-B{i:07d}",
        revision=1,
        as_of=finished or now,
        account_name=f"Bench account {i}",
        acv_usd=acv,
        currency="USD",
        closed_won_at=won,
        cohort=won.strftime("%Y-%m"),
        playbook_version=playbook.version,
        started_at=won,
        initial_tier=initial,
        tier=tier,
        tier_clause=clause,
        state=state,
        phase=next((m.phase for m in plan if m.done_at is None), None),
        health_score=health.score,
        health_band=health.band,
        owner=rnd.choice(CSMS) if tier is not Tier.SELF_SERVE else None,
        next_deadline=min(open_due, default=None) if running else None,
        completion_pct=completion_pct(plan),
        ttv=time_to_value(playbook, tier, plan, won, won),
        finished_at=finished,
        paused_days_total=0,
        decision_required=state is OnboardingState.AT_RISK and bool(stalled),
        risk_flags=["no progress for 3 weeks"] if running and stalled else [],
        milestones=[
            MilestoneView(
                id=m.id,
                title=m.title,
                phase=m.phase,
                weight=m.weight,
                owner=m.owner,
                status=m.status,
                due_at=m.due_at,
                done_at=m.done_at,
                overdue=m.done_at is None and m.due_at <= now,
                credit=milestone_credit(m, now, playbook.health),
            )
            for m in plan
        ],
        escalations=escalations,
        tier_changes=changes,
        pauses=[],
        audit=[],
    )


def plausible_records(
    n: int, now: datetime, playbook: Playbook, seed: int = 0
) -> Iterator[OnboardingRecord]:
    """`n` onboarding records as of `now` (ids B0000000...), reproducible by `seed`."""
    rnd = random.Random(seed)
    for i in range(n):
        yield _record(i, rnd, playbook, now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=10_000, help="onboardings (10,000)")
    parser.add_argument("--runs", type=int, default=5, help="timed reports (5); the median counts")
    parser.add_argument("--url", help="records store URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    playbook, now = load_playbook(), datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        store = RecordStore.open(args.url or f"sqlite:///{Path(tmp) / 'records.db'}")
        started = time.perf_counter()
        written = sum(store.save(r) for r in plausible_records(args.n, now, playbook))
        print(f"filled {written:,} records in {time.perf_counter() - started:.1f} s", flush=True)
        timings = []
        for _ in range(args.runs):
            started = time.perf_counter()
            rows = load_rows(store, playbook, now)
            loaded = time.perf_counter()
            report = portfolio(rows, playbook, now)
            done = time.perf_counter()
            timings.append((done - started, loaded - started, done - loaded))
        store.close()
    total, load, compute = (statistics.median(t[i] for t in timings) for i in range(3))
    verdict = "ok" if total < BUDGET_S else "OVER"
    print(
        f"report over {report.overall.onboardings:,} onboardings: {total:.3f} s median of "
        f"{args.runs} (rows {load:.3f} s, figures {compute:.3f} s); "
        f"{total / BUDGET_S:.2f} x the {BUDGET_S:g} s budget: {verdict}"
    )
    figures = {
        "onboardings": report.overall.onboardings,
        "report_s": round(total, 3),
        "rows_s": round(load, 3),
        "figures_s": round(compute, 3),
        "budget_ratio": round(total / BUDGET_S, 2),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

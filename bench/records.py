"""Bench of the portfolio report: a records store filled with N plausible onboardings,
then the report over all of them (loading the rows and computing every figure) timed.

    .venv/bin/python bench/records.py                 # 10,000 onboardings on SQLite
    .venv/bin/python bench/records.py -n 2000 --url postgresql+psycopg://...

`plausible_records` / `fill_store` are also what the report's tests fill a store with.
The records follow the playbook: closed-won over the last year, the tier its rule gives
by ACV, the tier's plan with most accounts reaching each gate (some late, some stopping
there), escalations at missed deadlines, a few tier changes and overrides, a pool of CSMs.
"""

from __future__ import annotations

import argparse
import random
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
from workflows.models.status import MilestoneView, TtvBreakdown
from workflows.playbook import load_playbook
from workflows.rules import build_plan

DAY = timedelta(days=1)


def _tier(acv: float, playbook: Playbook) -> Tier:
    rule = playbook.tier_rule
    if acv >= rule.enterprise_acv_usd:
        return Tier.HIGH_TOUCH
    return Tier.SELF_SERVE if acv < rule.smb_floor_acv_usd else Tier.TECH_TOUCH


def _record(i: int, rnd: random.Random, playbook: Playbook, now: datetime) -> OnboardingRecord:
    won = now - rnd.uniform(1, 365) * DAY
    acv = round(rnd.lognormvariate(9.7, 1.0), 2)
    initial = _tier(acv, playbook)
    tier, changes = initial, []
    if rnd.random() < 0.08:
        tier = initial.next_up() if initial is not Tier.HIGH_TOUCH else Tier.TECH_TOUCH
        kind = "override" if rnd.random() < 0.3 else "automatic"
        at = min(now, won + rnd.uniform(3, 30) * DAY)
        changes.append(
            TierChange(
                at=at,
                from_tier=initial,
                to_tier=tier,
                kind=kind,
                by="csm-lead@example.com",
                reason="bench",
            )
        )
    views, escalations, ttv = [], [], TtvBreakdown()
    stopped = rnd.random() < 0.5  # half the accounts stop at some gate
    for m in build_plan(playbook, tier, won):
        done = None
        if not stopped and rnd.random() < 0.93:
            done = m.due_at + rnd.gauss(-2, 4) * DAY
            done = done if done <= now else None
        stopped = stopped or done is None
        if done is None and m.due_at <= now:
            escalations.append(
                Escalation(
                    at=m.due_at,
                    due_at=m.due_at,
                    tier=tier,
                    step_id="overdue_nudge",
                    actions=[],
                    trigger=Trigger.MILESTONE_OVERDUE,
                    milestone_id=m.id,
                )
            )
        mark = (spec := playbook.milestone(m.id)) and spec.ttv
        if done is not None and mark:
            days = round(max(0.05, (done - won) / DAY), 2)
            field = {"first_engagement": "handoff_delay_days", "system_ready": "setup_days"}
            setattr(ttv, field.get(mark, "total_days"), days)
        views.append(
            MilestoneView(
                id=m.id,
                title=m.title,
                phase=m.phase,
                weight=m.weight,
                owner=m.owner,
                status=MilestoneStatus.DONE if done else MilestoneStatus.NOT_STARTED,
                due_at=m.due_at,
                done_at=done,
                overdue=done is None and m.due_at <= now,
                credit=None if done is None else (1.0 if done <= m.due_at else 0.5),
            )
        )
    if escalations and rnd.random() < 0.4:
        at = escalations[0].at + 14 * DAY
        if at <= now:
            escalations.append(
                Escalation(
                    at=at,
                    due_at=at,
                    tier=tier,
                    step_id="stall_outreach",
                    trigger=Trigger.NO_PROGRESS,
                    actions=[],
                    repeats=rnd.randint(1, 3),
                )
            )
    if ttv.total_days is not None and ttv.setup_days is not None:
        ttv.activation_days = round(ttv.total_days - ttv.setup_days, 2)
    finished = None
    if all(v.done_at for v in views):
        state, finished = OnboardingState.COMPLETED, max(v.done_at for v in views if v.done_at)
    elif rnd.random() < 0.05:
        state, finished = OnboardingState.CANCELLED, now - rnd.uniform(0, 30) * DAY
    elif rnd.random() < 0.05:
        state = OnboardingState.PAUSED
    else:
        overdue = any(v.overdue for v in views)
        state = OnboardingState.AT_RISK if overdue else OnboardingState.ACTIVE
    band = HealthBand.CRITICAL if state is OnboardingState.AT_RISK else HealthBand.HEALTHY
    open_due = [v.due_at for v in views if v.done_at is None and v.due_at > now]
    return OnboardingRecord(
        account_id=f"B{i:07d}",
        workflow_id=f"onboarding-B{i:07d}",
        revision=1,
        as_of=now,
        account_name=f"Bench account {i}",
        acv_usd=acv,
        currency="USD",
        closed_won_at=won,
        cohort=won.strftime("%Y-%m"),
        playbook_version=playbook.version,
        started_at=won,
        initial_tier=initial,
        tier=tier,
        tier_clause=f"{initial.value}.acv",
        state=state,
        phase=views[0].phase,
        health_score=None,
        health_band=band,
        owner=f"csm-{rnd.randrange(25)}@example.com",
        next_deadline=min(open_due, default=None),
        completion_pct=0.0,
        ttv=ttv,
        finished_at=finished,
        paused_days_total=0,
        decision_required=state is OnboardingState.AT_RISK and rnd.random() < 0.2,
        risk_flags=["stalled"] if state is OnboardingState.AT_RISK else [],
        milestones=views,
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


def fill_store(store: RecordStore, n: int, now: datetime, playbook: Playbook, seed: int = 0) -> int:
    """Save `n` plausible records into `store`; returns how many were written."""
    return sum(store.save(r) for r in plausible_records(n, now, playbook, seed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=10_000, help="onboardings")
    parser.add_argument("--url", help="records store URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    playbook, now = load_playbook(), datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        store = RecordStore.open(args.url or f"sqlite:///{Path(tmp) / 'records.db'}")
        started = time.perf_counter()
        fill_store(store, args.n, now, playbook)
        print(f"filled {args.n:,} records in {time.perf_counter() - started:.1f} s")
        for _ in range(3):
            started = time.perf_counter()
            rows = load_rows(store)
            loaded = time.perf_counter()
            report = portfolio(rows, playbook, now)
            done = time.perf_counter()
            print(
                f"report over {report.overall.onboardings:,} onboardings: "
                f"{done - started:.3f} s (rows {loaded - started:.3f} s, "
                f"figures {done - loaded:.3f} s)"
            )
        store.close()


if __name__ == "__main__":
    main()

"""Onboarding records built by hand, for the store and report tests: every figure a
report shows is computed from records whose facts the test states."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from activities.records.store import RecordStore
from starter.reports.model import PortfolioReport
from starter.reports.portfolio import portfolio_report
from workflows.models import (
    AuditEntry,
    Escalation,
    HealthBand,
    MilestoneStatus,
    OnboardingState,
    Owner,
    Phase,
    Playbook,
    Tier,
    TierChange,
    Trigger,
)
from workflows.models.record import OnboardingRecord
from workflows.models.status import MilestoneView, ProgramView, TtvBreakdown

DAY = timedelta(days=1)


def milestone_view(
    milestone_id: str,
    closed_won: datetime,
    due_day: float,
    done_day: float | None = None,
    *,
    skipped: bool = False,
) -> MilestoneView:
    """A milestone due `due_day` days after closed-won, done `done_day` days after it (or
    skipped: the customer refused it)."""
    done_at = closed_won + done_day * DAY if done_day is not None else None
    due_at = closed_won + due_day * DAY
    status = MilestoneStatus.DONE if done_at else MilestoneStatus.NOT_STARTED
    return MilestoneView(
        id=milestone_id,
        title=milestone_id.replace("_", " ").title(),
        phase=Phase.KICKOFF,
        weight=1,
        owner=Owner.CSM,
        status=MilestoneStatus.SKIPPED if skipped else status,
        due_at=due_at,
        done_at=done_at,
        overdue=False,
        credit=1.0 if done_at and done_at <= due_at else None,
    )


def make_record(
    account_id: str,
    closed_won: datetime,
    *,
    tier: Tier = Tier.TECH_TOUCH,
    initial_tier: Tier | None = None,
    state: OnboardingState = OnboardingState.ACTIVE,
    revision: int = 1,
    milestones: list[MilestoneView] | None = None,
    escalations: list[Escalation] | None = None,
    acv_usd: float = 30_000,
    owner: str | None = "csm-1@example.com",
    ttv_days: float | None = None,
    ttv: TtvBreakdown | None = None,
    finished_at: datetime | None = None,
    started_at: datetime | None = None,
    override: bool = False,
    health_band: HealthBand = HealthBand.HEALTHY,
    decision_required: bool = False,
    risk_flags: list[str] | None = None,
    next_deadline: datetime | None = None,
    team_invitations: int | None = None,
    first_active_day: float | None = None,
    came_back_day: float | None = None,
    programs: list[ProgramView] | None = None,
) -> OnboardingRecord:
    """A record; `initial_tier` other than `tier` makes a tier change on day 14, by the
    ladder (or by a person: `override`). `ttv` gives every TTV part, `ttv_days` only the
    total. `first_active_day`, `came_back_day`: days after closed-won (first-week
    retention, rules §8); `programs` the group programs it was invited to or attended."""

    def on(day: float | None) -> date | None:
        return None if day is None else (closed_won + day * DAY).date()

    changes = []
    if initial_tier is not None and initial_tier != tier:
        changes.append(
            TierChange(
                at=closed_won + 14 * DAY,
                from_tier=initial_tier,
                to_tier=tier,
                kind="override" if override else "automatic",
                by="cs-lead@example.com" if override else "ladder",
                reason="approved exception" if override else "no progress",
            )
        )
    return OnboardingRecord(
        account_id=account_id,
        workflow_id=f"onboarding-{account_id}",
        revision=revision,
        as_of=closed_won + DAY,
        account_name=f"Account {account_id}",
        acv_usd=acv_usd,
        currency="USD",
        closed_won_at=closed_won,
        cohort=closed_won.strftime("%Y-%m"),
        playbook_version="test",
        started_at=started_at or closed_won,
        initial_tier=initial_tier or tier,
        tier=tier,
        tier_clause=f"{tier.value}.acv",
        state=state,
        phase=Phase.KICKOFF,
        health_score=80.0,
        health_band=health_band,
        owner=owner,
        next_deadline=next_deadline,
        completion_pct=0.0,
        ttv=ttv or TtvBreakdown(total_days=ttv_days),
        finished_at=finished_at,
        paused_days_total=0,
        decision_required=decision_required,
        risk_flags=risk_flags or [],
        milestones=milestones or [],
        escalations=escalations or [],
        tier_changes=changes,
        pauses=[],
        audit=[],
        team_invitations=team_invitations,
        first_active_on=on(first_active_day),
        came_back_on=on(came_back_day),
        programs=programs or [],
    )


def escalation(
    step_id: str,
    closed_won: datetime,
    day: float,
    tier: Tier,
    *,
    trigger: Trigger = Trigger.NO_PROGRESS,
    superseded: bool = False,
    repeats: int = 1,
) -> Escalation:
    """A ladder step that ran `day` days after closed-won (or was superseded: it did not)."""
    at = closed_won + day * DAY
    return Escalation(
        at=at,
        due_at=at,
        tier=tier,
        step_id=step_id,
        trigger=trigger,
        actions=[],
        superseded=superseded,
        repeats=repeats,
    )


def report_over(
    store: RecordStore,
    playbook: Playbook,
    now: datetime,
    records: Iterable[OnboardingRecord],
    **filters: Any,
) -> PortfolioReport:
    """Save `records` into `store`, then the portfolio report over it as of `now`."""
    for record in records:
        assert store.save(record), record.account_id
    return portfolio_report(store, playbook, now, **filters)


def sample_portfolio(now: datetime, playbook: Playbook, count: int = 40) -> list[OnboardingRecord]:
    """`count` onboardings like a real portfolio's, the same for the same `now`: the tiers
    in turn (tech_touch twice as often), closed won over the last months, half a day off
    whole days (no deadline falls on `now` while a test runs), on the playbook's plans.
    Each reaches its gates one after the other (up to three days early or late) until the
    gate where it stops: past that gate's due date it is at risk, with an escalation per
    gate overdue (and a stall outreach two weeks on) and a health band by how long it is
    overdue; every gate done is completed; one in eleven is cancelled. Three CSMs own them;
    one in nine started a tier lower. The audit trail has the start and each gate done."""
    tiers = [Tier.HIGH_TOUCH, Tier.TECH_TOUCH, Tier.SELF_SERVE, Tier.TECH_TOUCH]
    records = []
    for i in range(count):
        tier = tiers[i % len(tiers)]
        age = 3.5 + 3.3 * i
        won = now - age * DAY
        plan = playbook.milestones_for(tier)
        stop = (i * 7) % (len(plan) + 3)  # past the plan's end: no stop, all done
        views, escalations, ttv = [], [], None
        for n, spec in enumerate(plan):
            due = spec.due_days[tier]
            done = due - 3 + (i * 5 + n) % 7 if n < stop else None
            if done is not None and done > age:
                done = None
            views.append(milestone_view(spec.id, won, due, done))
            if done is None and due < age:
                escalations.append(escalation("overdue_nudge", won, due + 1, tier))
                if due + 14 < age:
                    escalations.append(escalation("stall_outreach", won, due + 14, tier))
            if spec.ttv == "first_value" and done is not None:
                ttv = float(done)
        overdue = [v for v in views if v.done_at is None and v.due_at < now]
        if i % 11 == 10:
            state, finished = OnboardingState.CANCELLED, now - DAY
        elif i % 13 == 6 and not all(v.done_at for v in views):
            state, finished = OnboardingState.PAUSED, None
        elif all(v.done_at for v in views):
            state, finished = OnboardingState.COMPLETED, max(v.done_at for v in views if v.done_at)
        else:
            state, finished = (OnboardingState.AT_RISK if overdue else OnboardingState.ACTIVE), None
        record = make_record(
            f"acct-{i:03d}",
            won,
            tier=tier,
            initial_tier=Tier.SELF_SERVE if i % 9 == 4 and tier is Tier.TECH_TOUCH else None,
            state=state,
            milestones=views,
            escalations=escalations,
            acv_usd=[90_000, 30_000, 4_000, 22_000][i % 4],
            owner=f"csm-{i % 3}@example.com",
            ttv_days=ttv,
            finished_at=finished,
        )
        late_days = (now - min(v.due_at for v in overdue)) / DAY if overdue else 0
        band = (
            HealthBand.CRITICAL
            if late_days > 7
            else HealthBand.AT_RISK
            if overdue
            else HealthBand.HEALTHY
        )
        records.append(
            record.model_copy(
                update={
                    "account_name": f"{NAMES[i % len(NAMES)]} {i}",
                    "health_band": band,
                    "risk_flags": ["stalled"] if state is OnboardingState.AT_RISK else [],
                    "audit": [
                        AuditEntry(at=won, kind="started", detail=f"tier {tier.value}"),
                        *(
                            AuditEntry(at=v.done_at, kind="milestone_done", detail=v.id)
                            for v in views
                            if v.done_at
                        ),
                    ],
                    "completion_pct": round(
                        100 * sum(bool(v.done_at) for v in views) / len(views), 1
                    ),
                }
            )
        )
    return records


NAMES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell", "Soylent"]


async def record_when(
    store: RecordStore, account_id: str, check: Any = lambda r: True
) -> OnboardingRecord:
    """The stored record once `check` holds (the activity runs after the workflow task;
    up to 30 s, as a full suite on 2 busy cores can take over 10)."""
    record = None
    for _ in range(600):
        record = store.get(account_id)
        if record is not None and check(record):
            return record
        await asyncio.sleep(0.05)
    raise AssertionError(f"record never matched; last: {record}")

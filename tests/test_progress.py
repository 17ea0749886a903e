"""rules §1-§6 (docs/rules.md): the onboarding's state changes (`workflows/progress/`),
without a server: what each change does to the state and what it asks the workflow to do."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.deals import make_deal
from workflows import progress as rule
from workflows import rules
from workflows.models import (
    Audience,
    CancelRequest,
    CompletedMilestone,
    EarlyFacts,
    HealthBand,
    MilestoneReport,
    MilestoneStatus,
    OnboardingState,
    Pause,
    ResumeRequest,
    SkipRequest,
    StaffRole,
    Tier,
)
from workflows.playbook import load_playbook

PB = load_playbook()
DAY = timedelta(days=1)
NOW = datetime.now(UTC)
ALWAYS = lambda: True  # noqa: E731 (credit product events when they happened)


def begun(
    acv: float = 20_000, closed_days_ago: float = 1, **deal: object
) -> tuple[rule.Onboarding, rule.Changes]:
    closed = NOW - closed_days_ago * DAY
    d = make_deal("acct-1", close_date=closed, acv_usd=acv, **deal)
    return rule.begin(d, PB, None, NOW, ALWAYS)


def kinds(changes: rule.Changes) -> list[str]:
    return [a.kind for a in changes.audit]


def test_begin_assigns_tier_plans_and_asks_for_an_owner_then_the_welcome() -> None:
    o, changes = begun()
    assert o.progress.tier is Tier.TECH_TOUCH
    assert kinds(changes) == ["started", "tier_assigned"]
    assert [type(e) for e in changes.effects] == [rule.AssignOwner, rule.Notify]
    welcome = changes.effects[1]
    assert isinstance(welcome, rule.Notify)
    assert (welcome.trigger, welcome.audience) == ("welcome", Audience.CUSTOMER)
    assert welcome.variables["account_name"] == "Acme Corp"
    assert changes.phase is not None


def test_self_serve_gets_no_owner() -> None:
    _, changes = begun(acv=2_000)
    assert not any(isinstance(e, rule.AssignOwner) for e in changes.effects)


def test_begin_credits_imported_milestones_and_rejects_unknown_ones() -> None:
    done = [
        CompletedMilestone(milestone_id="first_login", at=NOW - DAY / 2),
        CompletedMilestone(milestone_id="no_such_step", at=NOW - DAY / 2),
    ]
    o, changes = begun(completed_milestones=done)
    m = rule.milestone(o.progress, "first_login")
    assert m is not None and m.status is MilestoneStatus.DONE and m.done_at == NOW - DAY / 2
    assert [(r.kind, r.ref) for r in changes.rejected] == [("completed_milestones", "no_such_step")]
    assert "milestone_reached" in kinds(changes)


def test_early_events_credit_the_milestone_when_they_happened() -> None:
    closed = NOW - 3 * DAY
    early = EarlyFacts(
        since=NOW - 5 * DAY,
        event_counts={"user_logged_in": 1},
        event_times={"user_logged_in": [NOW - 2 * DAY]},
    )
    d = make_deal("acct-1", close_date=closed)
    o, changes = rule.begin(d, PB, early, NOW, ALWAYS)
    m = rule.milestone(o.progress, "first_login")
    assert m is not None and m.done_at == NOW - 2 * DAY
    assert "early_events" in kinds(changes)
    # Before the patch, credit was given on arrival: the rule asks, and obeys.
    o, _ = rule.begin(d, PB, early.model_copy(deep=True), NOW, lambda: False)
    m = rule.milestone(o.progress, "first_login")
    assert m is not None and m.done_at == NOW


def test_a_report_in_the_future_counts_as_now_and_an_unknown_one_is_rejected() -> None:
    o, _ = begun()
    changes = rule.Changes()
    report = MilestoneReport(milestone_id="kickoff_call", at=NOW + DAY, event_id="e1")
    rule.record_report(o, changes, report, NOW)
    m = rule.milestone(o.progress, "kickoff_call")
    assert m is not None and m.done_at == NOW
    assert o.progress.last_progress_at == NOW
    rule.record_report(o, changes, MilestoneReport(milestone_id="nope", event_id="e2"), NOW)
    assert [r.ref for r in changes.rejected] == ["nope"]


def test_pause_then_resume_shifts_open_deadlines_and_clocks_by_the_time_paused() -> None:
    o, _ = begun()
    p = o.progress
    before = {m.id: m.due_at for m in p.milestones}
    clock, stall = p.clock_start, p.last_progress_at
    p.pause = Pause(by="csm", reason="re-org", since=NOW)
    audit = rule.resume(o, ResumeRequest(by="csm", reason="back"), NOW + 10 * DAY)
    assert [a.kind for a in audit] == ["resumed"]
    assert p.pause is None and p.paused_days_total == 10
    assert p.clock_start == clock + 10 * DAY and p.last_progress_at == stall + 10 * DAY
    assert all(m.due_at == before[m.id] + 10 * DAY for m in p.milestones if m.is_open)


@pytest.mark.parametrize(
    ("paused", "reached", "stops_scoring", "credit"),
    [
        # Its deadline came while paused: the clock had stopped, so it is on time.
        (-1, 5, True, "on_time"),
        # A day overdue when the pause began, reached 4 days into it: a day late.
        (1, 5, True, "late"),
        # A run paused before the rule scores it against the unmoved deadline: 5 days
        # past it, beyond twice its window.
        (-1, 5, False, "very_late"),
    ],
)
def test_a_milestone_reached_in_a_pause_is_scored_against_its_deadline_moved_by_the_time_paused(
    paused: float, reached: float, stops_scoring: bool, credit: str
) -> None:
    o, _ = begun()
    o = dataclasses.replace(o, pause_stops_scoring=stops_scoring)
    m = rule.milestone(o.progress, "first_login")
    assert m is not None
    due = m.due_at
    o.progress.pause = Pause(by="csm", reason="re-org", since=due + paused * DAY)
    report = MilestoneReport(milestone_id="first_login", event_id="e1")
    rule.record_report(o, rule.Changes(), report, due + reached * DAY)
    h = PB.health
    expected = {"on_time": h.credit_on_time, "late": h.credit_late, "very_late": h.credit_very_late}
    assert rules.milestone_credit(m, due + reached * DAY, h) == expected[credit]
    moved = (reached - paused) * DAY if stops_scoring and reached > paused else timedelta(0)
    assert m.due_at == due + moved


def test_the_health_score_stands_still_while_paused() -> None:
    o, _ = begun()
    first_due = min(m.due_at for m in o.progress.milestones)
    since = first_due - DAY
    o.progress.pause = Pause(by="csm", reason="re-org", since=since)
    later = first_due + 30 * DAY  # far past every early deadline
    assert o.health(later) == o.health(since)
    assert o.health(later).score is None  # nothing was due when the pause began
    # A run paused before the rule: the deadlines passed during the pause count.
    before_the_rule = dataclasses.replace(o, pause_stops_scoring=False)
    assert before_the_rule.health(later).band is HealthBand.CRITICAL
    # Resumed, the deadlines have moved by the time paused: still nothing due.
    rule.resume(o, ResumeRequest(by="csm", reason="back"), later)
    assert o.health(later).score is None


def test_a_paused_onboarding_wakes_for_its_owner_reminder() -> None:
    o, _ = begun()
    o.progress.pause = Pause(by="csm", reason="re-org", since=NOW)
    wake = rule.next_wake(o)
    assert wake is not None and wake[0] == NOW + PB.pause_reminder_days * DAY


def test_an_open_pause_reminds_the_owner_and_a_scheduled_one_resumes_itself() -> None:
    o, _ = begun()
    o.progress.pause = Pause(by="csm", reason="re-org", since=NOW)
    later = NOW + PB.pause_reminder_days * DAY
    changes = rule.advance(o, None, later, ALWAYS, ALWAYS)
    reminders = [e for e in changes.effects if isinstance(e, rule.Notify)]
    assert [(e.audience, e.template_id) for e in reminders][:1] == [
        (Audience.CSM, "pause_reminder")
    ]
    o.progress.pause = Pause(by="csm", reason="re-org", since=later, resume_on=later + DAY)
    changes = rule.advance(o, None, later + DAY, ALWAYS, ALWAYS)
    assert o.progress.pause is None and "resumed" in kinds(changes)


def test_tier_change_keeps_credit_records_passed_steps_and_asks_for_an_owner_and_specialist() -> (
    None
):
    o, _ = begun(acv=2_000, closed_days_ago=30)
    p = o.progress
    rule.record_report(
        o, rule.Changes(), MilestoneReport(milestone_id="first_login", event_id="e1"), NOW
    )
    changes = rule.change_tier(
        o, Tier.HIGH_TOUCH, "override", "vp", "strategic", NOW, ALWAYS, ALWAYS
    )
    assert p.tier is Tier.HIGH_TOUCH and p.last_progress_at == NOW
    m = rule.milestone(p, "first_login")
    assert m is not None and m.status is MilestoneStatus.DONE
    assert all(e.superseded for e in p.escalations)
    # Upgraded into high_touch with its implementation gates open (rules §7).
    assert [getattr(e, "role", type(e)) for e in changes.effects] == [
        StaffRole.CSM,
        StaffRole.IMPLEMENTATION_SPECIALIST,
        rule.Notify,
    ]
    assert not [s for s in rules.ladder_steps(p, PB) if s.at <= NOW]


def test_skip_flags_a_risk_and_counts_as_movement() -> None:
    o, _ = begun()
    changes = rule.skip(o, SkipRequest(milestone_id="first_training", reason="no", by="c"), NOW)
    m = rule.milestone(o.progress, "first_training")
    assert m is not None and m.status is MilestoneStatus.SKIPPED
    assert o.progress.risk_flags and o.progress.last_progress_at == NOW
    assert kinds(changes) == ["milestone_skipped"]


def test_state_cancelled_paused_at_risk_active() -> None:
    o, _ = begun()
    assert rule.state(o, NOW) is OnboardingState.ACTIVE
    o.progress.decision_required = True
    assert rule.state(o, NOW) is OnboardingState.AT_RISK
    o.progress.pause = Pause(by="csm", reason="x", since=NOW)
    assert rule.state(o, NOW) is OnboardingState.PAUSED
    rule.cancel(o.progress, CancelRequest(by="csm", reason="churn"), NOW)
    assert rule.state(o, NOW) is OnboardingState.CANCELLED
    assert rule.next_wake(o) is None


def test_overdue_milestones_make_the_onboarding_at_risk() -> None:
    o, _ = begun(closed_days_ago=120)
    assert rule.state(o, NOW) is OnboardingState.AT_RISK


def test_advance_fires_due_steps_once_and_finishes_when_nothing_is_left() -> None:
    o, _ = begun(closed_days_ago=60)
    changes = rule.advance(o, None, NOW, ALWAYS, ALWAYS)
    assert changes.fired and "escalation" in kinds(changes)
    assert not rule.advance(o, changes.phase, NOW, ALWAYS, ALWAYS).fired  # nothing twice
    for m in o.progress.milestones:
        rule.reach(o, rule.Changes(), m, MilestoneStatus.DONE, NOW, "test", NOW)
    changes = rule.advance(o, changes.phase, NOW, ALWAYS, ALWAYS)
    assert o.progress.finished_at == NOW and "completed" in kinds(changes)
    assert [e.template_id for e in changes.effects if isinstance(e, rule.Notify)][:1] == [
        "handoff_complete"
    ]


def test_the_customer_is_the_champion_and_the_csm_is_the_owner() -> None:
    o, _ = begun()
    assert rule.recipient(o.progress, Audience.CUSTOMER) == "cara@acme.test"
    assert rule.recipient(o.progress, Audience.CSM) is None


# --------------------------------------------------------------------------- issue 11


def decision_day(o: rule.Onboarding, closed: datetime) -> float:
    """The day after closed-won the stall decision comes due, in the tier now."""
    [at] = [s.at for s in rules.ladder_steps(o.progress, PB) if s.step.id == "stall_decision"]
    return (at - closed) / DAY


@pytest.mark.parametrize(
    ("moves", "customer_clock", "tier", "decision"),
    [
        # A self_serve account that never moves: upgraded on day 14, asked on day 21.
        ([], True, Tier.TECH_TOUCH, 21),
        # It logged in on day 1: upgraded on day 15, asked 21 days after the login.
        ([(1, "login")], True, Tier.TECH_TOUCH, 22),
        # An override is the vendor's move too: the high_touch ladder keeps the clock.
        ([(1, "login"), (5, "override")], True, Tier.HIGH_TOUCH, 22),
        # A login after the override is movement: the clock counts from it.
        ([(5, "override"), (9, "login")], True, Tier.HIGH_TOUCH, 30),
        # Runs begun before the rule: the upgrade on day 14 restarted the clock.
        ([], False, Tier.TECH_TOUCH, 35),
        ([(5, "override")], False, Tier.HIGH_TOUCH, 26),
    ],
)
def test_a_tier_change_leaves_the_stall_clock_on_the_customers_last_movement(
    moves: list[tuple[int, str]], customer_clock: bool, tier: Tier, decision: float
) -> None:
    o, _ = begun(acv=2_000, closed_days_ago=0)  # self_serve, closed now
    clock = lambda: customer_clock  # noqa: E731
    for day in range(21):  # the ladder runs day by day to day 20, and the moves happen
        when = NOW + day * DAY
        rule.advance(o, None, when, ALWAYS, clock)
        move = dict(moves).get(day)
        if move == "login":
            report = MilestoneReport(milestone_id="first_login", event_id=f"e{day}")
            rule.record_report(o, rule.Changes(), report, when)
        elif move == "override":
            rule.change_tier(o, Tier.HIGH_TOUCH, "override", "vp", "why", when, ALWAYS, clock)
    assert o.progress.tier is tier
    assert decision_day(o, NOW) == decision
    # What a tier change finds passed on the new ladder is recorded, never sent.
    for change in o.progress.tier_changes:
        found = [e for e in o.progress.escalations if (e.at, e.tier) == (change.at, change.to_tier)]
        assert all(e.superseded for e in found)


def test_back_in_a_tier_within_one_stall_nothing_runs_twice() -> None:
    """The stall keeps its number across tier changes, so the self_serve upgrade, run on
    day 14, does not run again when an override brings the account back on day 16; every
    step key, and so every notification's idempotency key, is used once."""
    o, _ = begun(acv=2_000, closed_days_ago=0)
    keys: list[str] = []
    for day in range(22):
        when = NOW + day * DAY
        keys += [
            e.trigger
            for e in rule.advance(o, None, when, ALWAYS, ALWAYS).effects
            if isinstance(e, rule.Notify)
        ]
        if day == 16:
            rule.change_tier(o, Tier.SELF_SERVE, "override", "vp", "back", when, ALWAYS, ALWAYS)
    p = o.progress
    assert [(c.to_tier, (c.at - NOW) / DAY) for c in p.tier_changes] == [
        (Tier.TECH_TOUCH, 14),
        (Tier.SELF_SERVE, 16),
    ]
    assert len(p.fired) == len(set(p.fired)) and len(keys) == len(set(keys))
    assert p.decision_required and p.tier is Tier.SELF_SERVE  # self_serve's, on day 21
    assert ("self_serve", "stall_decision") in [
        (e.tier.value, e.step_id) for e in p.escalations if not e.superseded
    ]


def test_a_self_serve_account_without_criteria_is_escalated_before_its_upgrade() -> None:
    o, _ = begun(acv=2_000, closed_days_ago=0, success_criteria=[])
    changes = rule.advance(o, None, NOW + 14 * DAY, ALWAYS, ALWAYS)
    p = o.progress
    ran = [(e.tier, e.step_id) for e in p.escalations if not e.superseded]
    assert ran[-2:] == [
        (Tier.SELF_SERVE, "no_success_criteria"),
        (Tier.SELF_SERVE, "stall_upgrade"),
    ]
    assert p.success_criteria == [PB.fallback_success_criterion]
    sent = [(e.audience, e.template_id) for e in changes.effects if isinstance(e, rule.Notify)]
    assert (Audience.CS_LEADERSHIP, "leadership_no_criteria") in sent
    assert p.tier is Tier.TECH_TOUCH
    # The day before, neither had come due.
    o, _ = begun(acv=2_000, closed_days_ago=0, success_criteria=[])
    rule.advance(o, None, NOW + 13.99 * DAY, ALWAYS, ALWAYS)
    assert o.progress.success_criteria == [] and o.progress.tier is Tier.SELF_SERVE


@pytest.mark.parametrize(
    ("paused", "audience", "template", "held", "held_before_kinds"),
    [
        (True, Audience.CUSTOMER, "nudge", True, True),  # a nudge
        (True, Audience.CUSTOMER, "stall_status", True, True),
        (True, Audience.EXECUTIVE_SPONSOR, "exec_sponsor_escalation", True, False),
        (True, Audience.CUSTOMER, "all_set", False, True),  # a celebration
        (True, Audience.CUSTOMER, "handoff_complete", False, True),
        (True, Audience.CUSTOMER, "tier_changed", False, True),  # information
        (True, Audience.CSM, "csm_call", False, False),  # the vendor's own people
        (True, Audience.CS_LEADERSHIP, "leadership_no_criteria", False, False),
        (True, Audience.CSM, "pause_reminder", False, False),
        (False, Audience.CUSTOMER, "nudge", False, False),  # not paused
    ],
)
def test_a_pause_holds_back_nudges_and_escalations_to_the_customer_only(
    paused: bool, audience: Audience, template: str, held: bool, held_before_kinds: bool
) -> None:
    o, _ = begun()
    if paused:
        o.progress.pause = Pause(by="csm", reason="re-org", since=NOW)
    effect = rule.Notify("t", audience, template, {})
    asked: list[bool] = []

    def patched(answer: bool) -> rule.NudgesOnly:
        return lambda: asked.append(answer) or answer

    assert rule.held_back(o, effect, patched(True)) is held
    assert rule.held_back(o, effect, patched(False)) is held_before_kinds
    # The patch is asked only where the two rules disagree (a marker in those runs only).
    assert len(asked) == (2 if held != held_before_kinds else 0)

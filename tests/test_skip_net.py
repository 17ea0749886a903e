"""rules §6.4 (docs/rules.md): the safety net under a skipped step. The judgement as a
table (no server), the peers' median from a real SQLite and PostgreSQL store, and the
workflow on the time-skipping server: the day the net acts and the day before."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import Settings, activities_for
from activities.records.store import RecordStore
from tests.support.deals import TIER_DEALS, make_deal
from tests.support.onboardings import Onboardings, fresh_progress, status, until
from tests.support.records import make_record
from tests.test_champion_change import details_once
from workflows import contract, presentation, progress
from workflows.formats import day_text
from workflows.models import (
    CancelRequest,
    ClosedWonDeal,
    MilestoneStatus,
    OnboardingState,
    OnboardingStatus,
    Pause,
    PauseRequest,
    PeerSupport,
    PeerSupportRequest,
    Playbook,
    ProductEvent,
    ProductEventBatch,
    ResumeRequest,
    SkipRequest,
    Tier,
)
from workflows.onboarding import AccountOnboarding
from workflows.playbook import load_playbook
from workflows.progress import skipnet

PB = load_playbook()
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
DAY = timedelta(days=1)
SKIPPED = "first_training"


def onboarding(events: dict[str, int] | None = None) -> progress.Onboarding:
    """A tech_touch onboarding closed at T0 with `events` counted."""
    deal = ClosedWonDeal(account_id="001A", account_name="Acme", acv_usd=20_000, close_date=T0)
    p = fresh_progress(PB, Tier.TECH_TOUCH, T0, event_counts=dict(events or {}))
    return progress.Onboarding(deal, PB, p)


def skipped(o: progress.Onboarding, day: float) -> None:
    req = SkipRequest(milestone_id=SKIPPED, by="csm", reason="customer declined training")
    progress.skip(o, req, T0 + day * DAY)


def gate(o: progress.Onboarding) -> MilestoneStatus:
    return next(m.status for m in o.progress.milestones if m.id == SKIPPED)


def test_the_check_comes_on_day_14_or_a_week_after_a_later_skip() -> None:
    early, late = onboarding(), onboarding()
    skipped(early, 2)
    skipped(late, 20)
    assert [c.due_at for c in early.progress.skip_checks] == [T0 + 14 * DAY]
    assert [c.due_at for c in late.progress.skip_checks] == [T0 + 27 * DAY]
    assert skipnet.due(early.progress, T0 + 13.9 * DAY) == []
    assert [c.milestone_id for c in skipnet.due(early.progress, T0 + 14 * DAY)] == [SKIPPED]
    assert early.progress.skip_checks == []  # taken: it runs once


def test_a_playbook_without_a_net_plans_no_check() -> None:
    """Playbooks pinned before the net have none: their runs replay as recorded
    (tests/histories/v3/test_a_skip_left_past_day_14_before_the_skip_net-*)."""
    bare = onboarding()
    bare = progress.Onboarding(bare.deal, PB.model_copy(update={"skip_net": None}), bare.progress)
    skipped(bare, 2)
    assert bare.progress.skip_checks == []


def test_a_pause_holds_the_check_and_moves_it_by_the_time_paused() -> None:
    o = onboarding()
    skipped(o, 2)
    p = o.progress
    p.pause = Pause(by="csm", reason="holiday", since=T0 + 10 * DAY)
    assert skipnet.due(p, T0 + 20 * DAY) == []
    progress.shift_for_pause(p, T0 + 20 * DAY)
    assert [c.due_at for c in p.skip_checks] == [T0 + 24 * DAY]


@pytest.mark.parametrize(
    ("skip_day", "pause", "now", "due", "first_due", "shown"),
    [
        (2, None, 3, 14, 14, "checked {14}"),
        (20, None, 21, 27, 27, "checked {27}"),  # a week after a later skip
        (2, (5, None), 6, 14, 14, "checked {14} (held by the pause: moves by the time paused)"),
        (2, (5, 9), 10, 18, 14, "checked {18} (moved from {14} by a pause)"),
    ],
    ids=["planned", "late-skip", "paused", "resumed"],
)
def test_a_pending_check_is_shown_with_its_day_and_a_pause_moving_it(
    skip_day: float,
    pause: tuple[float, float | None] | None,
    now: float,
    due: float,
    first_due: float,
    shown: str,
) -> None:
    o = onboarding()
    skipped(o, skip_day)
    if pause is not None:
        since, until = pause
        progress.start_pause(o.progress, PauseRequest(by="csm", reason="audit"), T0 + since * DAY)
        if until is not None:
            progress.resume(o, ResumeRequest(by="csm"), T0 + until * DAY)
    [view] = presentation.status(o, "wf", T0 + now * DAY).skip_checks
    assert (view.milestone_id, view.title, view.skipped_at, view.due_at, view.planned_at) == (
        SKIPPED,
        "First training session completed",
        T0 + skip_day * DAY,
        T0 + due * DAY,
        T0 + first_due * DAY,
    )
    dated = re.sub(r"\{(\d+)\}", lambda d: day_text(T0 + int(d[1]) * DAY), shown)
    line = f"- First training session completed (skipped {day_text(T0 + skip_day * DAY)}): "
    details = presentation.checklist(o, T0 + now * DAY).splitlines()
    assert details[details.index("Skip net checks:") + 1] == line + dated


def test_no_check_is_shown_once_run_or_once_the_onboarding_ended() -> None:
    ran, ended = onboarding(), onboarding()
    for o in (ran, ended):
        skipped(o, 2)
    skipnet.due(ran.progress, T0 + 14 * DAY)
    progress.cancel(ended.progress, CancelRequest(by="csm", reason="churned"), T0 + 3 * DAY)
    for o in (ran, ended):
        assert presentation.status(o, "wf", T0 + 15 * DAY).skip_checks == []
        assert "Skip net checks:" not in presentation.checklist(o, T0 + 15 * DAY)


def peers(median: float | None, n: int = 5) -> PeerSupport:
    return PeerSupport(tier=Tier.TECH_TOUCH, median=median, peers=n if median is not None else 0)


@pytest.mark.parametrize(
    ("logins_after", "tickets", "seen", "reopened", "why"),
    [
        (0, 0, peers(0), True, "not used since the skip"),
        (1, 0, peers(0), False, "the skip stands"),
        (3, 2, peers(2), False, "the skip stands"),  # at the median is not above it
        (3, 3, peers(2), True, "support tickets above peers"),
        (3, 3, peers(2.5), True, "support tickets above peers"),
        (3, 9, peers(None), False, "no open tech_touch peers"),
        (3, 9, None, False, "judged on usage"),  # the store could not be read
        (0, 0, None, True, "not used since the skip"),
    ],
)
def test_the_net_re_opens_when_unused_or_above_the_peers(
    logins_after: int, tickets: int, seen: PeerSupport | None, reopened: bool, why: str
) -> None:
    o = onboarding({"user_logged_in": 4, "support_ticket_opened": tickets})
    skipped(o, 2)
    [check] = o.progress.skip_checks
    o.progress.event_counts["user_logged_in"] += logins_after
    now = T0 + 14 * DAY
    out = skipnet.judge(o, check, seen, now)
    m = next(m for m in o.progress.milestones if m.id == SKIPPED)
    [entry] = out.audit
    assert why in entry.detail
    if reopened:
        assert m.status is MilestoneStatus.NOT_STARTED and m.due_at == now + 7 * DAY
        assert m.revision == 1 and entry.kind == "skip_reopened"
        [note] = out.effects
        assert isinstance(note, progress.Notify)
        assert (note.audience.value, note.template_id) == ("csm", "skip_reopened")
        assert any(f"re-opened {SKIPPED}" in f for f in o.progress.risk_flags)
    else:
        assert m.status is MilestoneStatus.SKIPPED and entry.kind == "skip_net_checked"
        assert out.effects == []


def test_support_tickets_are_not_usage() -> None:
    o = onboarding()
    skipped(o, 2)
    [check] = o.progress.skip_checks
    o.progress.event_counts["support_ticket_opened"] = 4
    skipnet.judge(o, check, peers(5), T0 + 14 * DAY)
    assert gate(o) is MilestoneStatus.NOT_STARTED


# --------------------------------------------------------------------------- the store


def test_the_store_answers_the_median_of_open_peers_of_the_tier(store: RecordStore) -> None:
    won = datetime.now(UTC).replace(microsecond=0) - 20 * DAY
    rows = [
        ("001A", Tier.TECH_TOUCH, OnboardingState.ACTIVE, 1),
        ("001B", Tier.TECH_TOUCH, OnboardingState.AT_RISK, 4),
        ("001C", Tier.TECH_TOUCH, OnboardingState.PAUSED, 2),
        ("001D", Tier.TECH_TOUCH, OnboardingState.ACTIVE, 3),
        ("001E", Tier.TECH_TOUCH, OnboardingState.COMPLETED, 50),  # not open
        ("001F", Tier.TECH_TOUCH, OnboardingState.CANCELLED, 50),
        ("001G", Tier.HIGH_TOUCH, OnboardingState.ACTIVE, 50),  # another tier
        ("001H", Tier.TECH_TOUCH, OnboardingState.ACTIVE, 99),  # the account itself
    ]
    for account_id, tier, state, tickets in rows:
        record = make_record(account_id, won, tier=tier, state=state)
        assert store.save(record.model_copy(update={"support_tickets": tickets}))
    assert store.support_ticket_median(Tier.TECH_TOUCH, "001H") == (2.5, 4)
    assert store.support_ticket_median(Tier.HIGH_TOUCH, "001G") == (None, 0)
    assert store.get("001H").support_tickets == 99  # type: ignore[union-attr]


# --------------------------------------------------------------------------- the workflow


async def skip_on_day_1(
    onboardings: Onboardings,
) -> tuple[datetime, str, WorkflowHandle[Any, OnboardingStatus]]:
    closed = await onboardings.now()
    deal = make_deal(close_date=closed, **TIER_DEALS["tech_touch"])
    handle = await onboardings.start(deal)
    await onboardings.days_later(1)
    await handle.execute_update(
        AccountOnboarding.skip_milestone,
        SkipRequest(milestone_id=SKIPPED, by="csm", reason="customer declined training"),
    )
    return closed, deal.account_id, handle


def skip_state(st: OnboardingStatus) -> MilestoneStatus:
    return next(m.status for m in st.milestones if m.id == SKIPPED)


async def test_an_unused_product_re_opens_the_skip_on_day_14(onboardings: Onboardings) -> None:
    closed, account_id, handle = await skip_on_day_1(onboardings)
    await onboardings.days_later(12.9)  # day 13.9: not yet
    st = await status(handle)
    assert skip_state(st) is MilestoneStatus.SKIPPED
    assert not any(a.kind.startswith("skip_") for a in st.audit)
    await onboardings.days_later(0.2)  # day 14.1
    st = await until(handle, lambda s: skip_state(s) is MilestoneStatus.NOT_STARTED)
    [entry] = [a for a in st.audit if a.kind == "skip_reopened"]
    assert round((entry.at - closed) / DAY, 2) == 14  # the day it came due, not later
    assert "0 product events since the skip" in entry.detail
    assert "not used since the skip" in entry.detail
    m = next(m for m in st.milestones if m.id == SKIPPED)
    assert m.due_at == entry.at + 7 * DAY  # `reopen_days` from when the net acted
    subject = "[CSM] Acme Corp: skipped step re-opened: First training session completed"
    await onboardings.subjects_once(account_id, subject)


async def test_a_used_product_keeps_the_skip_and_the_net_says_so(
    onboardings: Onboardings,
) -> None:
    closed, _, handle = await skip_on_day_1(onboardings)
    login = ProductEvent(event_id="login-1", name="user_logged_in")
    await handle.signal(AccountOnboarding.product_events, ProductEventBatch(events=[login]))
    await onboardings.days_later(12.9)
    assert not any(a.kind.startswith("skip_net") for a in (await status(handle)).audit)
    await onboardings.days_later(0.2)
    st = await until(handle, lambda s: any(a.kind == "skip_net_checked" for a in s.audit))
    [entry] = [a for a in st.audit if a.kind == "skip_net_checked"]
    assert round((entry.at - closed) / DAY, 2) == 14  # the day it came due, not later
    assert "1 product event since the skip" in entry.detail
    assert "the skip stands" in entry.detail
    assert skip_state(st) is MilestoneStatus.SKIPPED


async def test_support_tickets_above_the_peers_re_open_the_skip(
    onboardings: Onboardings,
) -> None:
    peers_store = RecordStore.open(onboardings.records_url)
    won = await onboardings.now()
    for account_id in ("peer-1", "peer-2", "peer-3"):
        record = make_record(account_id, won, tier=Tier.TECH_TOUCH)
        peers_store.save(record.model_copy(update={"support_tickets": 1}))
    peers_store.close()
    closed, _, handle = await skip_on_day_1(onboardings)
    events = [
        ProductEvent(event_id="login-1", name="user_logged_in"),
        ProductEvent(event_id="ticket-1", name="support_ticket_opened"),
        ProductEvent(event_id="ticket-2", name="support_ticket_opened"),
    ]
    await handle.signal(AccountOnboarding.product_events, ProductEventBatch(events=events))
    await until(handle, lambda s: s.support_tickets == 2)
    await onboardings.days_later(12.9)
    assert skip_state(await status(handle)) is MilestoneStatus.SKIPPED
    await onboardings.days_later(0.2)
    st = await until(handle, lambda s: skip_state(s) is MilestoneStatus.NOT_STARTED)
    [entry] = [a for a in st.audit if a.kind == "skip_reopened"]
    assert round((entry.at - closed) / DAY, 2) == 14  # the day it came due, not later
    assert "2 support ticket(s) against a median of 1 over 3 open tech_touch" in entry.detail
    assert "support tickets above peers" in entry.detail


async def test_an_unreadable_store_judges_the_check_on_usage_alone(
    env: WorkflowEnvironment, playbook: Playbook, tmp_path: Path
) -> None:
    """The store stays down past the activity's hour of retries: the check still runs,
    on usage alone, and the audit says so."""
    attempts = 0

    @activity.defn(name=contract.PEER_SUPPORT_TICKETS.name)
    async def store_down(request: PeerSupportRequest) -> PeerSupport:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("records store unreachable")

    settings = Settings(
        notify_channels=["log"],
        sent_log=tmp_path / "sent.jsonl",
        records_url=f"sqlite:///{tmp_path / 'records.db'}",
    )
    served = [a for a in activities_for(settings) if a.__name__ != "peer_support_tickets"]
    queue = f"skip-net-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[AccountOnboarding],
        activities=[*served, store_down],
        workflow_failure_exception_types=[Exception],
    ):
        onboardings = Onboardings(env, queue, tmp_path / "sent.jsonl", playbook, "")
        closed, _, handle = await skip_on_day_1(onboardings)
        await onboardings.days_later(13.1)  # day 14.1: the check ran and retried for an hour
        st = await until(handle, lambda s: skip_state(s) is MilestoneStatus.NOT_STARTED)
    [entry] = [a for a in st.audit if a.kind == "skip_reopened"]
    assert "peers' median unavailable: judged on usage" in entry.detail
    assert 14 < (entry.at - closed) / DAY <= 14 + 1 / 24 + 0.01  # within the hour of retries
    assert attempts > 1


async def test_the_status_and_the_ui_show_the_pending_check_and_the_day_a_pause_moved_it(
    onboardings: Onboardings,
) -> None:
    closed, _, handle = await skip_on_day_1(onboardings)
    [view] = (await status(handle)).skip_checks
    first = view.due_at
    assert (view.milestone_id, round((first - closed) / DAY, 3)) == (SKIPPED, 14)
    await details_once(handle, f"checked {day_text(first)}")
    await onboardings.days_later(4)  # day 5: paused for 3 days
    await handle.execute_update(AccountOnboarding.pause, PauseRequest(by="csm", reason="audit"))
    assert (await status(handle)).skip_checks[0].held
    await details_once(handle, "(held by the pause: moves by the time paused)")
    await onboardings.days_later(3)
    await handle.execute_update(AccountOnboarding.resume, ResumeRequest(by="csm"))
    [view] = (await status(handle)).skip_checks
    moved = view.due_at
    assert (round((moved - closed) / DAY, 3), view.planned_at, view.held) == (17, first, False)
    await details_once(
        handle, f"checked {day_text(moved)} (moved from {day_text(first)} by a pause)"
    )
    # The day before the moved date it is still to come; on the day it runs, and is gone.
    await onboardings.days_later((moved - await onboardings.now()) / DAY - 1)
    st = await status(handle)
    assert [v.due_at for v in st.skip_checks] == [moved]
    assert not any(a.kind.startswith("skip_") for a in st.audit)
    await onboardings.days_later(1.01)
    st = await until(handle, lambda s: s.skip_checks == [])
    [entry] = [a for a in st.audit if a.kind == "skip_reopened"]
    assert abs(entry.at - moved) < timedelta(minutes=1)
    due = next(m.due_at for m in st.milestones if m.id == SKIPPED)  # re-opened: a new deadline
    details = await details_once(handle, f"First training session completed — due {day_text(due)}")
    assert "Skip net checks:" not in details

"""A champion who leaves (rules §6.3 (docs/rules.md)): business days in the account's
calendar, the re-alignment window as pure rules, and on the time-skipping server the day
it lapses (and the day before, when it does not)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowHandle

from activities.records.store import RecordStore
from starter.reports.portfolio import portfolio_report
from tests.support.deals import TIER_DEALS, make_deal
from tests.support.onboardings import Onboardings, status, until
from tests.test_records_workflow import record_when
from tests.test_workflow import update_error
from workflows import business_days, progress
from workflows.models import (
    Audience,
    ContactChange,
    PauseRequest,
    RealignmentGateDone,
    ResumeRequest,
    Tier,
    Trigger,
)
from workflows.onboarding import AccountOnboarding
from workflows.playbook import load_playbook
from workflows.progress import champion, checks

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)
PLAYBOOK = load_playbook()


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# --------------------------------------------------------------------------- business days


@pytest.mark.parametrize(
    ("start", "days", "time_zone", "country", "ends"),
    [
        # Friday noon: Saturday and Sunday are the weekend, Monday is the first day.
        pytest.param(utc(2026, 12, 4, 12), 1, "UTC", "US", utc(2026, 12, 8), id="weekend"),
        # Wednesday: Thursday is Thanksgiving in the US, not in Germany.
        pytest.param(utc(2026, 11, 25, 12), 1, "UTC", "US", utc(2026, 11, 28), id="us-holiday"),
        pytest.param(utc(2026, 11, 25, 12), 1, "UTC", "DE", utc(2026, 11, 27), id="de-workday"),
        # 03:00 UTC Friday is Thursday evening in New York: Friday is its first day, which
        # ends at New York's midnight (05:00 UTC); counted in UTC it is Monday.
        pytest.param(
            utc(2026, 12, 4, 3),
            1,
            "America/New_York",
            "US",
            utc(2026, 12, 5, 5),
            id="local-date-before-utc",
        ),
        pytest.param(
            utc(2026, 12, 4, 3), 1, "UTC", "US", utc(2026, 12, 8), id="same-instant-in-utc"
        ),
        # Israel's weekend is Friday and Saturday: Thursday -> Sunday, ending at 22:00 UTC.
        pytest.param(
            utc(2026, 12, 3, 12), 1, "Asia/Jerusalem", "IL", utc(2026, 12, 6, 22), id="fri-sat"
        ),
        # Ten days over Christmas and New Year (both holidays, Christmas Eve is not).
        pytest.param(utc(2026, 12, 18, 15), 10, "UTC", "US", utc(2027, 1, 6), id="ten-days"),
    ],
)
def test_business_days_end(
    start: datetime, days: int, time_zone: str, country: str, ends: datetime
) -> None:
    assert business_days.business_days_end(start, days, time_zone, country) == ends


def test_unknown_zones_and_countries_are_refused_with_the_reason() -> None:
    for bad in ("Mars/Olympus", "../etc/passwd", ""):
        with pytest.raises(ValueError, match="is not an IANA time zone"):
            business_days.known_time_zone(bad)
    for bad in ("XX", "us", "USA"):
        with pytest.raises(ValueError, match="is not an ISO 3166 alpha-2 country"):
            business_days.known_country(bad)
    with pytest.raises(ValueError, match="days: must be at least 1"):
        business_days.business_days_end(utc(2026, 12, 1), 0, "UTC", "US")


def test_a_deal_names_its_own_calendar_or_is_refused_by_field() -> None:
    deal = make_deal(close_date=utc(2026, 12, 1), time_zone="Europe/Berlin", country="DE")
    assert (deal.time_zone, deal.country) == ("Europe/Berlin", "DE")
    with pytest.raises(ValidationError) as err:
        make_deal(close_date=utc(2026, 12, 1), time_zone="Berlin", country="DD")
    fields = {e["loc"][0]: e["msg"] for e in err.value.errors()}
    assert "is not an IANA time zone" in fields["time_zone"]
    assert "is not an ISO 3166 alpha-2 country" in fields["country"]


# --------------------------------------------------------------------------- the window's rules


def onboarding(opened: datetime, **deal: Any) -> progress.Onboarding:
    fields = TIER_DEALS["tech_touch"] | deal
    o, _ = progress.begin(
        make_deal(close_date=opened - 3 * DAY, **fields), PLAYBOOK, None, opened, lambda: True
    )
    return o


def new_champion(email: str = "nia@acme.test", role: str = "champion") -> ContactChange:
    contact = {"name": "Nia New", "email": email, "role": role}
    return ContactChange.model_validate({"contact": contact, "by": "csm", "reason": "Cara left"})


@pytest.mark.parametrize(
    ("change", "opens"),
    [
        (new_champion(), True),
        (new_champion("cara@acme.test"), False),  # the same champion, details updated
        (new_champion(role="admin"), False),
        (new_champion(role="executive_sponsor"), False),
    ],
    ids=["new-champion", "same-champion", "admin", "sponsor"],
)
def test_only_a_new_champion_opens_a_window(change: ContactChange, opens: bool) -> None:
    o = onboarding(utc(2026, 12, 1, 15))
    out = progress.change_champion(o, change, utc(2026, 12, 1, 15))
    kinds = [a.kind for a in out.audit]
    assert kinds == (
        ["contact_changed", "champion_window_opened"] if opens else ["contact_changed"]
    )
    assert len(o.progress.champion_windows) == opens


def test_window_in_the_deal_calendar_or_the_playbook_default() -> None:
    opened = utc(2026, 12, 4, 3)  # Thursday evening in New York
    o = onboarding(opened, time_zone="America/New_York")
    progress.change_champion(o, new_champion(), opened)
    [w] = o.progress.champion_windows
    assert (w.time_zone, w.country, w.business_days) == ("America/New_York", "US", 10)
    # Friday 4th is the first business day; the tenth is Thursday 17th, ending at
    # New York's midnight (05:00 UTC).
    assert w.due_at == utc(2026, 12, 18, 5)
    assert list(w.gates) == ["new_primary_contact", "realignment_call", "milestone_plan"]
    assert champion.last_day(w) == "2026-12-17 America/New_York"
    plain = onboarding(opened)
    progress.change_champion(plain, new_champion(), opened)
    # In UTC it is Friday already: Monday 7th is the first, Friday 18th the tenth.
    assert plain.progress.champion_windows[0].due_at == utc(2026, 12, 19)


def test_lapse_comes_at_the_window_end_and_tells_csm_and_leadership() -> None:
    opened = utc(2026, 12, 1, 15)
    o = onboarding(opened)
    progress.change_champion(o, new_champion(), opened)
    w = o.progress.champion_windows[0]
    progress.gate_done(o, RealignmentGateDone(gate="new_primary_contact", by="csm"), opened)

    before = progress.Changes()
    champion.lapse_due(o, before, w.due_at - MINUTE)
    assert (before.audit, before.effects, w.outcome) == ([], [], "open")

    at_end = progress.Changes()
    champion.lapse_due(o, at_end, w.due_at)
    assert w.outcome == "lapsed" and w.closed_at == w.due_at
    assert [a.kind for a in at_end.audit] == ["champion_window_lapsed"]
    told = [(e.audience, e.template_id) for e in at_end.effects if isinstance(e, progress.Notify)]
    assert told == [
        (Audience.CSM, "champion_window_lapsed_csm"),
        (Audience.CS_LEADERSHIP, "champion_window_lapsed_leadership"),
    ]
    assert o.progress.risk_flags[-1].endswith(
        "champion changed: re-alignment window lapsed (realignment_call, milestone_plan)"
    )
    again = progress.Changes()
    champion.lapse_due(o, again, w.due_at + DAY)
    assert again.audit == []  # it lapses once


@pytest.mark.parametrize(
    ("done", "paused", "escalated"),
    [
        (["new_primary_contact", "realignment_call", "milestone_plan"], False, False),
        (["new_primary_contact", "realignment_call"], False, True),
        ([], False, True),
        ([], True, False),  # a pause holds the window's clock, and so its lapse
    ],
    ids=["aligned", "one-gate-open", "nothing-done", "paused"],
)
def test_a_lapse_is_an_escalation_of_the_onboarding(
    done: list[str], paused: bool, escalated: bool
) -> None:
    opened = utc(2026, 12, 1, 15)
    o = onboarding(opened)
    progress.change_champion(o, new_champion(), opened)
    w = o.progress.champion_windows[0]
    for g in done:
        progress.gate_done(o, RealignmentGateDone(gate=g, by="csm"), opened)
    if paused:
        progress.start_pause(o.progress, PauseRequest(by="csm", reason="re-org"), opened + DAY)
    champion.lapse_due(o, progress.Changes(), w.due_at - MINUTE)
    assert o.progress.escalations == []
    for at in (w.due_at, w.due_at + DAY):  # it lapses once
        champion.lapse_due(o, progress.Changes(), at)
    if not escalated:
        assert o.progress.escalations == []
        return
    [e] = o.progress.escalations
    assert (e.at, e.due_at, e.tier, e.step_id, e.trigger, e.milestone_id, e.superseded) == (
        w.due_at,
        w.due_at,
        Tier.TECH_TOUCH,
        "champion_change",
        Trigger.CHAMPION_WINDOW_LAPSED,
        None,
        False,
    )
    assert e.actions == [
        "notify csm (champion_window_lapsed_csm)",
        "notify cs_leadership (champion_window_lapsed_leadership)",
        "flag: champion changed: re-alignment window lapsed",
    ]


def test_every_gate_done_closes_the_window_aligned() -> None:
    opened = utc(2026, 12, 1, 15)
    o = onboarding(opened)
    progress.change_champion(o, new_champion(), opened)
    kinds = []
    for i, gate in enumerate(PLAYBOOK.champion_change.gates if PLAYBOOK.champion_change else {}):
        out = progress.gate_done(o, RealignmentGateDone(gate=gate, by="csm"), opened + i * DAY)
        kinds += [a.kind for a in out.audit]
    assert kinds == ["realignment_gate_done"] * 3 + ["champion_window_closed"]
    w = o.progress.champion_windows[0]
    assert w.outcome == "aligned" and champion.open_window(o.progress) is None
    late = progress.Changes()
    champion.lapse_due(o, late, w.due_at + DAY)
    assert late.audit == [] and late.effects == []


def test_a_second_champion_change_supersedes_the_open_window() -> None:
    opened = utc(2026, 12, 1, 15)
    o = onboarding(opened)
    progress.change_champion(o, new_champion(), opened)
    out = progress.change_champion(o, new_champion("olu@acme.test"), opened + DAY)
    assert [a.kind for a in out.audit] == [
        "contact_changed",
        "champion_window_superseded",
        "champion_window_opened",
    ]
    first, second = o.progress.champion_windows
    assert (first.outcome, second.outcome) == ("superseded", "open")
    assert (second.previous, second.champion) == ("nia@acme.test", "olu@acme.test")


def test_a_pause_stops_the_window_clock() -> None:
    opened = utc(2026, 12, 1, 15)
    o = onboarding(opened)
    progress.change_champion(o, new_champion(), opened)
    w = o.progress.champion_windows[0]
    due = w.due_at
    progress.start_pause(o.progress, PauseRequest(by="csm", reason="re-org"), opened + DAY)
    paused = progress.Changes()
    champion.lapse_due(o, paused, due + DAY)
    assert w.outcome == "open" and paused.audit == []
    progress.resume(o, ResumeRequest(by="csm"), opened + 4 * DAY)
    assert w.due_at == due + 3 * DAY


def test_playbook_without_the_section_opens_no_window() -> None:
    opened = utc(2026, 12, 1, 15)
    o = onboarding(opened)
    o = progress.Onboarding(
        o.deal, PLAYBOOK.model_copy(update={"champion_change": None}), o.progress
    )
    out = progress.change_champion(o, new_champion(), opened)
    assert [a.kind for a in out.audit] == ["contact_changed"]


def test_gate_reports_are_refused_with_the_reason() -> None:
    opened = utc(2026, 12, 1, 15)
    o = onboarding(opened)
    p = o.progress

    def refusal(gate: str, at: datetime = opened) -> str:
        with pytest.raises(ValueError) as err:
            checks.realignment_gate(p, PLAYBOOK, RealignmentGateDone(gate=gate, by="csm"), at)
        return str(err.value)

    assert refusal("realignment_call") == (
        "gate: no re-alignment window is open; a champion change opens one"
    )
    progress.change_champion(o, new_champion(), opened)
    assert refusal("kickoff") == (
        "gate: unknown 'kickoff' (gates: new_primary_contact, realignment_call, milestone_plan)"
    )
    progress.gate_done(o, RealignmentGateDone(gate="realignment_call", by="csm"), opened)
    assert refusal("realignment_call") == "gate: realignment_call already done on 2026-12-01"
    due = p.champion_windows[0].due_at
    assert (
        refusal("milestone_plan", due) == "gate: the re-alignment window ended with 2026-12-15 UTC"
    )
    champion.lapse_due(o, progress.Changes(), due)
    assert refusal("milestone_plan", due) == (
        "gate: no re-alignment window is open (the last one lapsed); a champion change opens one"
    )


# --------------------------------------------------------------------------- on the server


async def change_champion(handle: WorkflowHandle[Any, Any]) -> None:
    await handle.execute_update(AccountOnboarding.change_contact, new_champion())


async def gate(handle: WorkflowHandle[Any, Any], gate_id: str) -> Any:
    return await handle.execute_update(
        AccountOnboarding.realignment_gate_done,
        RealignmentGateDone(gate=gate_id, by="csm", note="done"),
    )


async def details_once(handle: WorkflowHandle[Any, Any], text: str) -> str:
    """The UI's current details once they hold `text` (published after the workflow's
    next task)."""
    for _ in range(200):
        details: str = (await handle.query("__temporal_workflow_metadata")).current_details
        if text in details:
            return details
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} never shown; details: {details}")


async def test_the_window_lapses_at_the_tenth_business_days_end_not_the_day_before(
    onboardings: Onboardings,
) -> None:
    closed = await onboardings.now()
    deal = make_deal(
        close_date=closed, time_zone="America/New_York", country="US", **TIER_DEALS["tech_touch"]
    )
    handle = await onboardings.start(deal)
    await change_champion(handle)
    await gate(handle, "new_primary_contact")
    w = (await status(handle)).champion_windows[0]
    assert w.due_at == business_days.business_days_end(w.opened_at, 10, "America/New_York", "US")
    ninth = business_days.business_days_end(w.opened_at, 9, "America/New_York", "US")

    await onboardings.days_later((ninth + MINUTE - await onboardings.now()) / DAY)
    st = await status(handle)  # the ninth business day is over: still open
    assert st.champion_windows[0].outcome == "open"
    await onboardings.days_later((w.due_at - MINUTE - await onboardings.now()) / DAY)
    st = await status(handle)
    assert st.champion_windows[0].outcome == "open"
    assert not any("re-alignment" in f for f in st.risk_flags)
    assert "champion_change" not in [e.step_id for e in st.escalations]

    await onboardings.days_later(2 * MINUTE / DAY)
    st = await status(handle)
    lapsed = st.champion_windows[0]
    assert lapsed.outcome == "lapsed" and lapsed.closed_at is not None
    assert abs(lapsed.closed_at - w.due_at) < MINUTE  # when it came due, not later
    assert any(
        "re-alignment window lapsed (realignment_call, milestone_plan)" in f for f in st.risk_flags
    )
    # Counted with the onboarding's escalations, its record's, and the portfolio report's.
    [escalation] = [e for e in st.escalations if e.step_id == "champion_change"]
    assert escalation.trigger is Trigger.CHAMPION_WINDOW_LAPSED
    assert abs(escalation.at - w.due_at) < MINUTE
    store = RecordStore.open(onboardings.records_url)
    await record_when(store, deal.account_id, lambda r: escalation in r.escalations)
    report = portfolio_report(store, PLAYBOOK, await onboardings.now())
    store.close()
    [figure] = [e for e in report.escalations if e.step_id == "champion_change"]
    assert (figure.tier, figure.trigger, figure.fired, figure.accounts) == (
        Tier.TECH_TOUCH,
        "champion_window_lapsed",
        1,
        1,
    )
    kinds = [a.kind for a in st.audit]
    assert kinds.index("champion_window_opened") < kinds.index("realignment_gate_done")
    assert "champion_window_lapsed" in kinds
    subjects = await onboardings.subjects_once(
        deal.account_id, "[CS leadership] Acme Corp: champion change not re-aligned"
    )
    assert "[CSM] Acme Corp: re-alignment after the champion change is overdue" in subjects
    await details_once(
        handle, "Champion change (cara@acme.test -> nia@acme.test): re-alignment lapsed"
    )
    refused = await update_error(
        handle, AccountOnboarding.realignment_gate_done, RealignmentGateDone(gate="x", by="csm")
    )
    assert "(the last one lapsed)" in refused


async def test_every_gate_done_in_time_closes_the_window_without_escalation(
    onboardings: Onboardings,
) -> None:
    closed = await onboardings.now()
    deal = make_deal(close_date=closed, **TIER_DEALS["tech_touch"])
    handle = await onboardings.start(deal)
    await change_champion(handle)
    st = await gate(handle, "new_primary_contact")
    details = await details_once(handle, "- [x] New primary contact confirmed — done")
    assert "- [ ] Re-alignment call done" in details
    await onboardings.days_later(3)
    await gate(handle, "realignment_call")
    st = await gate(handle, "milestone_plan")
    w = st.champion_windows[0]
    assert w.outcome == "aligned" and all(w.gates.values())
    assert [a.kind for a in st.audit][-2:] == ["realignment_gate_done", "champion_window_closed"]

    await onboardings.days_later((w.due_at + DAY - await onboardings.now()) / DAY)
    st = await status(handle)
    assert st.champion_windows[0].outcome == "aligned"
    assert "champion_window_lapsed" not in [a.kind for a in st.audit]
    assert not any("re-alignment" in f for f in st.risk_flags)
    subjects = [r["subject"] for r in onboardings.sent(deal.account_id)]
    assert not any("re-align" in s for s in subjects)


# --------------------------------------------------------------------------- unchanged reports


@pytest.mark.parametrize(
    ("name", "email", "role", "refused"),
    [
        ("Cara Champion", "cara@acme.test", "champion", True),
        ("Cara Champion", "CARA@acme.test", "champion", True),  # emails are kept lower-case
        ("Cara Ng", "cara@acme.test", "champion", False),  # a correction of her name
        ("Nia New", "nia@acme.test", "champion", False),
        ("Cara Champion", "cara@acme.test", "admin", False),  # another role for her
    ],
    ids=["same", "same-email-case", "name-corrected", "new-champion", "another-role"],
)
def test_a_contact_already_in_its_role_unchanged_is_refused(
    name: str, email: str, role: str, refused: bool
) -> None:
    o = onboarding(utc(2026, 12, 1, 15))
    contact = {"name": name, "email": email, "role": role}
    change = ContactChange.model_validate({"contact": contact, "by": "hubspot contact 51"})
    if not refused:
        checks.contact_change(o.progress, change)
        return
    with pytest.raises(ValueError) as err:
        checks.contact_change(o.progress, change)
    assert str(err.value) == (
        "contact: Cara Champion <cara@acme.test> is already the champion; nothing changed"
    )


async def test_a_repeated_champion_change_is_refused_and_leaves_no_trace(
    onboardings: Onboardings,
) -> None:
    closed = await onboardings.now()
    handle = await onboardings.start(make_deal(close_date=closed, **TIER_DEALS["tech_touch"]))
    await until(handle, lambda st: st.owner is not None)  # its assignment is in the audit
    await change_champion(handle)
    before = await status(handle)
    reason = await update_error(handle, AccountOnboarding.change_contact, new_champion())
    assert reason == "contact: Nia New <nia@acme.test> is already the champion; nothing changed"
    after = await status(handle)
    assert after.audit == before.audit
    assert after.champion_windows == before.champion_windows

"""Tracks besides new business (rules §2 and §1 (docs/rules.md)): the deal type read from
each CRM, the plan and tier each track gives, which ladder actions an automated-only
track (free and trial accounts) runs, the loader's checks, and what an expansion, a
win-back and a trial onboarding do on the time-skipping server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest

from activities.crm_records import PayloadError
from activities.hubspot_records import hubspot_deal
from starter.cli.render import render_status
from starter.crm import Ignored, generic_deal, salesforce_opportunity, salesforce_outbound
from tests.support.deals import TIER_DEALS, make_deal
from tests.support.onboardings import Onboardings, fresh_progress, status, until
from tests.test_playbook import edited, problems
from tests.test_workflow import fired, reach
from workflows import presentation, progress
from workflows.models import (
    Audience,
    ClosedWonDeal,
    DealType,
    EscalationStep,
    MilestoneStatus,
    OnboardingStatus,
    Playbook,
    Tier,
    TierChange,
    TierDecision,
    TierOverride,
    Track,
)
from workflows.onboarding import AccountOnboarding
from workflows.playbook import load_playbook
from workflows.rules import (
    assign_tier,
    automated_only,
    build_plan,
    decide_tier,
    needs_a_person,
    replan,
    track_tier,
)

DAY = timedelta(days=1)
DATA = Path(__file__).parent / "data" / "real_world"
PLAYBOOK = load_playbook()
CLOSED = datetime(2030, 3, 2, tzinfo=UTC)

NEW, EXPANSION, WIN_BACK = DealType.NEW_BUSINESS, DealType.EXPANSION, DealType.WIN_BACK
TRIAL = DealType.TRIAL
HIGH, TECH, SELF = Tier.HIGH_TOUCH, Tier.TECH_TOUCH, Tier.SELF_SERVE
NEW_BUSINESS_PLAN = [
    "first_login",
    "kickoff_call",
    "technical_setup",
    "data_import",
    "first_training",
    "first_value",
    "team_adoption",
    "handoff",
]
SELF_SERVE_PLAN = ["first_login", "technical_setup", "first_value", "team_adoption", "handoff"]


# --------------------------------------------------------------------------- the plan


@pytest.mark.parametrize(
    ("deal_type", "tier", "plan"),
    [
        (NEW, HIGH, NEW_BUSINESS_PLAN),
        (NEW, SELF, SELF_SERVE_PLAN),
        # An existing customer knows the platform: no general platform training.
        (EXPANSION, HIGH, [m for m in NEW_BUSINESS_PLAN if m != "first_training"]),
        (EXPANSION, TECH, [m for m in NEW_BUSINESS_PLAN if m != "first_training"]),
        (EXPANSION, SELF, SELF_SERVE_PLAN),  # it had no training gate to skip
        # A win-back starts by addressing why the customer left.
        (WIN_BACK, TECH, ["churn_reason_addressed", *NEW_BUSINESS_PLAN]),
        (WIN_BACK, SELF, ["churn_reason_addressed", *SELF_SERVE_PLAN]),
        # A free or trial account runs self_serve; given a human by an override, it still
        # has no kickoff call or training.
        (TRIAL, SELF, SELF_SERVE_PLAN),
        (
            TRIAL,
            TECH,
            [m for m in NEW_BUSINESS_PLAN if m not in ("kickoff_call", "first_training")],
        ),
    ],
)
def test_each_track_plans_its_own_gates(deal_type: DealType, tier: Tier, plan: list[str]) -> None:
    assert [m.id for m in build_plan(PLAYBOOK, tier, CLOSED, deal_type)] == plan


def test_the_churn_reason_comes_due_first_on_the_win_back_track() -> None:
    for tier in Tier:
        first, *rest = build_plan(PLAYBOOK, tier, CLOSED, WIN_BACK)
        assert first.id == "churn_reason_addressed"
        assert all(first.due_at <= m.due_at for m in rest)
    assert build_plan(PLAYBOOK, TECH, CLOSED, WIN_BACK)[0].due_at == CLOSED + 3 * DAY


def test_a_tier_change_keeps_the_track() -> None:
    plan = build_plan(PLAYBOOK, TECH, CLOSED, EXPANSION)
    plan[0].status, plan[0].done_at = MilestoneStatus.DONE, CLOSED + DAY
    later = CLOSED + 10 * DAY
    ids = [m.id for m in replan(PLAYBOOK, plan, HIGH, later, EXPANSION)]
    assert "first_training" not in ids
    assert ids == [m for m in NEW_BUSINESS_PLAN if m != "first_training"]
    win_back = replan(PLAYBOOK, build_plan(PLAYBOOK, SELF, CLOSED, WIN_BACK), TECH, later, WIN_BACK)
    assert win_back[0].id == "churn_reason_addressed"


def test_a_playbook_without_tracks_onboards_every_deal_type_as_new_business() -> None:
    # Playbooks pinned before tracks existed (and so recorded histories) have none.
    raw = PLAYBOOK.model_dump(exclude={"tracks"})
    raw["milestones"] = [m for m in raw["milestones"] if m["id"] != "churn_reason_addressed"]
    older = Playbook.model_validate(raw)
    assert older.tracks == {}
    for deal_type in DealType:
        assert [m.id for m in build_plan(older, TECH, CLOSED, deal_type)] == NEW_BUSINESS_PLAN
        deal = make_deal(close_date=CLOSED, acv_usd=2_000, deal_type=deal_type)
        assert decide_tier(deal, older).tier is SELF


# --------------------------------------------------------------------------- the tier


RULE = {
    SELF: TierDecision(tier=SELF, clause="self_serve.all", reason="ACV $2,000 < $5,000"),
    TECH: TierDecision(tier=TECH, clause="tech_touch.all", reason="ACV $20,000 in band"),
    HIGH: TierDecision(tier=HIGH, clause="high_touch.acv", reason="ACV $80,000 >= $50,000"),
}


@pytest.mark.parametrize(
    ("rule", "deal_type", "bump", "tier", "clause", "says"),
    [
        (SELF, WIN_BACK, 1, TECH, "self_serve.all+win_back", "self_serve -> tech_touch"),
        (TECH, WIN_BACK, 1, HIGH, "tech_touch.all+win_back", "tech_touch -> high_touch"),
        (HIGH, WIN_BACK, 1, HIGH, "high_touch.acv+win_back", "already high_touch, the highest"),
        (SELF, WIN_BACK, 2, HIGH, "self_serve.all+win_back", "2 touch levels higher"),
        (TECH, EXPANSION, 0, TECH, "tech_touch.all", "ACV $20,000 in band"),
    ],
)
def test_a_track_bumps_the_tier_rule_result_and_the_clause_says_so(
    rule: Tier, deal_type: DealType, bump: int, tier: Tier, clause: str, says: str
) -> None:
    decision = track_tier(RULE[rule], deal_type, Track(tier_bump=bump))
    assert (decision.tier, decision.clause) == (tier, clause)
    assert says in decision.reason
    assert decision.reason.startswith(RULE[rule].reason)


@pytest.mark.parametrize(
    ("deal_type", "acv_usd", "tier", "clause"),
    [
        (NEW, 2_000, SELF, "self_serve.all"),
        (EXPANSION, 2_000, SELF, "self_serve.all"),
        (WIN_BACK, 2_000, TECH, "self_serve.all+win_back"),
        (WIN_BACK, 20_000, HIGH, "tech_touch.all+win_back"),
        (WIN_BACK, 80_000, HIGH, "high_touch.acv+win_back"),
    ],
)
def test_the_default_playbook_runs_a_win_back_one_touch_level_higher(
    deal_type: DealType, acv_usd: float, tier: Tier, clause: str
) -> None:
    deal = make_deal(close_date=CLOSED, acv_usd=acv_usd, deal_type=deal_type)
    decision = decide_tier(deal, PLAYBOOK)
    assert (decision.tier, decision.clause) == (tier, clause)


AUTOMATED = Track(skip=["kickoff_call", "first_training"], automated_only=True)


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        (HIGH, "trial track is automated only: high_touch -> self_serve"),
        (TECH, "trial track is automated only: tech_touch -> self_serve"),
        (SELF, "trial track is automated only: self_serve as the tier rule decided"),
    ],
)
def test_an_automated_only_track_runs_self_serve_and_the_clause_says_so(
    rule: Tier, says: str
) -> None:
    decision = track_tier(RULE[rule], TRIAL, AUTOMATED)
    assert (decision.tier, decision.clause) == (SELF, "self_serve.trial")
    assert decision.reason == f"{RULE[rule].reason}; {says}"


@pytest.mark.parametrize(
    "deal",
    [
        {"acv_usd": 2_000},
        {"acv_usd": 20_000},
        {"acv_usd": 80_000},  # an enterprise-size ACV
        {"acv_usd": 20_000, "needs_api_integration": True},
        {"acv_usd": 20_000, "stakeholder_count": 5},
        {"acv_usd": 2_000, "configuration_hours": 1},  # next tier up for new business
    ],
)
def test_the_default_playbook_onboards_a_trial_self_serve_whatever_its_size(
    deal: dict[str, Any],
) -> None:
    trial = make_deal(close_date=CLOSED, deal_type=TRIAL, **deal)
    decision = decide_tier(trial, PLAYBOOK)
    assert (decision.tier, decision.clause) == (SELF, "self_serve.trial")
    assert decision.reason.startswith(assign_tier(trial, PLAYBOOK.tier_rule).reason)


# --------------------------------------------------------------------------- the ladder


def ladder_step(tier: Tier, step_id: str) -> EscalationStep:
    return next(s for s in PLAYBOOK.ladder[tier] if s.id == step_id)


@pytest.mark.parametrize(
    ("tier", "step_id", "runs", "left_out"),
    [
        # The customer's automated nudges run.
        (SELF, "overdue_nudge", ["notify customer (nudge)"], []),
        (SELF, "no_login_email", ["notify customer (anything_blocking)"], []),
        (SELF, "reengagement", ["notify customer (reengagement)"], []),
        (SELF, "setup_without_value", ["notify customer (core_workflow_help)"], []),
        (SELF, "usage_drop", ["notify customer (reengagement)"], []),
        # CS leadership is not told; the fallback criteria are still adopted.
        (
            SELF,
            "no_success_criteria",
            ["adopt fallback success criteria"],
            ["notify cs_leadership (leadership_no_criteria)"],
        ),
        # No move to a tier with people in it, no decision asked of a person.
        (SELF, "stall_upgrade", [], ["change tier to tech_touch"]),
        (SELF, "activation_missed", [], ["change tier to tech_touch"]),
        (
            SELF,
            "stall_decision",
            [],
            [
                "decision required: revised timeline or formal pause",
                "notify cs_leadership (decision_required)",
            ],
        ),
        # Other tiers' steps, as a playbook of one's own may give a self_serve ladder.
        (
            TECH,
            "stuck_how_to",
            ["notify customer (how_to_video)"],
            ["flag: human follow-up needed", "notify csm (csm_stuck_alert)"],
        ),
        (HIGH, "stall_exec_sponsor", [], ["notify executive_sponsor (exec_sponsor_escalation)"]),
        (
            TECH,
            "handoff_late",
            [],
            [
                "notify csm (csm_handoff_late)",
                "flag: sales-to-CS handoff not done within 24 business hours",
            ],
        ),
    ],
)
def test_an_automated_only_track_runs_only_the_ladders_actions_without_people(
    tier: Tier, step_id: str, runs: list[str], left_out: list[str]
) -> None:
    actions = ladder_step(tier, step_id).actions
    assert [a.describe() for a in actions if not needs_a_person(a)] == runs
    assert [a.describe() for a in actions if needs_a_person(a)] == left_out


@pytest.mark.parametrize(
    ("deal_type", "changes", "automated"),
    [
        (TRIAL, [], True),
        (TRIAL, ["automatic"], True),  # the ladder's own move (to self_serve) lifts nothing
        (TRIAL, ["override"], False),  # a person gave the trial a human
        (TRIAL, ["automatic", "override"], False),
        (NEW, [], False),
        (WIN_BACK, [], False),
    ],
)
def test_automated_only_holds_until_a_person_overrides_the_tier(
    deal_type: DealType, changes: list[Literal["automatic", "override"]], automated: bool
) -> None:
    progress = fresh_progress(PLAYBOOK, SELF, CLOSED)
    progress.tier_changes = [
        TierChange(at=CLOSED, from_tier=SELF, to_tier=SELF, kind=kind, by="x", reason="x")
        for kind in changes
    ]
    assert automated_only(progress, PLAYBOOK, deal_type) is automated
    older = PLAYBOOK.model_copy(update={"tracks": {}})  # pinned before the trial track
    assert automated_only(progress, older, deal_type) is False


def test_a_silent_trial_gets_only_its_nudges_and_no_one_is_assigned() -> None:
    """Without a server: 31 days of nothing, the not-applicable steps recorded as such."""
    now = datetime.now(UTC)
    deal = make_deal(
        close_date=now, deal_type=TRIAL, success_criteria=[], **TIER_DEALS["high_touch"]
    )
    # A specialist for self_serve too: still no one on an automated-only track.
    capacity = PLAYBOOK.capacity.model_copy(update={"specialist_tiers": [SELF, HIGH]})
    playbook = PLAYBOOK.model_copy(update={"capacity": capacity})
    o, begun = progress.begin(deal, playbook, None, now, lambda: True)
    changes = progress.advance(o, begun.phase, now + 31 * DAY, lambda: True, lambda: True)
    effects = begun.effects + changes.effects
    assert not [e for e in effects if isinstance(e, progress.AssignOwner)]
    assert {e.audience for e in effects if isinstance(e, progress.Notify)} == {Audience.CUSTOMER}
    p = o.progress
    assert p.tier is SELF and p.tier_changes == [] and not p.decision_required
    assert p.success_criteria == [PLAYBOOK.fallback_success_criterion]
    not_applicable = {e.step_id: e.not_applicable for e in p.escalations if e.superseded}
    assert not_applicable == {
        "stall_upgrade": ["change tier to tech_touch"],
        "stall_decision": [
            "decision required: revised timeline or formal pause",
            "notify cs_leadership (decision_required)",
        ],
        "activation_missed": ["change tier to tech_touch"],
    }
    audit = [a.detail for a in begun.audit + changes.audit if a.kind == "escalation_not_applicable"]
    assert audit[0] == (
        "self_serve.stall_upgrade: no_progress; not applicable (trial track is automated "
        "only): change tier to tech_touch"
    )
    # `onboarding status` shows why a step did nothing, and what a step left out.
    shown = render_status(presentation.status(o, deal.workflow_id, now + 31 * DAY), recent=20)
    assert "not applicable (automated only): change tier to tech_touch" in shown
    assert (
        "adopt fallback success criteria; not applicable (automated only): notify "
        "cs_leadership (leadership_no_criteria)"
    ) in shown


# --------------------------------------------------------------------------- the loader

PLAYBOOK_TEXT = (Path(__file__).parent.parent / "playbooks" / "default.toml").read_text()
WIN_BACK_TRACK = 'add = ["churn_reason_addressed"]  # address why they left first'
EXPANSION_TRACK = (
    'skip = ["first_training"]         # knows the platform: no general platform training'
)


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        pytest.param(
            edited(EXPANSION_TRACK, 'skip = ["first_trianing"]'),
            "tracks.expansion.skip",
            "first_trianing is not a milestone id",
            id="unknown-skipped-milestone",
        ),
        pytest.param(
            edited(WIN_BACK_TRACK, 'add = ["churn_reason"]'),
            "tracks.win_back.add",
            "churn_reason is not a milestone id",
            id="unknown-added-milestone",
        ),
        pytest.param(
            edited(EXPANSION_TRACK, 'skip = ["first_value"]'),
            "tracks.expansion.skip",
            "first_value is the value milestone",
            id="value-milestone-skipped",
        ),
        pytest.param(
            edited(EXPANSION_TRACK, 'skip = ["handoff"]'),
            "tracks.expansion",
            "leaves tier high_touch no milestone gate in phase handoff",
            id="phase-left-without-a-gate",
        ),
        pytest.param(
            edited(EXPANSION_TRACK, 'skip = ["first_training"]\nadd = ["first_training"]'),
            "tracks.expansion",
            "first_training: both skipped and added",
            id="skipped-and-added",
        ),
        pytest.param(
            edited(EXPANSION_TRACK, 'skip = ["first_training", "first_training"]'),
            "tracks.expansion",
            "skip: first_training listed twice",
            id="listed-twice",
        ),
        pytest.param(
            edited("tier_bump = 1 ", "tier_bump = 3 "),
            "tracks.win_back.tier_bump",
            "less than or equal to 2",
            id="bump-past-the-top",
        ),
        pytest.param(
            edited("\n[tracks.win_back]", "\n[tracks.renewal]"),
            "tracks.renewal",
            "Input should be 'new_business', 'expansion', 'win_back' or 'trial'",
            id="unknown-deal-type",
        ),
    ],
)
def test_broken_tracks_name_key_and_reason(text: str, key: str, reason: str) -> None:
    found = [p.removeprefix("(top level): ") for p in problems(text)]
    assert any(p.startswith(key) and reason in p for p in found), found


def test_the_default_tracks() -> None:
    assert PLAYBOOK.tracks == {
        EXPANSION: Track(skip=["first_training"]),
        WIN_BACK: Track(add=["churn_reason_addressed"], tier_bump=1),
        TRIAL: Track(skip=["kickoff_call", "first_training"], automated_only=True),
    }


# --------------------------------------------------------------------------- the CRMs


def hubspot_api_deal(**props: str) -> ClosedWonDeal:
    """The real-world HubSpot API deal (tests/data/real_world) with `props` set."""
    deal = json.loads((DATA / "hubspot-numeric-stage.api-deal.json").read_text())
    deal["properties"] |= props
    company = {"id": "31000000002", "properties": {"name": "Blue Heron Logistics"}}
    return hubspot_deal(deal, company, [])


@pytest.mark.parametrize(
    ("value", "deal_type"),
    [
        ("newbusiness", NEW),
        ("existingbusiness", EXPANSION),
        ("winback", WIN_BACK),  # a portal's own option for win-backs
        ("", NEW),  # not set
        # A portal's own options for free and trial accounts (internal values).
        ("trial", TRIAL),
        ("freetrial", TRIAL),
        ("free", TRIAL),
        ("freemium", TRIAL),
        ("poc", TRIAL),
    ],
)
def test_hubspot_dealtype_picks_the_track(value: str, deal_type: DealType) -> None:
    assert hubspot_api_deal(dealtype=value).deal_type is deal_type
    assert hubspot_api_deal().deal_type is NEW  # the property absent


def test_hubspot_win_back_carries_its_churn_reason() -> None:
    deal = hubspot_api_deal(dealtype="winback", churn_reason="Missing SSO")
    assert (deal.deal_type, deal.churn_reason) == (WIN_BACK, "Missing SSO")


def test_an_unknown_deal_type_is_refused_naming_the_field() -> None:
    with pytest.raises(PayloadError) as err:
        hubspot_api_deal(dealtype="renewal")
    assert err.value.field == "properties.dealtype"
    assert "deal type 'renewal' is not one we know" in err.value.reason
    sf = json.loads((DATA / "salesforce-callout-jpy.json").read_text())
    sf["Opportunity"]["CurrencyIsoCode"] = "USD"
    sf["Opportunity"]["Type"] = "Existing Customer - Downgrade"
    with pytest.raises(PayloadError) as err:
        salesforce_opportunity(sf, ["Closed Won"])
    assert err.value.field == "Opportunity.Type"
    with pytest.raises(PayloadError) as err:
        generic_deal(GENERIC | {"deal_type": "renewal"})
    assert err.value.field == "deal_type"
    assert "'new_business', 'expansion', 'win_back' or 'trial'" in err.value.reason


@pytest.mark.parametrize(
    ("value", "deal_type"),
    [
        ("New Customer", NEW),  # Salesforce's standard picklist
        ("New Business", NEW),
        ("Existing Customer - Upgrade", EXPANSION),
        ("Existing Customer - Replacement", EXPANSION),
        ("Existing Business", EXPANSION),
        ("Win-Back", WIN_BACK),
        ("Win Back", WIN_BACK),
        (None, NEW),
        # An org's own picklist values for free and trial accounts.
        ("Trial", TRIAL),
        ("Free Trial", TRIAL),
        ("Free", TRIAL),
        ("Freemium", TRIAL),
        ("POC", TRIAL),
        ("Proof of Concept", TRIAL),
    ],
)
def test_salesforce_type_picks_the_track(value: str | None, deal_type: DealType) -> None:
    payload = json.loads((DATA / "salesforce-callout-jpy.json").read_text())
    payload["Opportunity"] |= {"CurrencyIsoCode": "USD", "Amount": 48_000, "Type": value}
    deal = salesforce_opportunity(payload, ["Closed Won"])
    assert not isinstance(deal, Ignored)
    assert deal.deal_type is deal_type


def test_salesforce_outbound_message_type_and_churn_reason() -> None:
    xml = (DATA / "salesforce-om-closed-won.xml").read_bytes()
    fields = b"<sf:Type>Win Back</sf:Type><sf:Churn_Reason__c>Price</sf:Churn_Reason__c>"
    xml = xml.replace(
        b"<sf:StageName>Closed Won</sf:StageName>",
        b"<sf:StageName>Closed Won</sf:StageName>" + fields,
        1,
    )
    [(_, deal)], _ = salesforce_outbound(xml, [], ["Closed Won"])
    assert isinstance(deal, ClosedWonDeal)
    assert (deal.deal_type, deal.churn_reason) == (WIN_BACK, "Price")


GENERIC: dict[str, Any] = {
    "account_id": "acme-1",
    "account_name": "Acme",
    "acv_usd": 12000,
    "close_date": "2030-06-01",
}


def test_the_generic_deal_names_its_deal_type() -> None:
    assert generic_deal(GENERIC).deal_type is NEW
    assert generic_deal(GENERIC | {"deal_type": "expansion"}).deal_type is EXPANSION
    win_back = generic_deal(GENERIC | {"deal_type": "win_back", "churn_reason": "Too slow"})
    assert (win_back.deal_type, win_back.churn_reason) == (WIN_BACK, "Too slow")
    assert generic_deal(GENERIC | {"deal_type": "trial"}).deal_type is TRIAL


# --------------------------------------------------------------------------- the workflow


async def test_a_win_back_runs_one_touch_level_up_and_starts_with_the_churn_reason(
    onboardings: Onboardings,
) -> None:
    churn_gate = "churn_reason_addressed"
    closed = await onboardings.now()
    deal = make_deal(
        close_date=closed,
        deal_type="win_back",
        churn_reason="Reports were too slow",
        **TIER_DEALS["self_serve"],
    )
    handle = await onboardings.start(deal)
    st = await status(handle)
    assert (st.tier, st.tier_decision and st.tier_decision.clause) == (
        TECH,
        "self_serve.all+win_back",
    )
    assert st.milestones[0].id == churn_gate
    assert (st.deal_type, st.churn_reason) == (WIN_BACK, "Reports were too slow")
    track = next(a for a in st.audit if a.kind == "track")
    assert track.detail == (
        "win_back: adds churn_reason_addressed; 1 touch level(s) up; "
        "churn reason: Reports were too slow"
    )

    # The churn-reason gate is due on day 3: its nudge comes then, not the day before.
    await onboardings.days_later(2.99)
    # (Only its own: the handoff SLA, 24 business hours, may come due before day 3.)
    early = [e for e in (await status(handle)).escalations if e.milestone_id == churn_gate]
    assert not early, early
    await onboardings.days_later(0.02)
    st = await status(handle)
    overdue = [e.milestone_id for e in st.escalations if e.step_id == "overdue_nudge"]
    assert churn_gate in overdue
    assert st.owner is not None  # tech_touch: a CSM, which its self_serve segment has not


async def test_an_expansion_never_asks_for_platform_training(onboardings: Onboardings) -> None:
    closed = await onboardings.now()
    deals = {
        deal_type: make_deal(close_date=closed, deal_type=deal_type, **TIER_DEALS["tech_touch"])
        for deal_type in (NEW, EXPANSION)
    }
    handles = {t: await onboardings.start(deal) for t, deal in deals.items()}
    st = await status(handles[EXPANSION])
    assert st.deal_type is EXPANSION and st.tier is TECH
    assert "first_training" not in [m.id for m in st.milestones]

    def overdue(st: OnboardingStatus) -> list[str | None]:
        return [e.milestone_id for e in st.escalations if e.step_id == "overdue_nudge"]

    for deal_type, handle in handles.items():  # on time up to data import
        for m in ["first_login", "kickoff_call", "technical_setup", "data_import"]:
            await reach(handle, m, f"{deal_type}-{m}")
    # Training is due on day 28: new business is nudged then, not the day before; the
    # expansion never is.
    await onboardings.days_later(27.99)
    assert [overdue(await status(h)) for h in handles.values()] == [[], []]
    await onboardings.days_later(0.02)
    assert [overdue(await status(h)) for h in handles.values()] == [["first_training"], []]
    handle = handles[EXPANSION]
    for m in ["first_value", "team_adoption", "handoff"]:
        await reach(handle, m)
    final = await handle.result()
    assert final.completion_pct == 100


async def test_a_trial_with_an_enterprise_acv_runs_automated_only(onboardings: Onboardings) -> None:
    closed = await onboardings.now()
    deal = make_deal(
        close_date=closed, deal_type="trial", success_criteria=[], **TIER_DEALS["high_touch"]
    )
    handle = await onboardings.start(deal)
    st = await status(handle)
    assert (st.tier, st.tier_decision and st.tier_decision.clause) == (SELF, "self_serve.trial")
    assert [m.id for m in st.milestones] == SELF_SERVE_PLAN
    track = next(a for a in st.audit if a.kind == "track")
    assert track.detail == "trial: skips kickoff_call, first_training; automated only"

    async def day(at: float) -> OnboardingStatus:
        await onboardings.days_later(at - (await onboardings.now() - closed) / DAY)
        return await status(handle)

    # The customer's nudges come on their days, not the day before.
    assert fired(await day(2.99), closed) == []
    assert fired(await day(3.01), closed) == [
        ("self_serve", "overdue_nudge", 3),
        ("self_serve", "no_login_email", 3),
    ]
    # Day 14 upgrades a silent self_serve account; a trial is neither upgraded on the
    # day before nor on the day, and CS leadership is not told it has no criteria.
    for at in (13.99, 14.01, 29.99, 30.01):
        st = await day(at)
        assert (st.tier, st.tier_changes, st.owner, st.specialist) == (SELF, [], None, None)
    st = await status(handle)
    assert fired(st, closed) == [
        ("self_serve", "overdue_nudge", 3),
        ("self_serve", "no_login_email", 3),
        ("self_serve", "overdue_nudge", 7),
        ("self_serve", "reengagement", 7),
        ("self_serve", "overdue_nudge", 14),
        ("self_serve", "no_success_criteria", 14),
        ("self_serve", "overdue_nudge", 28),
        ("self_serve", "overdue_nudge", 30),
    ]
    criteria = next(e for e in st.escalations if e.step_id == "no_success_criteria")
    assert criteria.actions == ["adopt fallback success criteria"]
    assert criteria.not_applicable == ["notify cs_leadership (leadership_no_criteria)"]
    not_applicable = [(e.step_id, e.due_at - closed) for e in st.escalations if e.superseded]
    assert not_applicable == [
        ("stall_upgrade", 14 * DAY),
        ("stall_decision", 21 * DAY),
        ("activation_missed", 30 * DAY),
    ]
    assert not st.decision_required
    subjects = await onboardings.subjects_once(
        deal.account_id, "Acme Corp: Handoff to ongoing success management is due"
    )
    assert "Anything blocking your setup, Acme Corp?" in subjects
    assert "Pick up where you left off, Acme Corp" in subjects
    assert all(r["key"].endswith(":customer") for r in onboardings.sent(deal.account_id))

    # A person may still give the trial a human: from then on it runs as its tier does.
    override = TierOverride(tier=TECH, approver="vp-cs", reason="a strategic logo")
    st = await handle.execute_update(AccountOnboarding.override_tier, override)
    assert st.tier is TECH and st.tier_changes[0].kind == "override"
    await until(handle, lambda st: st.owner is not None)

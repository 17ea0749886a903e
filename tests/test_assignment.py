"""Capacity-aware assignment (rules §7 (docs/rules.md)): the pick by segment, region and
load, the roster file, the loads the records store answers, the `assign_owner` activity;
on the time-skipping server, a full roster alerting CS leadership by email and the
`reassign_owner` update."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities import Settings, activities_for
from activities.owners import OwnerRoster
from activities.records.store import LazyStore, RecordStore
from activities.roster import RosterError, load_roster, parse_roster
from tests.support.deals import TIER_DEALS, make_deal
from tests.support.mail import Mailbox, email_settings
from tests.support.onboardings import fresh_progress, until
from tests.support.records import make_record, milestone_view
from workflows.assignment import Load, NoOneEligible, needs_specialist, pick
from workflows.models import (
    Capacity,
    MilestoneStatus,
    OnboardingInput,
    OnboardingState,
    OwnerReassignment,
    OwnerRequest,
    Playbook,
    StaffRole,
    Tier,
)
from workflows.models.roster import Person, PersonCapacity, Roster
from workflows.onboarding import AccountOnboarding
from workflows.playbook import load_playbook

PB = load_playbook()
DAY = timedelta(days=1)
CSM, SPECIALIST = StaffRole.CSM, StaffRole.IMPLEMENTATION_SPECIALIST
HT, TT = Tier.HIGH_TOUCH, Tier.TECH_TOUCH

ANN = Person(id="ann@v.test", name="Ann", role=CSM, tiers=[HT], regions=["Europe"])
BOB = Person(id="bob@v.test", name="Bob", role=CSM, tiers=[HT], regions=["US"])
CAT = Person(id="cat@v.test", name="Cat", role=CSM)  # every tier, every region
DAN = Person(id="dan@v.test", name="Dan", role=SPECIALIST)
EVE = Person(
    id="eve@v.test",
    name="Eve",
    role=SPECIALIST,
    capacity=PersonCapacity(specialist_implementations=5),
)
BERLIN = ("DE", "Europe/Berlin")


# --------------------------------------------------------------------------- the pick


@pytest.mark.parametrize(
    ("people", "loads", "role", "tier", "region", "leaving", "chosen", "over", "reason"),
    [
        pytest.param(
            [ANN, CAT],
            {"ann@v.test": Load(high_touch=3), "cat@v.test": Load(high_touch=5)},
            CSM,
            HT,
            BERLIN,
            None,
            "ann@v.test",
            0,
            "least loaded of 2 CSMs covering high_touch in DE / Europe/Berlin: "
            "3 of 15 high-touch accounts (20%)",
            id="least-loaded-with-room",
        ),
        pytest.param(
            [CAT, ANN],
            {"ann@v.test": Load(high_touch=4), "cat@v.test": Load(high_touch=4)},
            CSM,
            HT,
            BERLIN,
            None,
            "ann@v.test",
            0,
            "4 of 15 high-touch accounts",
            id="a-tie-goes-to-the-smaller-id",
        ),
        pytest.param(
            [ANN, BOB, CAT],
            {"bob@v.test": Load(high_touch=10), "cat@v.test": Load(high_touch=2)},
            CSM,
            HT,
            ("US", "America/Chicago"),
            None,
            "cat@v.test",
            0,
            "least loaded of 2 CSMs covering high_touch in US / America/Chicago",
            id="only-the-accounts-region",
        ),
        pytest.param(
            [ANN, BOB],
            {"ann@v.test": Load(high_touch=9)},
            CSM,
            HT,
            ("JP", "Asia/Tokyo"),
            None,
            "bob@v.test",
            0,
            "(none covers JP / Asia/Tokyo: every region): no open accounts (0%)",
            id="nobody-in-the-region-then-every-region",
        ),
        pytest.param(
            [ANN, CAT],
            {"ann@v.test": Load(high_touch=15), "cat@v.test": Load(high_touch=15)},
            CSM,
            HT,
            BERLIN,
            None,
            "ann@v.test",
            1,
            "every one of 2 CSMs covering high_touch in DE / Europe/Berlin is full; least "
            "loaded: 15 of 15 high-touch accounts (100%), now 1 over capacity",
            id="full-roster-least-over-and-the-gap",
        ),
        pytest.param(
            [ANN, CAT],
            {"ann@v.test": Load(high_touch=17), "cat@v.test": Load(high_touch=16)},
            CSM,
            HT,
            BERLIN,
            None,
            "cat@v.test",
            2,
            "now 2 over capacity",
            id="full-roster-the-least-over-capacity",
        ),
        pytest.param(
            [CAT],
            {"cat@v.test": Load(high_touch=7, low_touch=40)},
            CSM,
            TT,
            BERLIN,
            None,
            "cat@v.test",
            0,
            "7 of 15 high-touch accounts + 40 of 80 low-touch accounts (97%)",
            id="high-and-low-touch-count-together-with-room",
        ),
        pytest.param(
            [CAT],
            {"cat@v.test": Load(high_touch=8, low_touch=40)},
            CSM,
            TT,
            BERLIN,
            None,
            "cat@v.test",
            4,
            "(103%), now 4 over capacity",
            id="high-and-low-touch-count-together-full",
        ),
        pytest.param(
            [ANN, CAT],
            {"cat@v.test": Load(high_touch=9)},
            CSM,
            HT,
            BERLIN,
            "ANN@v.test",
            "cat@v.test",
            0,
            "least loaded of 1 CSMs",
            id="the-person-leaving-is-never-picked",
        ),
        pytest.param(
            [DAN, EVE, CAT],
            {"dan@v.test": Load(implementations=10), "eve@v.test": Load(implementations=4)},
            SPECIALIST,
            HT,
            BERLIN,
            None,
            "dan@v.test",
            0,
            "least loaded of 2 implementation specialists covering high_touch: "
            "10 of 15 active implementations (67%)",
            id="specialist-by-own-capacity",
        ),
        pytest.param(
            [DAN, EVE],
            {"dan@v.test": Load(implementations=7), "eve@v.test": Load(implementations=2)},
            SPECIALIST,
            HT,
            BERLIN,
            None,
            "eve@v.test",
            0,
            "2 of 5 active implementations (40%)",
            id="specialist-with-a-smaller-capacity-less-loaded",
        ),
        pytest.param(
            [DAN, EVE],
            {"dan@v.test": Load(implementations=15), "eve@v.test": Load(implementations=6)},
            SPECIALIST,
            HT,
            BERLIN,
            None,
            "dan@v.test",
            1,
            "now 1 over capacity",
            id="specialists-full",
        ),
    ],
)
def test_the_least_loaded_eligible_person_with_room_gets_the_account(
    people: list[Person],
    loads: dict[str, Load],
    role: StaffRole,
    tier: Tier,
    region: tuple[str, str],
    leaving: str | None,
    chosen: str,
    over: int,
    reason: str,
) -> None:
    country, time_zone = region
    got = pick(
        Roster(people=people),
        loads,
        role=role,
        tier=tier,
        country=country,
        time_zone=time_zone,
        capacity=Capacity(),
        leaving=leaving,
    )
    assert (got.person, got.over_capacity) == (chosen, over)
    assert reason in got.reason, got.reason


def test_nobody_covering_the_tier_is_an_error_naming_role_and_tier() -> None:
    with pytest.raises(NoOneEligible, match="no csm on the roster other than bob@v.test covers"):
        pick(
            Roster(people=[BOB, DAN]),
            {},
            role=CSM,
            tier=HT,
            country=None,
            time_zone=None,
            capacity=Capacity(),
            leaving="bob@v.test",
        )
    with pytest.raises(NoOneEligible, match="no csm on the roster covers tech_touch"):
        pick(
            Roster(people=[ANN, BOB]),
            {},
            role=CSM,
            tier=TT,
            country=None,
            time_zone=None,
            capacity=Capacity(),
        )


def test_the_playbook_capacity_decides_who_is_full() -> None:
    loads = {"cat@v.test": Load(high_touch=10)}
    roster = Roster(people=[CAT])
    kwargs = {"role": CSM, "tier": HT, "country": None, "time_zone": None}
    assert pick(roster, loads, capacity=Capacity(), **kwargs).over_capacity == 0  # type: ignore[arg-type]
    tight = Capacity(csm_high_touch_accounts=10)
    assert pick(roster, loads, capacity=tight, **kwargs).over_capacity == 1  # type: ignore[arg-type]


def test_a_specialist_where_the_plan_has_implementation_gates_in_a_specialist_tier() -> None:
    now = datetime.now(UTC)
    for tier, expected in ((HT, True), (TT, False), (Tier.SELF_SERVE, False)):
        plan = fresh_progress(PB, tier, now).milestones
        assert needs_specialist(PB, tier, plan) is expected, tier
    plan = fresh_progress(PB, HT, now).milestones
    for m in plan:
        if m.id in ("technical_setup", "data_import"):
            m.status = MilestoneStatus.DONE
    assert not needs_specialist(PB, HT, plan)  # the implementation is over
    older = PB.model_copy(update={"capacity": None})  # pinned before [capacity]
    assert not needs_specialist(older, HT, fresh_progress(PB, HT, now).milestones)


# --------------------------------------------------------------------------- the roster file

ROSTER = """
[[people]]
id = "ann@v.test"
name = "Ann Lee"
role = "csm"
tiers = ["high_touch"]
regions = ["Europe", "GB"]
capacity = { csm_high_touch_accounts = 12 }

[[people]]
id = "dan@v.test"
name = "Dan"
role = "implementation_specialist"
"""


def test_the_roster_file_is_read_and_the_csm_list_is_the_fallback(tmp_path: Path) -> None:
    path = tmp_path / "roster.toml"
    path.write_text(ROSTER, encoding="utf-8")
    roster = load_roster(Settings(roster_file=path, csm_roster=["x@v.test"]))
    assert [(p.id, p.role, p.tiers) for p in roster.people] == [
        ("ann@v.test", CSM, [HT]),
        ("dan@v.test", SPECIALIST, list(Tier)),
    ]
    assert roster.people[0].capacity.csm_high_touch_accounts == 12
    fallback = load_roster(Settings(csm_roster=["x@v.test", "y@v.test"]))
    assert [(p.id, p.role, p.regions) for p in fallback.people] == [
        ("x@v.test", CSM, []),
        ("y@v.test", CSM, []),
    ]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        pytest.param(
            'role = "csm"',
            'role = "manager"',
            "people[0](ann@v.test).role: Input should be",
            id="role",
        ),
        pytest.param(
            'name = "Dan"', 'name = " "', "people[1](dan@v.test).name: must not be blank", id="name"
        ),
        pytest.param(
            '"Europe", "GB"',
            '"Europe", "Atlantis"',
            "people[0](ann@v.test).regions[1]: 'Atlantis' is not a country",
            id="region",
        ),
        pytest.param(
            '["high_touch"]',
            '["high_touch", "enterprise"]',
            "people[0](ann@v.test).tiers[1]: Input should be",
            id="tier",
        ),
        pytest.param(
            "csm_high_touch_accounts = 12",
            "csm_high_touch_accounts = 0",
            "people[0](ann@v.test).capacity.csm_high_touch_accounts: Input should be greater",
            id="capacity",
        ),
        pytest.param(
            'role = "implementation_specialist"',
            'role = "implementation_specialist"\ncapacity = { csm_low_touch_accounts = 50 }',
            "people[1](dan@v.test): capacity: an implementation_specialist carries",
            id="capacity-of-another-role",
        ),
        pytest.param(
            'id = "dan@v.test"', 'id = "ANN@v.test"', "people: ann@v.test listed twice", id="twice"
        ),
    ],
)
def test_a_broken_roster_names_the_person_and_the_field(old: str, new: str, problem: str) -> None:
    with pytest.raises(RosterError) as caught:
        parse_roster(ROSTER.replace(old, new), "roster.toml")
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_an_unreadable_or_empty_roster_says_which(tmp_path: Path) -> None:
    with pytest.raises(RosterError, match="cannot read"):
        load_roster(Settings(roster_file=tmp_path / "missing.toml"))
    with pytest.raises(RosterError, match="ONBOARDING_CSM_ROSTER: empty"):
        load_roster(Settings(csm_roster=[]))

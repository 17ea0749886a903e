"""Capacity-aware assignment (rules §7 (docs/rules.md)): the pick by segment, region and
load, the roster file, the loads the records store answers, the `assign_owner` activity;
on the time-skipping server, a full roster alerting CS leadership by email and the
`reassign_owner` update."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities import Settings, activities_for
from activities.owners import OwnerRoster
from activities.records.store import LazyStore, RecordStore, Seat
from activities.roster import RosterError, load_roster, parse_roster, roster_summary
from tests.support.deals import TIER_DEALS, make_deal
from tests.support.mail import Mailbox, email_settings
from tests.support.onboardings import Onboardings, fresh_progress, status, until
from tests.support.records import make_record, milestone_view
from tests.support.temporal import BIN, process_env
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
    TierOverride,
)
from workflows.models.roster import Person, PersonCapacity, Roster
from workflows.models.status import OnboardingStatus
from workflows.onboarding import AccountOnboarding
from workflows.playbook import load_playbook

PB = load_playbook()
ROOT = Path(__file__).resolve().parents[1]
DAY = timedelta(days=1)
CSM, SPECIALIST = StaffRole.CSM, StaffRole.IMPLEMENTATION_SPECIALIST
HT, TT = Tier.HIGH_TOUCH, Tier.TECH_TOUCH
COMPLETED = OnboardingState.COMPLETED

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
            "the only CSM covering tech_touch is full: 8 of 15 high-touch accounts + 40 of 80 "
            "low-touch accounts (103%), now 4 over capacity",
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
            "the only CSM covering high_touch: 9 of 15 high-touch accounts",
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
    with pytest.raises(NoOneEligible, match=r"no csm on the roster other than bob@v\.test covers"):
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
SPECIALIST_FOR_TECH_TOUCH = 'role = "implementation_specialist"\ntiers = ["tech_touch"]'


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


def test_the_banner_names_the_roster_in_use(tmp_path: Path) -> None:
    path = tmp_path / "roster.toml"
    path.write_text(ROSTER, encoding="utf-8")
    settings = Settings(roster_file=path)
    assert roster_summary(load_roster(settings), settings) == (
        f"{path} (ONBOARDING_ROSTER_FILE): 1 CSM, 1 implementation specialist"
    )
    fallback = Settings(csm_roster=["csm-1@localhost", "csm-2@localhost"])
    assert roster_summary(load_roster(fallback), fallback) == (
        "ONBOARDING_CSM_ROSTER: 2 CSMs (csm-1@localhost, csm-2@localhost), "
        "no implementation specialists"
    )


@pytest.mark.parametrize(
    "command", [[sys.executable, str(ROOT / "worker.py")], [str(BIN / "onboarding"), "up"]]
)
async def test_the_worker_does_not_start_with_a_broken_roster(
    command: list[str], tmp_path: Path
) -> None:
    """As with a bad setting: one line naming the person and the field, exit code 1,
    before anything starts (no Temporal server is needed to see it)."""
    path = tmp_path / "roster.toml"
    path.write_text(ROSTER.replace('"GB"', '"Atlantis"'), encoding="utf-8")
    env = process_env(tmp_path, ONBOARDING_ROSTER_FILE=str(path))
    proc = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert f"error: {path}: people[0](ann@v.test).regions[1]: 'Atlantis' is not a country" in (
        err.decode()
    )


# --------------------------------------------------------------------------- the loads


def implementation(account_id: str, won: datetime, specialist: str, done: bool, **kw: object):
    """A high_touch record with its specialist and the technical setup gate (done or
    open; a per-product copy of it for `product`)."""
    gate = milestone_view(str(kw.pop("gate", "technical_setup")), won, 35, 30 if done else None)
    record = make_record(account_id, won, tier=HT, milestones=[gate], **kw)  # type: ignore[arg-type]
    return record.model_copy(update={"specialist": specialist})


def test_the_store_counts_open_onboardings_per_owner_and_active_implementations(
    store: RecordStore,
) -> None:
    won = datetime.now(UTC).replace(microsecond=0) - 20 * DAY
    rows = [
        make_record("001A", won, tier=HT, owner="ann@v.test"),
        make_record("001B", won, tier=HT, owner="ann@v.test", state=OnboardingState.AT_RISK),
        make_record("001C", won, tier=TT, owner="ann@v.test", state=OnboardingState.PAUSED),
        make_record("001D", won, tier=Tier.SELF_SERVE, owner="ann@v.test"),
        make_record("001E", won, tier=HT, owner="ann@v.test", state=OnboardingState.COMPLETED),
        make_record("001F", won, tier=HT, owner="ann@v.test", state=OnboardingState.CANCELLED),
        make_record("001G", won, tier=HT, owner="bob@v.test"),
        make_record("001H", won, tier=HT, owner=None),
        make_record("001I", won, tier=HT, owner="bob@v.test"),  # the account asking
        implementation("001J", won, "dan@v.test", done=False, owner="bob@v.test"),
        implementation("001K", won, "dan@v.test", done=True, owner=None),  # gates done
        implementation(
            "001L", won, "dan@v.test", done=False, owner=None, gate="technical_setup:crm"
        ),
        implementation("001M", won, "dan@v.test", done=False, owner=None, gate="first_training"),
    ]
    for record in rows:
        assert store.save(record)
    with store.assigning(datetime.now(UTC)) as claims:
        loads = claims.loads(["technical_setup", "data_import"], "001I")
    assert loads == {
        "ann@v.test": Load(high_touch=2, low_touch=2),
        "bob@v.test": Load(high_touch=2),
        "dan@v.test": Load(implementations=2),
    }
    assert store.get("001J").specialist == "dan@v.test"  # type: ignore[union-attr]


def test_claims_count_until_a_record_ends_them(store: RecordStore) -> None:
    """An assignment is claimed before the onboarding's record says so: the claim counts
    while the record is not written, its person replaces the record's (a reassignment the
    record has not caught up with), and it stops counting once the record is finished, or
    a day after it was made when no record ever came."""
    now = datetime.now(UTC).replace(microsecond=0)
    seat = {f"001{c}": Seat(f"001{c}", 1, CSM) for c in "ABCDE"}
    store.save(make_record("001B", now - 9 * DAY, tier=HT, owner="ann@v.test"))
    store.save(make_record("001C", now - 9 * DAY, tier=HT, owner="ann@v.test"))
    store.save(make_record("001D", now - 9 * DAY, tier=HT, owner="ann@v.test", state=COMPLETED))
    with store.assigning(now - 2 * DAY) as claims:  # no record came in a day: gone
        claims.claim(seat["001E"], HT, "cat@v.test")
    with store.assigning(now) as claims:
        claims.claim(seat["001A"], TT, "cat@v.test")  # not recorded yet
        claims.claim(seat["001B"], HT, "cat@v.test")  # reassigned; the record says Ann
        claims.claim(seat["001D"], HT, "cat@v.test")  # finished
        claims.claim(Seat("001A", 1, SPECIALIST), HT, "dan@v.test")  # not recorded yet
        assert claims.held(seat["001B"]) == "cat@v.test"
        assert claims.held(seat["001C"]) == "ann@v.test"  # recorded before claims
        assert claims.held(seat["001E"]) == "cat@v.test"
        assert claims.loads(["technical_setup"], "001Z") == {
            "ann@v.test": Load(high_touch=1),
            "cat@v.test": Load(high_touch=1, low_touch=1),
            "dan@v.test": Load(implementations=1),
        }


# --------------------------------------------------------------------------- the activity


async def assign(roster: OwnerRoster, account_id: str, **request: object) -> object:
    fields = {"account_id": account_id, "workflow_id": f"onboarding-{account_id}", "tier": HT}
    return await ActivityEnvironment().run(
        roster.assign_owner, OwnerRequest.model_validate(fields | request)
    )


async def test_the_activity_reads_the_load_and_keeps_an_accounts_recorded_owner(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    store = RecordStore.open(url)
    won = datetime.now(UTC).replace(microsecond=0)
    for i in range(3):
        store.save(make_record(f"001{i}", won, tier=HT, owner="csm-1@localhost"))
    store.save(make_record("001K", won, tier=HT, owner="csm-1@localhost"))
    roster = OwnerRoster(Settings(records_url=url), LazyStore(url))

    fresh = await assign(roster, "001N")
    assert fresh.owner == "csm-2@localhost"  # type: ignore[attr-defined]
    assert fresh.reason == (  # type: ignore[attr-defined]
        "least loaded of 2 CSMs covering high_touch: no open accounts (0%)"
    )
    kept = await assign(roster, "001K")  # recorded with its CSM: a retry answers the same
    assert (kept.owner, kept.reason) == (  # type: ignore[attr-defined]
        "csm-1@localhost",
        "kept: already the account's csm",
    )
    moved = await assign(roster, "001K", leaving="csm-1@localhost")
    assert moved.owner == "csm-2@localhost"  # type: ignore[attr-defined]
    store.close()


async def test_concurrent_assignments_spread_over_the_roster_by_load(
    store: RecordStore,
) -> None:
    """Eight onboardings starting in the same moment, asked of three workers at once,
    are spread by load: each assignment counts those claimed before it, recorded or not.
    A retry keeps its claim; a finished onboarding stops counting."""
    url = store.engine.url.render_as_string(hide_password=False)
    team = ["csm-1@localhost", "csm-2@localhost", "csm-3@localhost"]
    now = datetime.now(UTC).replace(microsecond=0)
    store.save(make_record("001OLD", now - 9 * DAY, tier=HT, owner="csm-1@localhost"))
    workers = [
        OwnerRoster(Settings(records_url=url, csm_roster=team), LazyStore(url)) for _ in range(3)
    ]
    accounts = [f"001N{i}" for i in range(8)]
    answers = await asyncio.gather(*(assign(workers[i % 3], a) for i, a in enumerate(accounts)))
    owners = {a: answer.owner for a, answer in zip(accounts, answers, strict=True)}  # type: ignore[attr-defined]
    assert sorted(Counter(owners.values()).items()) == [
        ("csm-1@localhost", 2),  # and 001OLD: 3 each
        ("csm-2@localhost", 3),
        ("csm-3@localhost", 3),
    ]
    again = await assign(workers[1], "001N5")
    assert (again.owner, again.reason) == (  # type: ignore[attr-defined]
        owners["001N5"],
        "kept: already the account's csm",
    )
    # 001N5's onboarding ends: its CSM has room for the next one.
    store.save(make_record("001N5", now, tier=HT, owner=owners["001N5"], state=COMPLETED))
    nxt = await assign(workers[2], "001NEXT")
    assert nxt.owner == owners["001N5"]  # type: ignore[attr-defined]
    assert nxt.reason.endswith("2 of 15 high-touch accounts (13%)")  # type: ignore[attr-defined]


async def test_nobody_to_assign_is_a_non_retryable_error_naming_the_setting(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    roster_file = tmp_path / "roster.toml"
    roster_file.write_text(
        ROSTER.replace('role = "implementation_specialist"', SPECIALIST_FOR_TECH_TOUCH),
        encoding="utf-8",
    )
    roster = OwnerRoster(Settings(records_url=url, roster_file=roster_file), LazyStore(url))
    with pytest.raises(ApplicationError) as caught:
        await assign(roster, "001A", role=SPECIALIST)
    assert caught.value.non_retryable
    assert caught.value.message == (
        "no implementation_specialist on the roster covers high_touch (ONBOARDING_ROSTER_FILE)"
    )


async def test_a_roster_without_specialists_answers_nobody_without_an_error(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    roster = OwnerRoster(Settings(records_url=url), LazyStore(url))
    answer = await assign(roster, "001A", role=SPECIALIST)
    assert (answer.owner, answer.reason) == (  # type: ignore[attr-defined]
        None,
        "no implementation specialists on the roster (ONBOARDING_CSM_ROSTER)",
    )


async def test_a_roster_broken_after_the_start_fails_the_assignment_at_once(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    roster_file = tmp_path / "roster.toml"
    roster_file.write_text(ROSTER.replace('"GB"', '"Atlantis"'), encoding="utf-8")
    roster = OwnerRoster(Settings(records_url=url, roster_file=roster_file), LazyStore(url))
    with pytest.raises(ApplicationError) as caught:
        await assign(roster, "001A")
    assert caught.value.non_retryable
    assert caught.value.type == "BadRoster"
    assert "people[0](ann@v.test).regions[1]: 'Atlantis' is not a country" in (caught.value.message)


# --------------------------------------------------------------------------- the workflow

FULL_ROSTER = """
[[people]]
id = "pat@vendor.test"
name = "Pat"
role = "csm"
tiers = ["high_touch"]
capacity = { csm_high_touch_accounts = 1 }

[[people]]
id = "sam@vendor.test"
name = "Sam"
role = "implementation_specialist"
"""

QUINN = """
[[people]]
id = "quinn@vendor.test"
name = "Quinn"
role = "csm"
"""


async def messages(box: Mailbox, count: int) -> dict[str, str]:
    """Subject by recipient, once `count` messages have arrived."""
    for _ in range(400):
        if len(box.messages) >= count:
            break
        await asyncio.sleep(0.05)
    return {str(m["To"]): " ".join(str(m["Subject"]).split()) for m in box.messages}


@asynccontextmanager
async def high_touch_onboarding(
    env: WorkflowEnvironment, playbook: Playbook, mailbox: Mailbox, tmp_path: Path
) -> AsyncIterator[tuple[WorkflowHandle[Any, OnboardingStatus], Path]]:
    """A high-touch onboarding closed now, on a worker of its own that reads the roster
    file `FULL_ROSTER` was written to (returned with the handle, to change), emails
    `mailbox` and keeps its records in `tmp_path`'s `records.db`."""
    roster_file = tmp_path / "roster.toml"
    roster_file.write_text(FULL_ROSTER, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'records.db'}"
    settings = email_settings(mailbox, roster_file=roster_file, records_url=url)
    task_queue = f"roster-{uuid.uuid4().hex[:8]}"
    deal = make_deal(close_date=await env.get_current_time(), **TIER_DEALS["high_touch"])
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[AccountOnboarding],
        activities=activities_for(settings),
        workflow_failure_exception_types=[Exception],
    ):
        handle = await env.client.start_workflow(
            AccountOnboarding.run,
            OnboardingInput(deal=deal, playbook=playbook),
            id=deal.workflow_id,
            task_queue=task_queue,
        )
        yield handle, roster_file


async def test_a_full_roster_still_assigns_and_alerts_leadership_then_a_leaver_is_reassigned(
    env: WorkflowEnvironment, playbook: Playbook, mailbox: Mailbox, tmp_path: Path
) -> None:
    closed = await env.get_current_time()
    store = RecordStore.open(f"sqlite:///{tmp_path / 'records.db'}")
    # Pat already carries one open high-touch account.
    store.save(make_record("001OTHER", closed - 9 * DAY, tier=HT, owner="pat@vendor.test"))
    store.close()
    async with high_touch_onboarding(env, playbook, mailbox, tmp_path) as (handle, roster_file):
        st = await until(handle, lambda s: s.owner is not None and s.specialist is not None)
        assert (st.owner, st.specialist) == ("pat@vendor.test", "sam@vendor.test")
        sent = await messages(mailbox, 4)
        assert sent["cs-leadership@localhost"] == (
            "[CS leadership] Over capacity: Acme Corp (high_touch) went to pat@vendor.test"
        )
        assert sent["sam@vendor.test"] == "New implementation: Acme Corp (high_touch)"
        assert sent["pat@vendor.test"] == "New onboarding: Acme Corp (high_touch)"
        alert = next(m for m in mailbox.messages if m["To"] == "cs-leadership@localhost")
        assert "pat@vendor.test now carries 1 more than their capacity" in alert.get_content()
        audit = {a.kind: a.detail for a in st.audit}
        assert audit["over_capacity"].startswith(
            "pat@vendor.test is 1 over: the only CSM covering high_touch is full: "
        )
        assert audit["specialist_assigned"] == (
            "sam@vendor.test: the only implementation specialist covering "
            "high_touch: 0 of 15 active implementations (0%)"
        )

        # Pat leaves the team: Quinn joins the roster, and the onboarding moves to Quinn.
        roster_file.write_text(FULL_ROSTER + QUINN, encoding="utf-8")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                AccountOnboarding.reassign_owner,
                OwnerReassignment(person="sam@vendor.test", by="cs-ops"),
            )
        assert "person: sam@vendor.test is not this onboarding's csm (pat@vendor.test is)" in str(
            refused.value.cause
        )
        st = await handle.execute_update(
            AccountOnboarding.reassign_owner,
            OwnerReassignment(person="pat@vendor.test", by="cs-ops", reason="left the company"),
        )
        assert (st.owner, st.specialist) == ("quinn@vendor.test", "sam@vendor.test")
        moved = [a for a in st.audit if a.kind == "reassigned"]
        assert [(a.by, a.detail.split(": ")[0]) for a in moved] == [
            ("cs-ops", "csm pat@vendor.test -> quinn@vendor.test (left the company)")
        ]
        sent = await messages(mailbox, 5)
        assert sent["quinn@vendor.test"] == "New onboarding: Acme Corp (high_touch)"


async def assignments_done(handle: WorkflowHandle[Any, Any], count: int) -> None:
    """Wait until `count` assign_owner activities were scheduled and none is pending."""
    for _ in range(400):
        history = await handle.fetch_history()
        asked = sum(
            e.activity_task_scheduled_event_attributes.activity_type.name == "assign_owner"
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
        )
        pending = (await handle.describe()).raw_description.pending_activities
        if asked >= count and not any(a.activity_type.name == "assign_owner" for a in pending):
            assert asked == count
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} assignments not done")


async def test_without_specialists_on_the_roster_a_high_touch_onboarding_records_no_failure(
    onboardings: Onboardings,
) -> None:
    """The default settings' roster (ONBOARDING_CSM_ROSTER) has CSMs only: a high_touch
    onboarding gets its CSM and the audit says once, as information, that there are no
    implementation specialists, even when an upgrade asks again."""
    closed = await onboardings.now()
    deal = make_deal(close_date=closed, **TIER_DEALS["high_touch"])
    handle = await onboardings.start(deal)

    def noted(s: OnboardingStatus) -> list[str]:
        return [a.detail for a in s.audit if a.kind == "specialist_not_configured"]

    st = await until(handle, lambda s: s.owner is not None and bool(noted(s)))
    for tier in (TT, HT):  # down and up again: the upgrade asks for a specialist again
        await handle.execute_update(
            AccountOnboarding.override_tier,
            TierOverride(tier=tier, approver="vp-cs", reason="scope changed"),
        )
    await assignments_done(handle, 3)  # the CSM, the specialist, the specialist again
    st = await status(handle)
    assert noted(st) == ["no implementation specialists on the roster (ONBOARDING_CSM_ROSTER)"]
    assert st.specialist is None and st.owner == "csm-1@localhost"
    assert not [a for a in st.audit if a.kind.endswith("_unassigned")]

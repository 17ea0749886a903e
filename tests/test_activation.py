"""rules §7 (docs/rules.md), *Activation by role*: a user's role from the event or an
earlier identify call, each user activated once, a role activated by its N-th user, first
value by roles when the playbook's roles are; what the status, the UI, the records store
and the report show of it; on the time-skipping server the whole path, and through the
real ingress an identify call then a track call."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.records.store import RecordStore
from starter.reports.portfolio import portfolio_report
from tests.support.deals import TIER_DEALS, make_deal
from tests.support.ingress import account, now_iso, post_events, start_deal, track, until
from tests.support.onboardings import Onboardings, fresh_progress, status
from tests.support.onboardings import until as status_until
from tests.support.records import make_record
from workflows import presentation
from workflows.event_mapping import EventMapper
from workflows.models import (
    IDENTIFY,
    MAX_KNOWN_USERS,
    MilestoneStatus,
    ProductEvent,
    ProductEventBatch,
    RoleActivation,
    RoleActivationView,
    Tier,
)
from workflows.onboarding import AccountOnboarding
from workflows.playbook import load_playbook
from workflows.progress import Changes, Onboarding, activation

PB = load_playbook()
SPEC = PB.activation
assert SPEC is not None
T0 = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
DAY = timedelta(days=1)


# --------------------------------------------------------------------------- roles


@pytest.mark.parametrize(
    ("said", "role"),
    [
        ("admin", "admin"),
        ("Admin", "admin"),
        ("IT-Admin", "admin"),  # one of the role's values, case and hyphens aside
        ("End User", "end_user"),
        ("end-user", "end_user"),
        ("member", "end_user"),
        ("Executive Sponsor", "executive_sponsor"),
        ("viewer", None),  # no role of the playbook
        (None, None),
    ],
)
def test_a_role_property_names_one_of_the_playbooks_roles(said: str | None, role: str) -> None:
    assert activation.role_of(SPEC, said) == role


def test_a_user_keeps_their_latest_role_and_only_so_many_users_are_remembered() -> None:
    facts = RoleActivation()
    activation.remember(facts, "u1", "admin")
    activation.remember(facts, "u1", "end_user")
    assert facts.user_roles == {"u1": "end_user"}
    activation.remember(facts, "u1", None)  # a role the playbook does not know
    assert facts.user_roles == {}
    for i in range(MAX_KNOWN_USERS + 2):
        activation.remember(facts, f"u{i}", "end_user")
    assert len(facts.user_roles) == MAX_KNOWN_USERS
    assert "u0" not in facts.user_roles and "u1" not in facts.user_roles
    activation.remember(facts, "u2", "admin")  # seen again: now the latest
    assert list(facts.user_roles)[-1] == "u2"


def test_a_user_is_counted_once_and_the_role_is_activated_by_its_nth_user() -> None:
    facts = RoleActivation()
    assert not activation.credit(facts, SPEC, "end_user", "a", T0 + 3 * DAY)
    assert not activation.credit(facts, SPEC, "end_user", "a", T0 + 2 * DAY)  # came late
    assert not activation.credit(facts, SPEC, "end_user", "b", T0 + 4 * DAY)
    assert facts.roles["end_user"].users == {"a": T0 + 2 * DAY, "b": T0 + 4 * DAY}
    assert facts.roles["end_user"].activated_at is None
    assert activation.credit(facts, SPEC, "end_user", "c", T0 + 3.5 * DAY)
    assert facts.roles["end_user"].activated_at == T0 + 4 * DAY  # its last user's time
    assert not activation.credit(facts, SPEC, "end_user", "d", T0 + 5 * DAY)  # stays so
    assert len(facts.roles["end_user"].users) == 3


def event(name: str, user: str | None, role: str | None, day: float) -> ProductEvent:
    return ProductEvent(
        event_id=uuid.uuid4().hex, name=name, user_id=user, role=role, at=T0 + day * DAY
    )


def onboarding(playbook: Any = PB) -> Onboarding:
    deal = make_deal("001R", close_date=T0)
    return Onboarding(deal, playbook, fresh_progress(playbook, Tier.TECH_TOUCH, T0))


Call = tuple[str, str | None, str | None, float]  # name, user, role said, day


@pytest.mark.parametrize(
    ("calls", "line", "first_value_day"),
    [
        pytest.param(
            [(IDENTIFY, "u1", "admin", 1), ("setup_completed", "u1", None, 2)],
            "admin 1/1 ✓, end user 0/3, executive sponsor 0/1",
            None,
            id="identify-then-the-admins-setup",
        ),
        pytest.param(
            [("setup_completed", "u1", None, 2), (IDENTIFY, "u1", "admin", 3)],
            "admin 0/1, end user 0/3, executive sponsor 0/1",
            None,
            id="a-role-said-later-does-not-count-what-came-before",
        ),
        pytest.param(
            [("integration_connected", "u1", "Admin", 2)],
            "admin 1/1 ✓, end user 0/3, executive sponsor 0/1",
            None,
            id="the-role-in-the-events-properties",
        ),
        pytest.param(
            [(IDENTIFY, "u1", "admin", 1), ("core_workflow_completed", "u1", None, 2)],
            "admin 0/1, end user 0/3, executive sponsor 0/1",
            None,
            id="another-roles-path-counts-nothing",
        ),
        pytest.param(
            [("core_workflow_completed", "u1", None, 2), ("report_viewed", None, "sponsor", 2)],
            "admin 0/1, end user 0/3, executive sponsor 0/1",
            None,
            id="no-role-or-no-user-counts-nothing",
        ),
        pytest.param(
            [
                (IDENTIFY, "u1", "end_user", 1),
                (IDENTIFY, "u1", "executive", 1.5),
                ("report_viewed", "u1", None, 2),
            ],
            "admin 0/1, end user 0/3, executive sponsor 1/1 ✓",
            None,
            id="the-latest-identify-wins",
        ),
        pytest.param(
            [
                ("core_workflow_completed", "u2", "end_user", 3),
                ("core_workflow_completed", "u2", "end_user", 3.5),
                ("core_workflow_completed", "u3", "end_user", 4),
            ],
            "admin 0/1, end user 2/3, executive sponsor 0/1",
            None,
            id="two-distinct-end-users-of-three",
        ),
        pytest.param(
            [
                ("core_workflow_completed", "u2", "end_user", 3),
                ("core_workflow_completed", "u3", "end_user", 4),
                ("core_workflow_completed", "u4", "end_user", 5),
                (IDENTIFY, "u1", "admin", 1),
                ("setup_completed", "u1", None, 6),
            ],
            "admin 1/1 ✓, end user 3/3 ✓, executive sponsor 0/1",
            6,
            id="admin-and-three-end-users-first-value",
        ),
    ],
)
def test_activation_by_role_follows_the_users_events(
    calls: list[Call], line: str, first_value_day: float | None
) -> None:
    o, out = onboarding(), Changes()
    for name, user, role, day in calls:
        activation.note(o, out, event(name, user, role, day), T0 + 10 * DAY)
    assert activation.line(activation.views(o)) == line
    reached = activation.first_value_by_roles_at(o.progress)
    assert reached == (T0 + first_value_day * DAY if first_value_day is not None else None)
    kinds = [a.kind for a in out.audit]
    assert kinds.count("role_activated") == line.count("✓")
    assert kinds.count("first_value_by_roles") == (first_value_day is not None)


def test_an_event_is_dated_when_it_happened_and_never_after_now() -> None:
    o, out = onboarding(), Changes()
    later = event("setup_completed", "u1", "admin", 12)  # a device clock ahead
    activation.note(o, out, later, T0 + 10 * DAY)
    assert activation.views(o)[0].activated_at == T0 + 10 * DAY
    assert out.audit[0].detail == "admin: activated 2026-12-17"


def test_a_playbook_without_activation_measures_no_role() -> None:
    bare = PB.model_copy(update={"activation": None})
    o, out = onboarding(bare), Changes()
    activation.note(o, out, event("setup_completed", "u1", "admin", 2), T0 + 3 * DAY)
    assert o.progress.activation is None and out.audit == []
    assert activation.views(o) == []
    assert activation.awaited_events(o) == frozenset()
    assert "Activation by role" not in presentation.checklist(o, T0 + 3 * DAY)
    identify = EventMapper(bare).product_event(
        event_id="i1", name=IDENTIFY, properties={"role": "admin"}, at=None, user_id="u1"
    )
    assert identify == f"no milestone of playbook {PB.version} is completed by 'identify'"


# --------------------------------------------------------------------------- the ingress's part


def mapped(name: str, user: str | None = "u1", **properties: object) -> ProductEvent | str:
    return EventMapper(PB).product_event(
        event_id="e1", name=name, properties=properties, at=None, user_id=user
    )


def test_calls_carry_the_users_role_and_an_identify_call_needs_a_user_and_a_role() -> None:
    identify = mapped(IDENTIFY, role=" Admin ")
    assert isinstance(identify, ProductEvent)
    assert (identify.name, identify.user_id, identify.role) == (IDENTIFY, "u1", "Admin")
    assert mapped(IDENTIFY, plan="pro") == "an identify call without a 'role' trait says no role"
    assert mapped(IDENTIFY, user=None, role="admin") == (
        "an identify call needs the user (userId or anonymousId) to say their role"
    )
    setup = mapped("setup_completed", role="admin")  # a milestone's event
    viewed = mapped("report_viewed", role="executive")  # a role's own event
    assert isinstance(setup, ProductEvent) and setup.role == "admin"
    assert isinstance(viewed, ProductEvent) and viewed.role == "executive"
    plain = mapped("setup_completed", role=3)  # not a role's name
    assert isinstance(plain, ProductEvent) and plain.role is None


def test_identify_calls_are_awaited_while_a_role_is_not_yet_activated() -> None:
    o, out = onboarding(), Changes()
    assert activation.awaited_events(o) == {IDENTIFY}
    calls = [("setup_completed", "a", "admin"), ("report_viewed", "x", "sponsor")]
    calls += [("core_workflow_completed", f"e{i}", "end_user") for i in range(3)]
    for name, user, role in calls:
        activation.note(o, out, event(name, user, role, 2), T0 + 3 * DAY)
    assert activation.awaited_events(o) == frozenset()


# --------------------------------------------------------------------------- what people see


def test_the_status_and_the_ui_show_each_roles_path_and_the_rule() -> None:
    o, out = onboarding(), Changes()
    calls: list[Call] = [(IDENTIFY, "u1", "admin", 1), ("setup_completed", "u1", None, 2)]
    calls += [("core_workflow_completed", u, "end_user", 3) for u in ("u2", "u3")]
    for name, user, role, day in calls:
        activation.note(o, out, event(name, user, role, day), T0 + 4 * DAY)
    st = presentation.status(o, "wf", T0 + 4 * DAY)
    assert st.roles == [
        RoleActivationView(
            role="admin", title="admin", users=1, needed=1, activated_at=T0 + 2 * DAY
        ),
        RoleActivationView(role="end_user", title="end user", users=2, needed=3, activated_at=None),
        RoleActivationView(
            role="executive_sponsor",
            title="executive sponsor",
            users=0,
            needed=1,
            activated_at=None,
        ),
    ]
    assert st.first_value_by_roles_at is None
    details = presentation.checklist(o, T0 + 4 * DAY).splitlines()
    assert (
        "Activation by role: admin 1/1 ✓, end user 2/3, executive sponsor 0/1 · "
        "first value (admin and end user): not yet"
    ) in details


# --------------------------------------------------------------------------- records, report


def roles(won: datetime, admin: float | None, end_user: float | None) -> list[RoleActivationView]:
    def view(role: str, needed: int, day: float | None) -> RoleActivationView:
        at = won + day * DAY if day is not None else None
        users = needed if at else 0
        title = role.replace("_", " ")
        return RoleActivationView(
            role=role, title=title, users=users, needed=needed, activated_at=at
        )

    return [
        view("admin", 1, admin),
        view("end_user", 3, end_user),
        view("executive_sponsor", 1, None),
    ]


def test_the_store_keeps_each_roles_activation(store: RecordStore) -> None:
    won = datetime.now(UTC).replace(microsecond=0) - 20 * DAY
    record = make_record("001R", won).model_copy(
        update={"roles": roles(won, 2, 9), "first_value_by_roles_at": won + 9 * DAY}
    )
    assert store.save(record)
    assert store.get("001R") == record
    again = record.model_copy(update={"revision": 2, "roles": roles(won, 2, None)})
    assert store.save(again)
    assert store.get("001R") == again


NOW = datetime(2031, 5, 15, 12, tzinfo=UTC)


def test_the_report_gives_each_roles_activation_rate_within_the_window(
    empty_store: RecordStore,
) -> None:
    won = NOW - 40 * DAY  # closed long enough ago for the 30-day window to be judged

    def account(key: str, admin: float | None, end_user: float | None, **over: Any) -> Any:
        at = won if "won" not in over else over.pop("won")
        first = max(admin, end_user) if admin is not None and end_user is not None else None
        return make_record(key, at).model_copy(
            update={
                "roles": roles(at, admin, end_user),
                "first_value_by_roles_at": at + first * DAY if first is not None else None,
            }
        )

    records = [
        account("a1", 2, 10),  # first value by roles on day 10
        account("a2", 5, 35),  # end users after the window
        account("a3", 40, None),  # the admin after it, the end users never
        account("a4", None, 20),
        account("young", 1, 2, won=NOW - 10 * DAY),  # too young to judge; its days count
        make_record("bare", won),  # a playbook without [activation]: measures no role
    ]
    for r in records:
        assert empty_store.save(r)
    report = portfolio_report(empty_store, PB, NOW)
    assert [f.model_dump() for f in report.roles] == [
        {
            "role": "admin",
            "title": "admin",
            "activation": {"count": 2, "of": 4, "pct": 50.0},
            "activation_median_days": 3.5,  # days 1, 2, 5, 40
            "activated": 4,
        },
        {
            "role": "end_user",
            "title": "end user",
            "activation": {"count": 2, "of": 4, "pct": 50.0},
            "activation_median_days": 15.0,  # days 2, 10, 20, 35
            "activated": 4,
        },
        {
            "role": "executive_sponsor",
            "title": "executive sponsor",
            "activation": {"count": 0, "of": 4, "pct": 0.0},
            "activation_median_days": None,
            "activated": 0,
        },
    ]
    assert report.first_value_by_roles is not None
    assert report.first_value_by_roles.model_dump() == {"count": 1, "of": 4, "pct": 25.0}


# --------------------------------------------------------------------------- the workflow


async def test_roles_are_activated_by_their_users_and_first_value_by_roles_follows(
    env: WorkflowEnvironment, onboardings: Onboardings
) -> None:
    closed = await onboardings.now()
    deal = make_deal(close_date=closed, **TIER_DEALS["tech_touch"])
    handle = await onboardings.start(deal)

    async def send(*calls: tuple[str, str, str | None]) -> datetime:
        """The users' events, as happening now (returned)."""
        now = await onboardings.now()
        events = [
            ProductEvent(event_id=uuid.uuid4().hex, name=name, user_id=user, role=role, at=now)
            for name, user, role in calls
        ]
        await handle.signal(AccountOnboarding.product_events, ProductEventBatch(events=events))
        return now

    await onboardings.days_later(1)
    await send((IDENTIFY, "u1", "admin"))
    await onboardings.days_later(1)
    admin_at = await send(("setup_completed", "u1", None))
    st = await status_until(handle, lambda st: st.roles[0].activated_at is not None)
    assert st.roles[0].activated_at == admin_at
    assert [(v.role, v.users, v.needed) for v in st.roles] == [
        ("admin", 1, 1),
        ("end_user", 0, 3),
        ("executive_sponsor", 0, 1),
    ]

    await onboardings.days_later(1)
    await send(("core_workflow_completed", "u2", "end_user"))
    await send(
        ("core_workflow_completed", "u2", "end_user"), ("core_workflow_completed", "u3", "user")
    )
    st = await status_until(handle, lambda st: st.roles[1].users == 2)
    # Two end users of three: the role waits, and so does first value by roles; the
    # value milestone itself was reached by the first core workflow, as before.
    assert st.roles[1].activated_at is None and st.first_value_by_roles_at is None
    first_value = next(m for m in st.milestones if m.id == PB.value_milestone)
    assert first_value.status is MilestoneStatus.DONE

    await onboardings.days_later(1)
    third_at = await send(("core_workflow_completed", "u4", "End User"))
    st = await status_until(handle, lambda st: st.first_value_by_roles_at is not None)
    assert st.roles[1].users == 3 and st.roles[1].activated_at == third_at
    assert st.first_value_by_roles_at == third_at
    assert [a.kind for a in st.audit if a.kind.endswith("roles") or a.kind == "role_activated"] == [
        "role_activated",
        "role_activated",
        "first_value_by_roles",
    ]

    store = RecordStore.open(onboardings.records_url)
    try:
        for _ in range(200):
            saved = store.get(deal.account_id)
            if saved and saved.first_value_by_roles_at is not None:
                break
            await asyncio.sleep(0.05)
        assert saved is not None
        assert saved.roles == st.roles
        assert saved.first_value_by_roles_at == third_at
    finally:
        store.close()
    assert (await status(handle)).roles[2].users == 0


# --------------------------------------------------------------------------- through the ingress


def identify(acct: str, user: str, **traits: Any) -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": f"msg-{uuid.uuid4().hex}",
        "userId": user,
        "context": {"groupId": acct},
        "traits": traits,
        "timestamp": now_iso(),
    }


async def test_an_identify_call_then_the_users_track_call_activate_the_admin(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    nobody = account()
    early = await post_events(http, [identify(nobody, "u-9", role="admin")])
    [answer] = early.json()["events"]
    assert answer["outcome"] == "ignored"
    assert answer["reason"] == (
        "no onboarding yet to remember the role in: an identify call starts none"
    )
    assert early.json()["signals"] == 0

    acct = account()
    await start_deal(http, acct)
    calls = [
        identify(acct, "u-9", role="IT Admin", name="Ann"),
        identify(acct, "u-8", plan="pro"),  # says no role
        track(acct, "setup_completed") | {"userId": "u-9"},
    ]
    response = await post_events(http, calls)
    assert response.status_code == 200, response.text
    outcomes = [(e["outcome"], e.get("reason")) for e in response.json()["events"]]
    assert outcomes == [
        ("accepted", None),
        ("ignored", "an identify call without a 'role' trait says no role"),
        ("accepted", None),
    ]

    async def admin_activated() -> dict[str, Any] | None:
        st = (await http.get(f"/accounts/{acct}")).json()
        admin = st["roles"][0]
        return st if admin["activated_at"] else None

    st = await until(admin_activated)
    assert [(r["role"], r["users"], r["needed"]) for r in st["roles"]] == [
        ("admin", 1, 1),
        ("end_user", 0, 3),
        ("executive_sponsor", 0, 1),
    ]

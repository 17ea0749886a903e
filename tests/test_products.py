"""A multi-product deal's staggered rollout (rules §6.2 (docs/rules.md)): the deal's
products and their checks, the per-product gates of the plan, adoption, the decision at
a phase gate, the re-basing on release, the loader's checks, and on the time-skipping
server a product held at its pilot gate until its predecessor's adoption reaches 60 %."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from activities.deals import unknown_migrated_milestone
from tests.support.deals import TIER_DEALS, make_deal
from tests.support.onboardings import Onboardings, status, until
from tests.test_playbook import edited, problems
from workflows.event_mapping import EventMapper, event_names
from workflows.formats import day_text
from workflows.models import (
    Audience,
    ClosedWonDeal,
    CompletedMilestone,
    DealProduct,
    MilestoneStatus,
    OnboardingProgress,
    OnboardingStatus,
    Phase,
    ProductEvent,
    ProductEventBatch,
    Tier,
    TierDecision,
    product_dependencies,
)
from workflows.onboarding import AccountOnboarding
from workflows.playbook import load_playbook
from workflows.presentation import checklist
from workflows.progress import (
    Changes,
    Notify,
    Onboarding,
    advance,
    credit_observed_events,
    products,
)
from workflows.rules import build_plan, milestone_credit, next_milestone, replan

DAY = timedelta(days=1)
PB = load_playbook()
T0 = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
TECH = Tier.TECH_TOUCH
PRODUCTS = [
    {"id": "crm", "name": "CRM", "licensed_seats": 10},
    {"id": "analytics", "name": "Analytics", "licensed_seats": 4},
]


def day(n: float) -> datetime:
    return T0 + n * DAY


def deal(products: list[dict[str, Any]] = PRODUCTS) -> ClosedWonDeal:
    return make_deal("acct-multi", close_date=T0, products=products, **TIER_DEALS["tech_touch"])


def onboarding(d: ClosedWonDeal | None = None) -> Onboarding:
    d = d or deal()
    progress = OnboardingProgress(
        tier=TECH,
        tier_decision=TierDecision(tier=TECH, clause="test", reason="test"),
        milestones=build_plan(PB, TECH, T0, d.deal_type, d.products),
        started_at=T0,
        clock_start=T0,
        last_progress_at=T0,
        success_criteria=["x"],
    )
    return Onboarding(d, PB, progress)


def users(o: Onboarding, product: str, n: int, first: int = 0) -> None:
    for i in range(first, first + n):
        event = ProductEvent(
            event_id=f"{product}-{i}", name="user_logged_in", user_id=f"u{i}", product=product
        )
        products.count(o.progress, o.deal, event, day(1), {})


def run(o: Onboarding, at: float) -> Changes:
    return advance(o, None, day(at), lambda: True, lambda: True)


# --------------------------------------------------------------------------- the deal


@pytest.mark.parametrize(
    ("listed", "message"),
    [
        (
            [PRODUCTS[0], PRODUCTS[0]],
            "products[1].id: 'crm' is listed twice",
        ),
        (
            [PRODUCTS[0] | {"licensed_seats": 0}],
            "products.0.licensed_seats",
        ),
        (
            [PRODUCTS[0], PRODUCTS[1] | {"depends_on": ["erp"]}],
            "products[1].depends_on: 'erp' is not a listed product",
        ),
        (
            [PRODUCTS[0] | {"depends_on": ["crm"]}],
            "products[0].depends_on: 'crm' is the product itself",
        ),
        (
            [PRODUCTS[0] | {"depends_on": ["analytics"]}, PRODUCTS[1]],
            "products[0].depends_on: cycle crm -> analytics -> crm",
        ),
        (
            [PRODUCTS[0] | {"id": "CRM!"}],
            "products.0.id",
        ),
    ],
    ids=["twice", "no-seats", "unknown", "itself", "cycle", "bad-id"],
)
def test_a_bad_product_list_names_the_field(listed: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        deal(listed)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("listed", "expected"),
    [
        ([], {}),
        (PRODUCTS, {"crm": [], "analytics": ["crm"]}),
        (
            [*PRODUCTS, {"id": "erp", "name": "ERP", "licensed_seats": 5, "depends_on": []}],
            {"crm": [], "analytics": ["crm"], "erp": []},
        ),
        (
            [
                PRODUCTS[0],
                {"id": "erp", "name": "ERP", "licensed_seats": 5},
                PRODUCTS[1],
                {"id": "bi", "name": "BI", "licensed_seats": 5, "depends_on": ["crm", "erp"]},
            ],
            {"crm": [], "erp": ["crm"], "analytics": ["erp"], "bi": ["crm", "erp"]},
        ),
    ],
    ids=["none", "default-previous", "explicit-none", "explicit-two"],
)
def test_dependencies_default_to_the_product_before(
    listed: list[dict[str, Any]], expected: dict[str, list[str]]
) -> None:
    assert product_dependencies(deal(listed).products) == expected


# --------------------------------------------------------------------------- the plan


def test_per_product_gates_repeat_once_per_product_and_a_deal_without_products_is_unchanged() -> (
    None
):
    ids = [m.id for m in build_plan(PB, TECH, T0, products=deal().products)]
    assert ids == [
        "first_login",
        "kickoff_call",
        "technical_setup:crm",
        "technical_setup:analytics",
        "data_import:crm",
        "data_import:analytics",
        "first_training:crm",
        "first_training:analytics",
        "first_value",
        "team_adoption:crm",
        "team_adoption:analytics",
        "handoff",
    ]
    plan = {m.id: m for m in build_plan(PB, TECH, T0, products=deal().products)}
    setup = plan["technical_setup:analytics"]
    assert (setup.title, setup.product, setup.template, setup.due_at) == (
        "Technical setup / configuration complete (Analytics)",
        "analytics",
        "technical_setup",
        day(14),
    )
    single = build_plan(PB, TECH, T0)
    assert [m.id for m in single] == [s.id for s in PB.milestones_for(TECH)]
    assert all(m.product is None and m.template is None for m in single)


def test_a_product_gate_is_credited_only_by_its_own_products_events() -> None:
    o = onboarding()
    event = ProductEvent(event_id="s1", name="setup_completed", product="analytics")
    o.progress.event_counts["setup_completed"] = 1
    products.count(o.progress, o.deal, event, day(2), {"setup_completed": 1})
    credit_observed_events(o, Changes(), day(2), lambda: True)
    done = {m.id for m in o.progress.milestones if m.status is MilestoneStatus.DONE}
    assert done == {"technical_setup:analytics"}
    assert o.progress.milestones[3].done_at == day(2)


@pytest.mark.parametrize(
    ("product", "why"),
    [
        ("analytics", None),
        (None, None),  # names no product: the account's event
        ("nosuch", "product 'nosuch' is not one of the deal's products (crm, analytics)"),
    ],
)
def test_an_event_naming_a_product_the_deal_does_not_sell_is_said_so(
    product: str | None, why: str | None
) -> None:
    o = onboarding()
    event = ProductEvent(event_id="p1", name="user_logged_in", product=product)
    found = products.unknown_product(o.deal, event)
    assert found == why if why is None else found is not None and found.startswith(why)


# --------------------------------------------------------------------------- adoption


@pytest.mark.parametrize(
    ("seats", "active", "share"),
    [(10, 0, 0.0), (10, 5, 0.5), (10, 6, 0.6), (4, 3, 0.75), (10, 12, 1.0)],
)
def test_adoption_is_active_users_over_licensed_seats(
    seats: int, active: int, share: float
) -> None:
    product = DealProduct(id="crm", name="CRM", licensed_seats=seats)
    assert products.adoption(product, active) == share


def test_active_users_are_distinct_per_product_and_kept_up_to_the_seats() -> None:
    o = onboarding()
    users(o, "crm", 3)
    users(o, "crm", 3)  # the same users again
    users(o, "analytics", 9)  # 4 seats
    stranger = ProductEvent(event_id="x", name="user_logged_in", user_id="u0", product="erp")
    products.count(o.progress, o.deal, stranger, day(1), {})
    no_user = ProductEvent(event_id="y", name="user_logged_in", product="crm")
    products.count(o.progress, o.deal, no_user, day(1), {})
    assert products.adoptions(o.deal, o.progress) == {"crm": 0.3, "analytics": 1.0}
    assert len(o.progress.products["analytics"].users) == 4
    assert set(o.progress.products) == {"crm", "analytics"}


@pytest.mark.parametrize(
    ("adopted", "goes_on"),
    [
        ({}, True),
        ({"crm": 0.5}, False),
        ({"crm": 0.59}, False),
        ({"crm": 0.6}, True),
        ({"crm": 0.9, "erp": 0.2}, False),
        ({"crm": 0.9, "erp": 0.6}, True),
    ],
)
def test_a_product_goes_on_when_every_predecessor_reached_the_threshold(
    adopted: dict[str, float], goes_on: bool
) -> None:
    assert products.may_go_on(adopted, 0.6) is goes_on


# --------------------------------------------------------------------------- gates


def test_held_at_the_pilot_gate_while_the_predecessor_is_under_the_threshold() -> None:
    o = onboarding()
    users(o, "crm", 5)
    assert products.next_gate(o) == (day(7), "analytics", Phase.PILOT)
    run(o, 6.9)
    assert o.progress.product_gates == []
    out = run(o, 7)
    held = {m.id for m in o.progress.milestones if m.held}
    assert held == {
        "technical_setup:analytics",
        "data_import:analytics",
        "first_training:analytics",
        "team_adoption:analytics",
    }
    assert (out.audit[0].kind, out.audit[0].detail) == (
        "product_held",
        "Analytics waits at pilot: crm adoption 50% (threshold 60%)",
    )
    assert products.next_gate(o) is None  # a waiting product has no later gate
    # Past its original deadline (day 14) nothing escalates on the held gate, and it
    # counts for the account, never against it.
    run(o, 15)
    alerts = {e.milestone_id for e in o.progress.escalations if e.step_id == "overdue_nudge"}
    assert "technical_setup:crm" in alerts
    assert not any(i and i.endswith(":analytics") for i in alerts)
    setup = next(m for m in o.progress.milestones if m.id == "technical_setup:analytics")
    assert milestone_credit(setup, day(15), PB.health) is None
    assert "(held: its product waits)" in checklist(o, day(15))
    assert "waits at the pilot gate since" in checklist(o, day(15))


def test_passes_the_gate_when_the_predecessor_reached_the_threshold() -> None:
    o = onboarding()
    users(o, "crm", 6)
    out = run(o, 7)
    assert [g.outcome for g in o.progress.product_gates] == ["passed"]
    assert not any(m.held for m in o.progress.milestones)
    assert out.audit[0].kind == "product_gate_passed"
    # The next gate is go_live's (day 21 in tech_touch), decided afresh then.
    assert products.next_gate(o) == (day(21), "analytics", Phase.GO_LIVE)


def test_release_rebases_the_held_gates_on_that_moment() -> None:
    o = onboarding()
    users(o, "crm", 5)
    run(o, 7)
    due = {m.id: m.due_at for m in o.progress.milestones}
    users(o, "crm", 1, first=5)  # 6 of 10: 60 %
    out = run(o, 10)
    assert out.audit[0].kind == "product_released"
    assert out.audit[0].detail == (
        "Analytics goes on after 3 days at the pilot gate: crm adoption 60% (threshold 60%)"
    )
    plan = {m.id: m for m in o.progress.milestones}
    for i in ("technical_setup", "data_import", "first_training", "team_adoption"):
        m = plan[f"{i}:analytics"]
        assert (m.held, m.due_at, m.revision) == (False, due[f"{i}:analytics"] + 3 * DAY, 1)
        assert plan[f"{i}:crm"].due_at == due[f"{i}:crm"]
    assert o.progress.product_gates[0].released_at == day(10)


@pytest.mark.parametrize(
    ("held_start", "now", "shift_days"),
    [(7, 7, 0), (7, 10, 3), (7, 5, 0), (7, 7.5, 0.5)],
)
def test_release_shift_table(held_start: float, now: float, shift_days: float) -> None:
    plan = products.hold(onboarding().progress.milestones, "analytics", Phase.PILOT)
    moved = products.release(plan, "analytics", day(now))
    for before, after in zip(plan, moved, strict=True):
        expected = shift_days * DAY if before.product == "analytics" else timedelta(0)
        assert after.due_at - before.due_at == expected
        assert not after.held
    assert min(m.starts_at for m in plan if m.held) == day(held_start)


@pytest.mark.parametrize(
    ("waiting", "released", "told"),
    [
        ("product_waiting", "product_released", [["product_waiting"], [], ["product_released"]]),
        ("product_waiting", None, [["product_waiting"], [], []]),
        (None, None, [[], [], []]),
    ],
    ids=["both", "waiting-only", "pinned-before-the-keys"],
)
def test_the_csm_is_told_once_when_a_product_starts_waiting_and_when_it_goes_on(
    waiting: str | None, released: str | None, told: list[list[str]]
) -> None:
    rollout = PB.products.model_copy(
        update={"waiting_template": waiting, "released_template": released}
    )
    o = Onboarding(deal(), PB.model_copy(update={"products": rollout}), onboarding().progress)
    users(o, "crm", 5)
    sent: list[list[Notify]] = []
    # Day 7: held; day 8: a wake-up while it still waits; day 10: the sixth CRM user.
    for at, more in ((7, 0), (8, 0), (10, 1)):
        users(o, "crm", more, first=5)
        effects = [e for e in run(o, at).effects if isinstance(e, Notify)]
        sent.append([e for e in effects if e.trigger.startswith("product-")])
    assert [[n.template_id for n in notes] for notes in sent] == told
    notes = [n for notes in sent for n in notes]
    assert all(n.audience is Audience.CSM for n in notes)
    if waiting:
        held = notes[0]
        assert held.trigger == "product-analytics-pilot-waiting"
        assert (held.variables["product"], held.variables["gate"], held.variables["reason"]) == (
            "Analytics",
            "pilot",
            "crm adoption 50% (threshold 60%)",
        )
    if released:
        gone_on = notes[-1]
        assert gone_on.trigger == "product-analytics-pilot-released"
        assert (gone_on.variables["days"], gone_on.variables["reason"]) == (
            "3",
            "crm adoption 60% (threshold 60%)",
        )
        # Its first gate, re-based on the release: technical setup, day 14 + 3.
        assert gone_on.variables["due"] == day_text(day(17))


def test_a_tier_change_keeps_a_waiting_product_held() -> None:
    o = onboarding()
    run(o, 7)
    plan = replan(PB, o.progress.milestones, Tier.HIGH_TOUCH, day(8), products=o.deal.products)
    o.progress.milestones = plan
    products.hold_again(o.progress)
    assert {m.id for m in o.progress.milestones if m.held} == {
        f"{i}:analytics"
        for i in ("technical_setup", "data_import", "first_training", "team_adoption")
    }


def test_a_deal_without_products_has_no_gate() -> None:
    o = onboarding(make_deal("acct-one", close_date=T0, **TIER_DEALS["tech_touch"]))
    run(o, 30)
    assert o.progress.product_gates == [] and products.next_gate(o) is None
    assert "Products:" not in checklist(o, day(30))


# --------------------------------------------------------------------------- the playbook


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        pytest.param(
            edited("adoption_threshold = 0.60", "adoption_threshold = 0"),
            "products.adoption_threshold",
            "greater than 0",
            id="zero",
        ),
        pytest.param(
            edited("adoption_threshold = 0.60", "adoption_threshold = 1.5"),
            "products.adoption_threshold",
            "less than or equal to 1",
            id="over-one",
        ),
        pytest.param(
            edited('per_product = ["technical_setup",', 'per_product = ["nope",'),
            "products",
            "per_product: nope is not a milestone id",
            id="unknown",
        ),
        pytest.param(
            edited('per_product = ["technical_setup",', 'per_product = ["first_value",'),
            "products",
            "per_product: first_value is the value_milestone",
            id="value-milestone",
        ),
        pytest.param(
            edited('per_product = ["technical_setup",', 'per_product = ["data_import",'),
            "products.per_product",
            "data_import listed twice",
            id="twice",
        ),
    ],
)
def test_a_broken_products_section_names_key_and_reason(text: str, key: str, reason: str) -> None:
    found = [p.removeprefix("(top level): ") for p in problems(text)]
    assert any(p.startswith(key) and reason in p for p in found), found


# --------------------------------------------------------------------------- the workflow


async def test_product_two_waits_at_the_pilot_gate_until_product_one_reaches_60_percent(
    onboardings: Onboardings,
) -> None:
    closed = await onboardings.now()
    d = make_deal(close_date=closed, products=PRODUCTS, **TIER_DEALS["tech_touch"])
    handle = await onboardings.start(d)
    n = 0

    async def crm_user(i: int) -> None:
        nonlocal n
        n += 1
        event = ProductEvent(
            event_id=f"e{n}", name="user_logged_in", user_id=f"u{i}", product="crm"
        )
        await handle.signal(AccountOnboarding.product_events, ProductEventBatch(events=[event]))

    for i in range(5):  # 5 of CRM's 10 seats: 50 %
        await crm_user(i)
    await until(handle, lambda st: st.products[0].active_users == 5)

    def analytics(st: OnboardingStatus, gate: str = "technical_setup") -> Any:
        return next(m for m in st.milestones if m.id == f"{gate}:analytics")

    def alerts(st: OnboardingStatus) -> list[str | None]:
        return [e.milestone_id for e in st.escalations if e.step_id == "overdue_nudge"]

    # The pilot gate is day 7 (tech_touch's kickoff ends): not decided the moment before.
    await onboardings.days_later(7 - 0.01)
    st = await status(handle)
    assert st.products[1].waiting_at is None and not analytics(st).held
    await onboardings.days_later(0.02)
    st = await status(handle)
    view = st.products[1]
    assert (view.waiting_at, view.predecessor_adoption, view.threshold) == (
        Phase.PILOT,
        {"crm": 0.5},
        0.6,
    )
    assert analytics(st).held
    assert [a.detail for a in st.audit if a.kind == "product_held"] == [
        "Analytics waits at pilot: crm adoption 50% (threshold 60%)"
    ]

    # Day 14, technical setup's original deadline: CRM's alert, none for Analytics.
    await onboardings.days_later(14 - 7.01 + 0.01)
    st = await status(handle)
    assert "technical_setup:crm" in alerts(st)
    assert "technical_setup:analytics" not in alerts(st)

    # The event before the crossing one (a user already counted): still held.
    await onboardings.days_later(1)  # day 15.01
    await crm_user(4)
    st = await until(handle, lambda st: st.event_counts.get("user_logged_in") == 6)
    assert st.products[1].waiting_at is not None and analytics(st).held
    # The sixth user: 60 %, released at once, its deadlines re-based on this moment.
    released = await onboardings.now()
    await crm_user(5)
    st = await until(handle, lambda st: st.products[1].waiting_at is None)
    assert st.products[0].adoption == 0.6
    due = analytics(st).due_at
    # Planned 7 days after the phase's start (day 7 -> day 14): now 7 days after release.
    assert abs((due - released) / DAY - 7) < 0.01
    assert "Analytics" in next(a.detail for a in st.audit if a.kind == "product_released")

    # An event naming a product the deal does not sell counts for the account only.
    typo = ProductEvent(event_id="typo", name="user_logged_in", user_id="u9", product="crn")
    await handle.signal(AccountOnboarding.product_events, ProductEventBatch(events=[typo]))
    st = await until(handle, lambda st: any(r.ref == "user_logged_in" for r in st.rejected))
    assert "product 'crn' is not one of the deal's products" in st.rejected[-1].reason
    assert st.products[0].active_users == 6

    # Its alert comes on the re-based deadline, not the day before.
    await onboardings.days_later((due - await onboardings.now()) / DAY - 1)
    assert "technical_setup:analytics" not in alerts(await status(handle))
    await onboardings.days_later(1.01)
    assert "technical_setup:analytics" in alerts(await status(handle))


async def test_the_csm_is_told_on_the_day_a_product_starts_waiting_and_once_only(
    onboardings: Onboardings,
) -> None:
    closed = await onboardings.now()
    d = make_deal(close_date=closed, products=PRODUCTS, **TIER_DEALS["tech_touch"])
    handle = await onboardings.start(d)
    logins = [
        ProductEvent(event_id=f"e{i}", name="user_logged_in", user_id=f"u{i}", product="crm")
        for i in range(6)
    ]
    batch = ProductEventBatch(events=logins[:5])  # 5 of CRM's 10 seats: 50 %
    await handle.signal(AccountOnboarding.product_events, batch)
    await until(handle, lambda st: st.products[0].active_users == 5)
    waits = "[CSM] Acme Corp: Analytics waits at the pilot gate"
    goes_on = "[CSM] Acme Corp: Analytics goes on"

    def subjects() -> list[str]:
        return [r["subject"] for r in onboardings.sent(d.account_id)]

    await onboardings.days_later(7 - 0.01)  # the day before the pilot gate's moment
    await status(handle)
    assert waits not in subjects()
    await onboardings.days_later(0.02)
    await onboardings.subjects_once(d.account_id, waits)
    # Day 14: the loop wakes for CRM's alert; Analytics still waits, and is not told again.
    await onboardings.days_later(7)
    st = await status(handle)
    assert "technical_setup:crm" in [e.milestone_id for e in st.escalations]
    assert subjects().count(waits) == 1 and goes_on not in subjects()
    batch = ProductEventBatch(events=logins[5:])  # the sixth user: 60 %
    await handle.signal(AccountOnboarding.product_events, batch)
    await onboardings.subjects_once(d.account_id, goes_on)
    assert subjects().count(waits) == 1


def test_the_ingress_lets_adoption_events_through_while_a_gate_is_ahead_or_waits() -> None:
    o = onboarding()
    every = event_names(PB)
    assert products.adoption_events(o) == every  # the pilot gate is ahead
    run(o, 7)  # held
    assert products.adoption_events(o) == every
    users(o, "crm", 6)
    for at in (8, 21, 28, 49):  # released, then go_live, validation ... all passed
        run(o, at)
    assert products.next_gate(o) is None and not any(g.waiting for g in o.progress.product_gates)
    assert products.adoption_events(o) == frozenset()
    single = onboarding(make_deal("acct-one", close_date=T0, **TIER_DEALS["tech_touch"]))
    assert products.adoption_events(single) == frozenset()


@pytest.mark.parametrize(
    ("properties", "product"),
    [({"product": "crm"}, "crm"), ({}, None), ({"product": 3}, None), ({"product": None}, None)],
)
def test_the_ingress_keeps_the_events_product(
    properties: dict[str, object], product: str | None
) -> None:
    event = EventMapper(PB).product_event(
        event_id="e1", name="user_logged_in", properties=properties, at=None, user_id="u1"
    )
    assert isinstance(event, ProductEvent) and event.product == product


@pytest.mark.parametrize(
    ("done", "refused"),
    [
        ("technical_setup:crm", None),
        ("technical_setup", None),  # a playbook milestone (not planned: recorded as rejected)
        ("technical_setup:erp", "'technical_setup:erp' is not a milestone of playbook"),
        ("first_login:crm", "'first_login:crm' is not a milestone of playbook"),
    ],
)
def test_a_migrated_deal_may_name_a_products_own_gate(done: str, refused: str | None) -> None:
    migrated = deal().model_copy(
        update={"completed_milestones": [CompletedMilestone(milestone_id=done, at=day(1))]}
    )
    found = unknown_migrated_milestone(migrated, PB)
    if refused is None:
        assert found is None
    else:
        assert found == ("completed_milestones[0].milestone_id", found[1])
        assert found[1].startswith(refused)


def test_the_next_deadline_is_not_a_waiting_products() -> None:
    o = onboarding()
    run(o, 7)
    for m in o.progress.milestones:
        if m.product == "crm" or m.phase is Phase.KICKOFF:
            m.status = MilestoneStatus.DONE
            m.done_at = day(7)
    # Analytics' technical setup (day 14) waits; first value (day 30) is next.
    nxt = next_milestone(o.progress.milestones)
    assert nxt is not None and nxt.id == "first_value"

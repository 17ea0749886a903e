"""A trial converted to paid (rules §2 (docs/rules.md), *Tracks besides new business*):
which deal converts a trial and which is refused and why, the trial ended as converted
and the paid deal queued first; on the time-skipping server through `deliver_deal` (the
one way in of every CRM route, the import and the CLI) a running trial ended at once and
continued as the paid onboarding, and a finished trial followed by a new run; over HTTP
through the real app; and the report, which counts a converted trial as converted, not
as a failed onboarding."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from activities.records.schema import onboarding
from activities.records.store import RecordStore
from activities.starting import deliver_deal
from tests.support.deals import TIER_DEALS, make_deal
from tests.support.ingress import account, post_deal, until
from tests.support.onboardings import fresh_progress
from tests.support.records import DAY, make_record, milestone_view, report_over
from tests.test_expansion import Service, service
from tests.test_report_figures import share
from tests.test_workflow import reach
from workflows import presentation
from workflows.models import (
    CancelRequest,
    ClosedWonDeal,
    DealDelivery,
    DealType,
    OnboardingState,
    OnboardingStatus,
    Playbook,
    Tier,
)
from workflows.models.record import OnboardingRecord
from workflows.onboarding import AccountOnboarding
from workflows.playbook import load_playbook
from workflows.progress import Onboarding, expansion

__all__ = ["service"]  # the fixture, shared with tests/test_expansion.py

PB = load_playbook()
CLOSED = datetime(2030, 3, 2, tzinfo=UTC)
NEW, EXPANSION, WIN_BACK, TRIAL = (
    DealType.NEW_BUSINESS,
    DealType.EXPANSION,
    DealType.WIN_BACK,
    DealType.TRIAL,
)
CONVERTED = "converted to paid: deal hubspot:D2"


def deal(deal_id: str | None, deal_type: DealType, **over: Any) -> ClosedWonDeal:
    crm = {"source": "hubspot", "deal_id": deal_id}
    return make_deal("acme", close_date=CLOSED, deal_type=deal_type, crm=crm, **over)


def running(of: ClosedWonDeal) -> Onboarding:
    """The account's running onboarding of deal `of`, its first here."""
    return Onboarding(of, PB, fresh_progress(PB, Tier.SELF_SERVE, CLOSED))


def status(o: Onboarding) -> OnboardingStatus:
    return presentation.status(o, "onboarding-acme", CLOSED)


def finished(of: ClosedWonDeal) -> OnboardingStatus:
    """The result of the account's finished onboarding of deal `of`."""
    return status(running(of))


# --------------------------------------------------------------------------- the rules


@pytest.mark.parametrize(
    ("last", "arriving", "follows"),
    [
        (TRIAL, NEW, True),
        (TRIAL, WIN_BACK, True),
        (TRIAL, EXPANSION, True),
        (TRIAL, TRIAL, False),  # a second trial deal: answered as before
        (NEW, NEW, False),
        (NEW, WIN_BACK, False),
        (NEW, EXPANSION, True),
        (EXPANSION, TRIAL, False),
    ],
)
def test_a_paid_deal_follows_a_finished_trial_as_an_expansion_follows_any(
    last: DealType, arriving: DealType, follows: bool
) -> None:
    assert expansion.follows(deal("D2", arriving), last) is follows


@pytest.mark.parametrize(
    ("trial", "arriving", "why"),
    [
        (deal("D1", TRIAL), deal("D2", NEW), None),
        (deal("D1", TRIAL), deal("D2", WIN_BACK), None),
        (deal(None, TRIAL), deal("D2", NEW), None),  # the trial had no id: nothing to mix up
        (deal("D1", TRIAL), deal("D1", NEW), "deal hubspot:D1 was onboarded already"),
        (
            deal("D1", TRIAL),
            deal(None, NEW),
            "a paid deal without a CRM deal id (crm.deal_id) cannot be told",
        ),
    ],
    ids=["new-business", "win-back", "trial-without-id", "trial-deal-retyped", "no-id"],
)
def test_a_paid_deal_the_account_never_had_starts_its_paid_onboarding_after_the_trial(
    trial: ClosedWonDeal, arriving: ClosedWonDeal, why: str | None
) -> None:
    reason = expansion.why_not_again(arriving, finished(trial))
    assert reason == why if why is None else why in (reason or "")


def test_a_running_trial_converts_only_for_a_paid_deal_of_its_own() -> None:
    o = running(deal("D1", TRIAL))
    o.progress.earlier_deals = ["hubspot:D0"]
    assert [
        expansion.converts(o, d)
        for d in (
            deal("D2", NEW),
            deal("D2", WIN_BACK),
            deal("D2", EXPANSION),
            deal("D2", TRIAL),  # another trial deal
            deal("D1", NEW),  # the trial's own deal, retyped
            deal("D0", NEW),  # an earlier onboarding's
            deal(None, NEW),  # cannot be told from a redelivery
        )
    ] == [True, True, True, False, False, False, False]
    assert not expansion.converts(running(deal("D1", NEW)), deal("D2", NEW))  # not a trial


def test_converting_ends_the_trial_as_cancelled_and_its_paid_deal_goes_first() -> None:
    o = running(deal("D1", TRIAL))
    paid = deal("D2", NEW, **TIER_DEALS["high_touch"])
    delivery = DealDelivery(deal=paid, playbook=PB, delivery_id="hubspot:1")

    detail, changes = expansion.convert(o, delivery, CLOSED + 5 * DAY)

    assert detail.startswith(
        "paid onboarding started after the trial, the account's onboarding 2 here; the "
        "trial converted to paid (high_touch: ACV $80,000 >= enterprise threshold"
    )
    assert [(a.kind, a.detail) for a in changes.audit] == [
        ("cancelled", CONVERTED),
        ("trial_converted", "deal hubspot:D2: its paid onboarding starts now"),
    ]
    st = status(o)
    assert (st.state, st.cancel_reason, st.converted_to) == (
        OnboardingState.CANCELLED,
        CONVERTED,
        "hubspot:D2",
    )
    # Redelivered under another delivery id: the same answer, converted once.
    again = delivery.model_copy(update={"delivery_id": "hubspot:2"})
    assert expansion.converts(o, paid)
    redelivered, unchanged = expansion.convert(o, again, CLOSED + 6 * DAY)
    assert (redelivered, unchanged.audit) == (detail, [])
    assert [q.deal for q in o.progress.queued_deals] == [paid]
    # Another paid deal now is the paid onboarding's business, not the trial's.
    assert not expansion.converts(o, deal("D3", NEW))

    following = expansion.next_onboarding(o, deal_wait_days=30, max_history_events=2_000)
    assert following is not None and following.deal == paid
    assert (following.onboarding_number, following.earlier_deals) == (2, ["hubspot:D1"])
    assert following.delivery_id == "hubspot:1" and following.queued_deals == []


def test_a_trial_that_finished_already_only_queues_the_paid_deal() -> None:
    """A paid deal delivered while a finished trial's run ends (its last record being
    written) is not lost: it follows, and the trial keeps how it ended."""
    o = running(deal("D1", TRIAL))
    o.progress.finished_at = CLOSED + 30 * DAY  # completed
    paid = DealDelivery(deal=deal("D2", NEW), playbook=PB, delivery_id="hubspot:1")

    detail, changes = expansion.convert(o, paid, CLOSED + 30 * DAY)

    assert "the trial completed" in detail and changes.audit == []
    st = status(o)
    assert (st.state, st.converted_to) == (OnboardingState.COMPLETED, None)
    assert [q.deal for q in o.progress.queued_deals] == [paid.deal]


# --------------------------------------------------------------------------- the workflow


async def test_a_running_trial_converted_to_paid_ends_and_its_paid_onboarding_runs_at_once(
    service: Service,
) -> None:
    closed = await service.env.get_current_time()
    acct = f"globex-{uuid.uuid4().hex[:6]}"
    crm = {"source": "hubspot"}
    trial = make_deal(
        acct,
        close_date=closed,
        deal_type=TRIAL,
        crm=crm | {"deal_id": "D1"},
        **TIER_DEALS["high_touch"],
    )
    assert (await service.deal(trial)).started
    assert (await service.status(acct)).tier is Tier.SELF_SERVE
    await service.env.sleep(timedelta(days=5))
    won = await service.env.get_current_time()
    paid = make_deal(acct, close_date=won, crm=crm | {"deal_id": "D2"}, **TIER_DEALS["high_touch"])

    # Delivered as `service.deal` does, but the paid onboarding is the trial's run continued
    # as new, whose histories the trial's handle already records.
    answer = await deliver_deal(service.client, paid, service.playbook, "hubspot:paid")

    assert (answer.started, answer.queued, answer.state) == (True, False, OnboardingState.ACTIVE)
    assert answer.detail.startswith(
        "paid onboarding started after the trial, the account's onboarding 2 here; the "
        "trial converted to paid (high_touch: "
    )

    async def paid_onboarding() -> OnboardingStatus | None:
        st = await service.status_between_runs(acct)
        return st if st is not None and st.onboarding_number == 2 and st.owner else None

    st = await until(paid_onboarding, within=30)  # a full suite on 2 busy cores is slow
    assert st is not None, "the paid onboarding did not begin"
    assert (st.deal_type, st.tier, st.state) == (NEW, Tier.HIGH_TOUCH, OnboardingState.ACTIVE)
    assert st.closed_won_at == won and st.deals_onboarded == ["hubspot:D1", "hubspot:D2"]
    assert "kickoff_call" in [m.id for m in st.milestones]  # the new-business plan
    assert st.owner in ("csm-1@localhost", "csm-2@localhost")
    assert await until(lambda: len(service.welcomes(acct)) == 2)  # its own welcome

    # The trial's record says it ended converted, and the paid one is beside it.
    store = RecordStore.open(service.settings.records_url)
    one = store.get(acct, 1)
    assert one is not None
    assert (one.deal_type, one.state, one.cancel_reason, one.converted_to) == (
        TRIAL,
        OnboardingState.CANCELLED,
        CONVERTED,
        "hubspot:D2",
    )
    assert "trial_converted" in [a.kind for a in one.audit]
    assert await until(lambda: store.get(acct, 2))
    store.close()

    # The paid deal again, and another trial deal: nothing new.
    for again in (
        paid,
        make_deal(acct, close_date=won, deal_type=TRIAL, crm=crm | {"deal_id": "D3"}),
    ):
        answer = await service.deal(again)
        assert (answer.started, answer.queued) == (False, False)
        assert answer.detail.startswith("already onboarding since")
    st = await service.status(acct)
    assert (st.onboarding_number, st.queued_deals, st.converted_to) == (2, [], None)


async def test_a_paid_deal_after_a_finished_trial_is_a_new_run_of_the_same_id(
    service: Service,
) -> None:
    closed = await service.env.get_current_time()
    acct = f"initech-{uuid.uuid4().hex[:6]}"
    crm = {"source": "salesforce"}
    trial = make_deal(acct, close_date=closed, deal_type=TRIAL, crm=crm | {"deal_id": "006T"})
    paid = make_deal(acct, close_date=closed, deal_type=WIN_BACK, crm=crm | {"deal_id": "006P"})
    assert (await service.deal(trial)).started
    first = await service.handle(acct).describe()
    for m in [s.id for s in (await service.status(acct)).milestones]:
        await reach(service.handle(acct), m)
    assert (await service.handle(acct).result()).state is OnboardingState.COMPLETED

    started = await service.deal(paid)

    assert started.started, started.detail
    assert started.detail.startswith(
        "paid onboarding started after the trial, the account's onboarding 2 here; the "
        "trial completed ("
    )
    assert (await service.handle(acct).describe()).run_id != first.run_id
    st = await service.status(acct)
    assert (st.deal_type, st.onboarding_number) == (WIN_BACK, 2)
    assert st.deals_onboarded == ["salesforce:006T", "salesforce:006P"]
    # The trial's result stays as it ended: completed, not converted.
    earlier = service.client.get_workflow_handle(
        f"onboarding-{acct}", run_id=first.run_id, result_type=OnboardingStatus
    )
    kept = await earlier.result()
    assert (kept.state, kept.converted_to) == (OnboardingState.COMPLETED, None)

    # Redelivered while it runs and after it ended: no further run.
    again = await service.deal(paid)
    assert not again.started and again.detail.startswith("already onboarding since")
    await service.handle(acct).execute_update(
        AccountOnboarding.cancel, CancelRequest(by="csm", reason="customer left again")
    )
    await service.handle(acct).result()
    answer = await service.deal(paid)  # the latest onboarding is the paid one: as before
    assert (answer.started, answer.detail) == (
        False,
        "already onboarded (cancelled); not started again",
    )


# --------------------------------------------------------------------------- over HTTP


async def test_the_generic_deal_route_answers_a_trials_paid_deal_201_and_converts_it(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    acct = account()

    async def post(**over: Any) -> httpx.Response:
        return await post_deal(http, acct, **over)

    trial = await post(crm={"source": "generic", "deal_id": "T1"}, deal_type="trial")
    assert trial.status_code == 201, trial.text
    paid = await post(crm={"source": "generic", "deal_id": "P1"})
    assert paid.status_code == 201, paid.text
    assert paid.json()["detail"].startswith("paid onboarding started after the trial")
    assert (paid.json()["started"], paid.json()["state"]) == (True, "active")

    async def converted() -> dict[str, Any] | None:
        status = (await http.get(f"/accounts/{acct}")).json()
        return status if status.get("onboarding_number") == 2 else None

    status = await until(converted)
    assert status is not None and status["deal_type"] == "new_business"
    assert status["deals_onboarded"] == ["generic:T1", "generic:P1"]
    redelivered = await post(crm={"source": "generic", "deal_id": "P1"})
    assert redelivered.status_code == 200 and not redelivered.json()["started"]


# --------------------------------------------------------------------------- the report


def trial_record(
    account_id: str, won: datetime, state: OnboardingState, converted_to: str | None = None
) -> OnboardingRecord:
    """A trial's record, its 30-day self_serve plan from `won`."""
    return make_record(
        account_id,
        won,
        tier=Tier.SELF_SERVE,
        state=state,
        milestones=[milestone_view("handoff", won, 30)],
        finished_at=won + 10 * DAY if state is not OnboardingState.ACTIVE else None,
    ).model_copy(update={"deal_type": TRIAL, "converted_to": converted_to})


def test_a_converted_trial_is_no_failed_onboarding_and_counts_as_converted(
    store: RecordStore, playbook: Playbook
) -> None:
    """Of the trials past their plan: 001A ended by its conversion, 001B was cancelled
    and later bought (a paid onboarding followed), 001C completed, 001D was cancelled;
    001E converted but is within its plan, so it is not judged yet."""
    now = datetime.now(UTC).replace(microsecond=0)
    old, young = now - 60 * DAY, now - 10 * DAY
    paid = make_record("001B", old + 40 * DAY).model_copy(
        update={"onboarding_number": 2, "deal_type": NEW}
    )
    records = [
        trial_record("001A", old, OnboardingState.CANCELLED, "hubspot:A2"),
        trial_record("001B", old, OnboardingState.CANCELLED),
        paid,
        trial_record("001C", old, OnboardingState.COMPLETED),
        trial_record("001D", old, OnboardingState.CANCELLED),
        trial_record("001E", young, OnboardingState.CANCELLED, "hubspot:E2"),
    ]

    report = report_over(store, playbook, now, records)

    [self_serve] = [g for g in report.by_tier if g.tier is Tier.SELF_SERVE]
    # Completion: 001C completed of 001C and 001D; the converted ones are left out.
    assert self_serve.completion == share(1, 2)
    assert self_serve.trials_converted == share(2, 4)
    assert report.overall.trials_converted == share(2, 4)
    [tech] = [g for g in report.by_tier if g.tier is Tier.TECH_TOUCH]
    assert tech.trials_converted == share(0, 0)  # the paid onboarding is no trial


def test_the_migration_knows_the_trials_recorded_before_it(store: RecordStore) -> None:
    """Migration 0010 adds the deal type and the conversion; the trials written before
    it are known by their clause (`self_serve.trial`), the rest stay unknown."""
    won = datetime.now(UTC).replace(microsecond=0) - 60 * DAY
    trial = trial_record("001T", won, OnboardingState.ACTIVE).model_copy(
        update={"tier_clause": "self_serve.trial"}
    )
    other = make_record("001N", won).model_copy(update={"deal_type": NEW})
    assert store.save(trial) and store.save(other)
    store.downgrade("0009")

    store.migrate()

    with store.engine.connect() as conn:
        kept = conn.execute(
            sa.select(onboarding.c.account_id, onboarding.c.deal_type).order_by(
                onboarding.c.account_id
            )
        ).all()
    assert kept == [("001N", None), ("001T", "trial")]

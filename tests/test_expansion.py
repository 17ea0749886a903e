"""An expansion of an account whose earlier onboarding ran here (rules §2 (docs/rules.md),
*Tracks besides new business*): the rules that decide when a deal starts the account's
next onboarding, then, on the time-skipping server through `deliver_deal` (the one way
in of every CRM route, the import and the CLI), a finished onboarding followed by a new
run and a running one queueing the deal; and over HTTP through the real app."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import activities_for
from activities.owners import OwnerRoster
from activities.records.store import LazyStore, RecordStore
from activities.settings import Settings
from activities.starting import AlreadyOnboardedError, deliver_deal
from starter.reports.portfolio import portfolio_report
from starter.reports.rows import load_rows
from tests.support.deals import TIER_DEALS, make_deal
from tests.support.histories import HISTORIES, RECORD_HISTORIES, record_histories
from tests.support.ingress import account, post_deal, runs, until
from tests.support.onboardings import fresh_progress
from tests.support.records import DAY, make_record, milestone_view
from tests.test_assignment import assign
from tests.test_programs import took_part
from tests.test_workflow import reach
from workflows import presentation
from workflows.assignment import Load
from workflows.contract import TASK_QUEUE
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

PB = load_playbook()
CLOSED = datetime(2030, 3, 2, tzinfo=UTC)
NEW, EXPANSION = DealType.NEW_BUSINESS, DealType.EXPANSION


def deal(deal_id: str | None, deal_type: DealType = EXPANSION, **over: Any) -> ClosedWonDeal:
    crm = {"source": "hubspot", "deal_id": deal_id}
    return make_deal("acme", close_date=CLOSED, deal_type=deal_type, crm=crm, **over)


def finished(
    of: ClosedWonDeal, earlier: list[str] | None = None, *, keys_kept: bool = True
) -> OnboardingStatus:
    """The result of the account's finished onboarding of deal `of`; `keys_kept` False:
    a result from before deal keys were kept (no `deals_onboarded`)."""
    progress = fresh_progress(PB, Tier.TECH_TOUCH, CLOSED, earlier_deals=earlier or [])
    st = presentation.status(Onboarding(of, PB, progress), "onboarding-acme", CLOSED)
    return st if keys_kept else st.model_copy(update={"deals_onboarded": []})


# --------------------------------------------------------------------------- the rules


@pytest.mark.parametrize(
    ("last", "arriving", "why"),
    [
        (deal("D1", NEW), deal("D2"), None),
        (deal("D2"), deal("D3"), None),  # an expansion after an expansion
        (deal("D1", NEW), deal("D1"), "deal hubspot:D1 was onboarded already"),
        (deal("D2"), deal("D2"), "deal hubspot:D2 was onboarded already"),
        (deal(None, NEW), deal("D2"), None),  # the first deal had no id: nothing to mix up
        (deal("D1", NEW), deal(None), "without a CRM deal id (crm.deal_id) cannot be told"),
    ],
    ids=["after-new", "after-expansion", "same-id", "redelivered", "no-first-id", "no-id"],
)
def test_an_expansion_deal_the_account_never_had_starts_its_next_onboarding(
    last: ClosedWonDeal, arriving: ClosedWonDeal, why: str | None
) -> None:
    reason = expansion.why_not_again(arriving, finished(last))
    assert reason == why if why is None else why in (reason or "")


def test_an_earlier_onboardings_deal_is_never_onboarded_twice() -> None:
    third = finished(deal("D2"), earlier=["hubspot:D1"])
    assert third.deals_onboarded == ["hubspot:D1", "hubspot:D2"]
    assert expansion.why_not_again(deal("D1"), third) == "deal hubspot:D1 was onboarded already"
    assert expansion.why_not_again(deal("D3"), third) is None
    assert expansion.next_number(third) == (2, ["hubspot:D1", "hubspot:D2"])


@pytest.mark.parametrize(
    ("last_type", "why"),
    [(NEW, None), (EXPANSION, "the earlier onboarding was an expansion whose deal id")],
)
def test_a_result_from_before_deal_keys_refuses_only_after_an_expansion(
    last_type: DealType, why: str | None
) -> None:
    old = finished(deal("D1", last_type), keys_kept=False)
    reason = expansion.why_not_again(deal("D2"), old)
    assert reason == why if why is None else (reason or "").startswith(why)


def test_a_running_onboarding_queues_only_an_expansion_of_its_own_once() -> None:
    o = Onboarding(deal("D1", NEW), PB, fresh_progress(PB, Tier.TECH_TOUCH, CLOSED))
    o.progress.earlier_deals = ["hubspot:D0"]
    assert [
        expansion.another_expansion(o, d)
        for d in (deal("D2"), deal("D3", NEW), deal("D1"), deal("D0"), deal(None))
    ] == [True, False, False, False, False]

    delivery = DealDelivery(deal=deal("D2"), playbook=PB, delivery_id="hubspot:1")
    detail, changes = expansion.queue(o, delivery, CLOSED)
    assert detail.startswith("expansion deal hubspot:D2 queued on")
    assert [a.kind for a in changes.audit] == ["expansion_queued"]
    again = delivery.model_copy(update={"delivery_id": "hubspot:2"})  # redelivered
    assert expansion.queue(o, again, CLOSED)[0] == detail
    assert len(o.progress.queued_deals) == 1
    assert [q.deal for q in expansion.queued_views(o.progress)] == ["hubspot:D2"]

    following = expansion.next_onboarding(o, deal_wait_days=30, max_history_events=2_000)
    assert following is not None and following.deal == delivery.deal
    assert following.onboarding_number == 2
    assert following.earlier_deals == ["hubspot:D0", "hubspot:D1"]
    assert following.delivery_id == "hubspot:1" and following.queued_deals == []


def test_the_next_onboarding_says_which_it_is_in_the_audit() -> None:
    p = fresh_progress(PB, Tier.TECH_TOUCH, CLOSED)
    assert expansion.follow(p, 1, [], [], CLOSED).audit == []
    [entry] = expansion.follow(p, 2, ["hubspot:D1"], [], CLOSED).audit
    assert (entry.kind, entry.detail) == (
        "earlier_onboardings",
        "onboarding 2 of the account; earlier deals: hubspot:D1",
    )
    assert p.onboarding_number == 2


# --------------------------------------------------------------------------- the workflow


class Service:
    """The service's worker on the real task queue of a time-skipping server (as
    `deliver_deal` starts onboardings there), its records in a store of the test's own."""

    def __init__(self, env: WorkflowEnvironment, playbook: Playbook, tmp_path: Path) -> None:
        self.env, self.playbook = env, playbook
        self.settings = Settings(
            notify_channels=["log"],
            sent_log=tmp_path / "sent.jsonl",
            records_url=f"sqlite:///{tmp_path / 'records.db'}",
        )
        # Each run a deal started, from its first (`make histories` records them).
        self.started: list[WorkflowHandle[Any, Any]] = []

    @property
    def client(self) -> Client:
        return self.env.client

    async def deal(self, d: ClosedWonDeal) -> Any:
        """`deliver_deal`'s answer, or the refusal of a finished onboarding's."""
        try:
            answer = await deliver_deal(self.client, d, self.playbook, f"test:{uuid.uuid4()}")
        except AlreadyOnboardedError as exc:
            return exc.acceptance()
        if answer.started:
            run = (await self.handle(d.account_id).describe()).run_id
            self.started.append(
                self.client.get_workflow_handle(answer.workflow_id, first_execution_run_id=run)
            )
        return answer

    def handle(self, account_id: str) -> WorkflowHandle[Any, OnboardingStatus]:
        return self.client.get_workflow_handle(
            f"onboarding-{account_id}", result_type=OnboardingStatus
        )

    async def status(self, account_id: str) -> OnboardingStatus:
        return await self.handle(account_id).query(AccountOnboarding.status)

    async def status_between_runs(self, account_id: str) -> OnboardingStatus | None:
        """The status, or None for a query caught between one run and the next (it times
        out while the run continues as new): poll again."""
        try:
            return await self.status(account_id)
        except RPCError:
            return None

    def welcomes(self, account_id: str) -> list[str]:
        log = self.settings.sent_log
        lines = log.read_text().splitlines() if log and log.exists() else []
        keys = [json.loads(line)["key"] for line in lines if line]
        return [k for k in keys if k.startswith(f"onboarding-{account_id}") and "welcome" in k]


@pytest.fixture
async def service(
    env: WorkflowEnvironment, playbook: Playbook, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Service]:
    it = Service(env, playbook, tmp_path)
    async with Worker(
        env.client,
        task_queue=TASK_QUEUE,
        workflows=[AccountOnboarding],
        activities=activities_for(it.settings),
        workflow_failure_exception_types=[Exception],
    ):
        yield it
        if folder := os.environ.get(RECORD_HISTORIES):
            await record_histories(env.client, it.started, HISTORIES / folder, request.node.name)


async def test_an_expansion_after_a_finished_onboarding_is_a_new_run_of_the_same_id(
    service: Service,
) -> None:
    closed = await service.env.get_current_time()
    acct = f"acme-{uuid.uuid4().hex[:6]}"
    crm = {"source": "hubspot"}
    first_deal = make_deal(
        acct, close_date=closed, crm=crm | {"deal_id": "D1"}, **TIER_DEALS["tech_touch"]
    )
    more = make_deal(
        acct,
        close_date=closed,
        deal_type=EXPANSION,
        crm=crm | {"deal_id": "D2"},
        **TIER_DEALS["tech_touch"],
    )
    assert (await service.deal(first_deal)).started
    first = await service.handle(acct).describe()
    for m in [s.id for s in (await service.status(acct)).milestones]:
        await reach(service.handle(acct), m)
    done = await service.handle(acct).result()
    assert done.state is OnboardingState.COMPLETED

    started = await service.deal(more)

    assert started.started, started.detail
    assert "expansion onboarding started, the account's onboarding 2 here" in started.detail
    st = await service.status(acct)
    assert (st.deal_type, st.onboarding_number) == (EXPANSION, 2)
    assert st.deals_onboarded == ["hubspot:D1", "hubspot:D2"]
    assert "first_training" not in [m.id for m in st.milestones]  # the expansion track
    assert (await service.handle(acct).describe()).run_id != first.run_id
    # The earlier run's history and result stay.
    earlier = service.client.get_workflow_handle(
        f"onboarding-{acct}", run_id=first.run_id, result_type=OnboardingStatus
    )
    assert (await earlier.result()).completion_pct == 100
    assert await until(lambda: len(service.welcomes(acct)) == 2, within=20)  # each its own welcome

    # The same deal again, while its onboarding runs and after it ended: no new run.
    again = await service.deal(more)
    assert not again.started and "already onboarding" in again.detail
    await service.handle(acct).execute_update(
        AccountOnboarding.cancel, CancelRequest(by="csm", reason="customer paused the rollout")
    )
    await service.handle(acct).result()
    for redelivered, why in [(more, "deal hubspot:D2"), (first_deal, "")]:
        answer = await service.deal(redelivered)
        assert not answer.started and answer.state is OnboardingState.CANCELLED
        assert answer.detail.startswith("already onboarded (cancelled); not started again")
        assert why in answer.detail
    last = await service.handle(acct).result()  # the latest run is still the expansion's
    assert (last.onboarding_number, last.state) == (2, OnboardingState.CANCELLED)

    # Both onboardings are in the records store, each whole.
    store = RecordStore.open(service.settings.records_url)
    one, two = store.get(acct, 1), store.get(acct, 2)
    assert one is not None and one.state is OnboardingState.COMPLETED
    assert two is not None and two.state is OnboardingState.CANCELLED
    assert store.get(acct) == two
    store.close()


async def test_an_expansion_for_a_running_onboarding_waits_then_gets_its_own(
    service: Service,
) -> None:
    closed = await service.env.get_current_time()
    acct = f"umbrella-{uuid.uuid4().hex[:6]}"
    crm = {"source": "salesforce"}
    first_deal = make_deal(acct, close_date=closed, crm=crm | {"deal_id": "006A"})
    more = make_deal(acct, close_date=closed, deal_type=EXPANSION, crm=crm | {"deal_id": "006B"})
    other_new = make_deal(acct, close_date=closed, crm=crm | {"deal_id": "006C"})
    assert (await service.deal(first_deal)).started

    queued = await service.deal(more)
    assert (queued.started, queued.queued) == (False, True)
    assert "expansion deal salesforce:006B queued on" in queued.detail
    again = await service.deal(more)  # redelivered: not queued twice
    assert again.queued and again.detail == queued.detail
    assert not (await service.deal(other_new)).queued  # new business: answered as before
    st = await service.status(acct)
    assert [q.deal for q in st.queued_deals] == ["salesforce:006B"]
    assert [a.kind for a in st.audit].count("expansion_queued") == 1

    await service.handle(acct).execute_update(
        AccountOnboarding.cancel, CancelRequest(by="csm", reason="first product returned")
    )

    async def following() -> OnboardingStatus | None:
        st = await service.status_between_runs(acct)
        return st if st is not None and st.onboarding_number == 2 else None

    nxt = await until(following, within=20)
    assert nxt is not None
    assert (nxt.deal_type, nxt.state, nxt.queued_deals) == (EXPANSION, OnboardingState.ACTIVE, [])
    assert nxt.deals_onboarded == ["salesforce:006A", "salesforce:006B"]
    assert "earlier_onboardings" in [a.kind for a in nxt.audit]
    store = RecordStore.open(service.settings.records_url)
    one = await until(lambda: store.get(acct, 1), within=20)
    assert one is not None and one.state is OnboardingState.CANCELLED
    assert await until(lambda: store.get(acct, 2), within=20)
    store.close()


# --------------------------------------------------------------------------- over HTTP


async def test_the_generic_deal_route_answers_an_expansion_201_then_202_when_queued(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    acct = account()

    async def post(**over: Any) -> httpx.Response:
        return await post_deal(http, acct, **over)

    assert (await post(crm={"source": "generic", "deal_id": "G1"})).status_code == 201
    handle = dev_env.client.get_workflow_handle(f"onboarding-{acct}")
    await handle.execute_update("cancel", CancelRequest(by="csm", reason="test"))
    await handle.result()

    expanded = await post(crm={"source": "generic", "deal_id": "G2"}, deal_type="expansion")
    assert expanded.status_code == 201, expanded.text
    assert expanded.json()["detail"].startswith("expansion onboarding started")
    redelivered = await post(crm={"source": "generic", "deal_id": "G2"}, deal_type="expansion")
    assert redelivered.status_code == 200 and not redelivered.json()["queued"]
    queued = await post(crm={"source": "generic", "deal_id": "G3"}, deal_type="expansion")
    assert queued.status_code == 202, queued.text
    assert queued.json()["queued"] is True and queued.json()["started"] is False
    assert await runs(dev_env.client, acct) == 2
    status = (await http.get(f"/accounts/{acct}")).json()
    assert status["onboarding_number"] == 2
    assert [q["deal"] for q in status["queued_deals"]] == ["generic:G3"]


# --------------------------------------------------------------------------- the store, the report


def two_onboardings(now: datetime) -> tuple[OnboardingRecord, OnboardingRecord]:
    """Account 001X's first onboarding (completed: its setup done, 3 teammates invited,
    the webinar attended, 9 support tickets, its CSM and specialist) and its expansion's
    (running: setup open, invited to the webinar but not there yet, 2 tickets, another
    CSM and the same specialist)."""
    won, grown = now - 150 * DAY, now - 40 * DAY
    first = make_record(
        "001X",
        won,
        tier=Tier.HIGH_TOUCH,
        state=OnboardingState.COMPLETED,
        finished_at=won + 100 * DAY,
        owner="csm-1@localhost",
        milestones=[milestone_view("technical_setup", won, 35, 20)],
        team_invitations=3,
        first_active_day=1,
        came_back_day=9,
        programs=[took_part("onboarding_webinar", won, attended_day=8.1)],
    )
    second = make_record(
        "001X",
        grown,
        tier=Tier.HIGH_TOUCH,
        owner="csm-2@localhost",
        milestones=[milestone_view("technical_setup", grown, 60)],
        programs=[took_part("onboarding_webinar", grown)],
    )
    return (
        first.model_copy(update={"specialist": "dan@v.test", "support_tickets": 9}),
        second.model_copy(
            update={"onboarding_number": 2, "specialist": "dan@v.test", "support_tickets": 2}
        ),
    )


def test_the_report_counts_an_accounts_onboardings_apart(store: RecordStore) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    for record in two_onboardings(now):
        assert store.save(record)

    rows = load_rows(store, PB, now).onboardings
    assert [
        (r.onboarding_number, r.state, r.setup_done, r.team_invitations, r.invited, r.attended)
        for r in rows
    ] == [
        (1, OnboardingState.COMPLETED, True, 3, {"onboarding_webinar"}, {"onboarding_webinar"}),
        (2, OnboardingState.ACTIVE, False, None, {"onboarding_webinar"}, set()),
    ]
    assert [(r.first_active_on is not None, r.came_back_on is not None) for r in rows] == [
        (True, True),
        (False, False),
    ]
    [webinar] = [f for f in portfolio_report(store, PB, now).programs if f.invited]
    assert (webinar.invited, webinar.attended.count) == (2, 1)


async def test_an_accounts_finished_onboarding_is_nobodys_load_and_its_latest_keeps_its_csm(
    store: RecordStore,
) -> None:
    """The loads of capacity-aware assignment and the skip net's peers (rules §7, §6.4)
    count the account's running onboarding only, even though its first one was left with
    the setup gate open, and asking for the account again keeps its latest CSM."""
    now = datetime.now(UTC).replace(microsecond=0)
    first, second = two_onboardings(now)
    first = first.model_copy(
        update={
            "state": OnboardingState.CANCELLED,
            "milestones": [milestone_view("technical_setup", now - 150 * DAY, 35)],
        }
    )
    second = second.model_copy(
        update={"milestones": [milestone_view("technical_setup", now - 40 * DAY, 35, 30)]}
    )
    assert store.save(first) and store.save(second)

    with store.assigning(now) as claims:
        loads = claims.loads(["technical_setup"], "001Z")
    assert loads == {"csm-2@localhost": Load(high_touch=1)}
    assert store.support_ticket_median(Tier.HIGH_TOUCH, "001Z") == (2, 1)
    url = store.engine.url.render_as_string(hide_password=False)
    kept = await assign(OwnerRoster(Settings(records_url=url), LazyStore(url)), "001X")
    assert (kept.owner, kept.reason) == (  # type: ignore[attr-defined]
        "csm-2@localhost",
        "kept: already the account's csm",
    )

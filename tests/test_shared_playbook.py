"""The worker keeps one copy of each pinned playbook, whatever the number of onboardings
pinned to it (README *Worker cost*): a cached onboarding costs the worker a fraction of
what it did when each held its own. The pin holds: a changed file is another playbook,
and the onboardings that run keep theirs; nobody can change a shared one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    Worker,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from activities import Settings, activities_for
from activities.converter import CONVERTER
from tests.support.deals import make_deal
from workflows.models import ClosedWonDeal, DealDelivery, OnboardingInput, Playbook
from workflows.onboarding import AccountOnboarding
from workflows.playbook import DEFAULT_PLAYBOOK, load_playbook, parse_playbook


def through_the_worker(value: Any, kind: type) -> Any:
    """`value` as a worker receives it: to a payload and back, by the service's converter."""
    converter = CONVERTER.payload_converter
    return converter.from_payloads(converter.to_payloads([value]), [kind])[0]


def deal_for(account_id: str, **facts: Any) -> ClosedWonDeal:
    return make_deal(account_id, close_date=datetime.now(UTC), **facts)


def pinned(deal: ClosedWonDeal, playbook: Playbook) -> OnboardingInput:
    return through_the_worker(OnboardingInput(deal=deal, playbook=playbook), OnboardingInput)


def test_onboardings_pinned_to_one_playbook_share_one_copy() -> None:
    playbook = load_playbook()
    first = pinned(deal_for("acme", acv_usd=80_000), playbook)
    second = pinned(deal_for("globex", acv_usd=2_000), playbook)
    assert first.playbook is second.playbook
    delivered = through_the_worker(
        DealDelivery(deal=deal_for("initech"), playbook=playbook, delivery_id="crm:1"),
        DealDelivery,
    )
    assert delivered.playbook is first.playbook


def test_a_changed_file_is_another_playbook_and_running_onboardings_keep_theirs() -> None:
    text = DEFAULT_PLAYBOOK.read_text(encoding="utf-8")
    running = pinned(deal_for("acme"), parse_playbook(text))
    changed = parse_playbook(text.replace('name = "', 'name = "Changed: ', 1))
    started_after = pinned(deal_for("globex"), changed)
    assert started_after.playbook is not running.playbook
    assert started_after.playbook.name.startswith("Changed: ")
    assert not running.playbook.name.startswith("Changed: ")
    assert running.playbook.content_hash != started_after.playbook.content_hash


def test_same_hash_other_content_is_not_shared() -> None:
    # A playbook built in code from a loaded one keeps its `content_hash`: sharing goes by
    # every value, so an onboarding pinned to it never gets the file's playbook instead.
    playbook = load_playbook()
    without_net = playbook.model_copy(update={"skip_net": None})
    a = pinned(deal_for("acme"), playbook)
    b = pinned(deal_for("globex"), without_net)
    assert a.playbook.content_hash == b.playbook.content_hash
    assert a.playbook is not b.playbook
    assert b.playbook.skip_net is None and a.playbook.skip_net is not None


@pytest.mark.parametrize(
    "change",
    [
        lambda p: setattr(p, "version", "9999.1"),
        lambda p: setattr(p.tier_rule, "enterprise_acv_usd", 1.0),
        lambda p: setattr(p.milestones[0], "weight", 3),
        lambda p: setattr(p.ladder[next(iter(p.ladder))][0], "id", "other"),
        lambda p: setattr(p.templates[next(iter(p.templates))], "subject", "Hi"),
    ],
    ids=["version", "tier threshold", "milestone weight", "ladder step", "template"],
)
def test_a_shared_playbook_cannot_be_changed(change: Any) -> None:
    shared = pinned(deal_for("acme"), load_playbook()).playbook
    before = shared.model_dump_json()
    with pytest.raises(ValidationError, match="frozen"):
        change(shared)
    assert shared.model_dump_json() == before


# Each workflow instance's pinned playbook, as the worker's sandbox handed it over.
SEEN: list[Playbook] = []


class _Inbound(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        args: Sequence[Any] = input.args
        SEEN.append(args[0].playbook)
        return await super().execute_workflow(input)


class _Notes(Interceptor):
    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _Inbound


async def test_two_onboardings_in_the_worker_hold_the_same_playbook(
    env: WorkflowEnvironment, playbook: Playbook, tmp_path: Any
) -> None:
    SEEN.clear()
    settings = Settings(notify_channels=["log"], records_url=f"sqlite:///{tmp_path / 'r.db'}")
    changed = parse_playbook(
        DEFAULT_PLAYBOOK.read_text(encoding="utf-8") + "\n# the file changed\n"
    )
    async with Worker(
        env.client,
        task_queue="shared-playbook",
        workflows=[AccountOnboarding],
        activities=activities_for(settings),
        interceptors=[_Notes()],
        workflow_failure_exception_types=[Exception],
    ):
        closed: datetime = await env.get_current_time()
        for account, pin in (("acme", playbook), ("globex", playbook), ("initech", changed)):
            handle = await env.client.start_workflow(
                AccountOnboarding.run,
                OnboardingInput(deal=make_deal(account, close_date=closed), playbook=pin),
                id=f"shared-{account}",
                task_queue="shared-playbook",
            )
            status = await handle.query(AccountOnboarding.status)
            assert status.playbook_hash == pin.content_hash
    acme, globex, initech = SEEN
    assert acme is globex
    assert initech is not acme and initech.content_hash == changed.content_hash


def test_a_broken_playbook_built_in_code_is_still_refused_at_the_start() -> None:
    # The shared playbook passes into every start as it is (it was checked when pinned);
    # one built in code from it, unchecked, is checked like any other.
    shared = OnboardingInput(deal=deal_for("acme"), playbook=load_playbook()).playbook
    assert OnboardingInput(deal=deal_for("globex"), playbook=shared).playbook is shared
    broken = shared.model_copy(update={"value_milestone": "no_such_milestone"})
    with pytest.raises(ValidationError, match="value_milestone: 'no_such_milestone' is not a"):
        OnboardingInput(deal=deal_for("initech"), playbook=broken)

"""What Temporal shows of an onboarding, kept in step with its state: the memo the
ingress reads (`awaited`), the custom search attributes and the UI's current details.

Workflow code: each upsert is a command in the history, so only what changed since the
last upsert is sent. The values themselves come from `workflows.presentation`.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from workflows import presentation as view
    from workflows import progress
    from workflows import search_attributes as sa
    from workflows.event_mapping import awaited_events, event_names
    from workflows.models import AwaitedEvents, EarlyFacts, OnboardingState, Playbook
    from workflows.progress import activation, products


class Publisher:
    """One onboarding's publisher; it remembers what it last upserted (per run: a new
    run publishes afresh)."""

    def __init__(self) -> None:
        self._published: dict[str, object] = {}  # by memo field or search attribute name

    def waiting(
        self, account_id: str, playbook: Playbook, early: EarlyFacts, until: datetime
    ) -> None:
        """Before the deal: every playbook event matters; the UI says what we wait for."""
        self._memo(sorted(event_names(playbook)))
        state, waiting = sa.ONBOARDING_STATE, OnboardingState.AWAITING_DEAL.value
        if self._published.get(state.name) != waiting:
            self._published[state.name] = waiting
            workflow.upsert_search_attributes([state.value_set(waiting)])
        workflow.set_current_details(view.waiting_details(account_id, early, until))

    def onboarding(self, o: progress.Onboarding, now: datetime) -> None:
        """Once begun: the events open milestones await (none once finished), the search
        attributes and the checklist."""
        p = o.progress
        # A multi-product deal's adoption needs events no open gate awaits (rules §6.2);
        # activation by role, identify calls while a role is not yet activated (§7).
        awaited = {
            *awaited_events(o.playbook, p.milestones),
            *products.adoption_events(o),
            *activation.awaited_events(o),
        }
        self._memo([] if p.finished_at is not None else sorted(awaited))
        updates: list[SearchAttributeUpdate] = []
        for key, value in view.search_values(o, now):
            if self._published.get(key.name, ...) == value:
                continue
            updates.append(key.value_unset() if value is None else key.value_set(value))
            self._published[key.name] = value
        if updates:
            workflow.upsert_search_attributes(updates)
        workflow.set_current_details(view.checklist(o, now))

    def _memo(self, awaited: list[str]) -> None:
        """The ingress reads memo `awaited` to drop events no open milestone needs. (A
        bare empty list would be dropped by the server as if unset: hence the model.)"""
        if self._published.get("awaited") != awaited:
            self._published["awaited"] = awaited
            workflow.upsert_memo({"awaited": AwaitedEvents(events=awaited)})

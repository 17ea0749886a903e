"""What the records store keeps of an onboarding, built from its status: one pure function,
so the workflow and `onboarding records backfill` write the same record (rules §8,
docs/rules.md)."""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from pydantic import TypeAdapter

from workflows.models import AuditEntry, OnboardingStatus
from workflows.models.record import OnboardingRecord, PauseSpan

_AUDIT_ENTRY = TypeAdapter(AuditEntry)


def pauses(audit: list[AuditEntry]) -> list[PauseSpan]:
    """Every formal pause, from the audit trail (`paused` then `resumed`), oldest first;
    the current one, if any, is open (`until` None)."""
    spans: list[PauseSpan] = []
    for entry in audit:
        if entry.kind == "paused":
            spans.append(PauseSpan(since=entry.at, by=entry.by, reason=entry.detail))
        elif entry.kind == "resumed" and spans and spans[-1].until is None:
            spans[-1].until = entry.at
    return spans


def record_of(status: OnboardingStatus, revision: int) -> OnboardingRecord:
    """The record of a begun onboarding (one with its closed-won deal) as `status` shows it.
    The cohort is the closed-won month in UTC.

    Raises ValueError for an onboarding still waiting for its deal: it has no record yet.
    """
    if status.tier is None or status.tier_decision is None or status.closed_won_at is None:
        raise ValueError(f"{status.account_id}: no closed-won deal yet, so no record")
    initial = status.tier_changes[0].from_tier if status.tier_changes else status.tier
    return OnboardingRecord(
        account_id=status.account_id,
        onboarding_number=status.onboarding_number,
        workflow_id=status.workflow_id,
        revision=revision,
        as_of=status.as_of,
        account_name=status.account_name,
        acv_usd=status.acv_usd,
        currency=status.currency,
        closed_won_at=status.closed_won_at,
        cohort=status.closed_won_at.strftime("%Y-%m"),
        playbook_version=status.playbook_version,
        started_at=status.started_at or status.closed_won_at,
        initial_tier=initial,
        tier=status.tier,
        tier_clause=status.tier_decision.clause,
        state=status.state,
        phase=status.phase,
        health_score=status.health.score,
        health_band=status.health.band,
        owner=status.owner,
        next_deadline=status.next_deadline,
        completion_pct=status.completion_pct,
        ttv=status.ttv,
        finished_at=status.finished_at,
        cancel_reason=status.cancel_reason,
        paused_days_total=status.paused_days_total,
        decision_required=status.decision_required,
        risk_flags=status.risk_flags,
        milestones=status.milestones,
        escalations=status.escalations,
        tier_changes=status.tier_changes,
        pauses=pauses(status.audit),
        audit=status.audit,
        support_tickets=status.support_tickets,
        team_invitations=status.team_invitations,
        first_active_on=status.first_active_on,
        came_back_on=status.came_back_on,
        skip_checks=status.skip_checks,
        programs=status.programs,
        specialist=status.specialist,
        time_zone=status.time_zone,
        roles=status.roles,
        first_value_by_roles_at=status.first_value_by_roles_at,
        deal_type=status.deal_type,
        converted_to=status.converted_to,
    )


# The record's counts: they move with every product event that counts, and nothing is
# decided on a record's copy of them, so a change of these alone waits (rules §8).
COUNTS = ("team_invitations", "support_tickets")


class Said(NamedTuple):
    """What a record tells the store but its revision and time: a digest of all but its
    counts (32 bytes, not the record and its milestones), and the counts. Two records of
    one run say the same exactly when both match."""

    rest: bytes
    counts: tuple[int | None, ...]


def what_it_says(record: OnboardingRecord) -> Said:
    """What the onboarding keeps of the record it last wrote.

    The audit trail only grows, so its length and last entry tell it (and the pauses
    read from it) from the trail of an earlier record of the same run, and the digest,
    taken at every workflow task, no longer dumps a trail that grows all its life."""
    told = record.model_dump_json(exclude={"revision", "as_of", "audit", "pauses", *COUNTS})
    last = _AUDIT_ENTRY.dump_json(record.audit[-1]).decode() if record.audit else ""
    digest = hashlib.sha256(f"{told}\n{len(record.audit)}\n{last}".encode()).digest()
    return Said(digest, tuple(getattr(record, name) for name in COUNTS))

"""What the records store keeps of an onboarding, built from its status: one pure function,
so the workflow and `onboarding records backfill` write the same record (rules §8,
docs/rules.md)."""

from __future__ import annotations

from workflows.models import OnboardingProgress, OnboardingStatus
from workflows.models.record import OnboardingRecord, PauseSpan


def cohort_of(status: OnboardingStatus) -> str:
    """The closed-won month, `YYYY-MM` in UTC: the cohort every report groups by."""
    assert status.closed_won_at is not None
    return status.closed_won_at.strftime("%Y-%m")


def pauses(progress: OnboardingProgress) -> list[PauseSpan]:
    """Every formal pause, from the audit trail (`paused` then `resumed`), oldest first;
    the current one, if any, is open (`until` None)."""
    spans: list[PauseSpan] = []
    for entry in progress.audit:
        if entry.kind == "paused":
            spans.append(PauseSpan(since=entry.at, by=entry.by, reason=entry.detail))
        elif entry.kind == "resumed" and spans and spans[-1].until is None:
            spans[-1].until = entry.at
    return spans


def record_of(
    status: OnboardingStatus, progress: OnboardingProgress, revision: int
) -> OnboardingRecord:
    """The record of a begun onboarding (one with its closed-won deal) as `status` shows it.

    Raises AssertionError for an onboarding still waiting for its deal: it has no record.
    """
    assert status.tier is not None and status.tier_decision is not None
    assert status.closed_won_at is not None
    initial = status.tier_changes[0].from_tier if status.tier_changes else status.tier
    return OnboardingRecord(
        account_id=status.account_id,
        workflow_id=status.workflow_id,
        revision=revision,
        as_of=status.as_of,
        account_name=status.account_name,
        acv_usd=status.acv_usd,
        currency=status.currency,
        closed_won_at=status.closed_won_at,
        cohort=cohort_of(status),
        playbook_version=status.playbook_version,
        started_at=progress.started_at,
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
        finished_at=progress.finished_at,
        cancel_reason=progress.cancelled.reason if progress.cancelled else None,
        paused_days_total=progress.paused_days_total,
        decision_required=status.decision_required,
        risk_flags=status.risk_flags,
        milestones=status.milestones,
        escalations=status.escalations,
        tier_changes=status.tier_changes,
        pauses=pauses(progress),
        audit=status.audit,
    )


def same_record(a: OnboardingRecord | None, b: OnboardingRecord) -> bool:
    """Whether `b` says nothing new after `a`: all but the revision and time are equal."""
    if a is None:
        return False
    fields = set(OnboardingRecord.model_fields) - {"revision", "as_of"}
    return all(getattr(a, f) == getattr(b, f) for f in fields)

"""What an onboarding remembers of the record it last wrote (`workflows.records.what_it_says`):
a change the store must see makes a new digest; the revision, the time and the counts
alone do not (the counts are compared on their own, rules §8)."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.records import make_record
from workflows.models import AuditEntry
from workflows.models.record import OnboardingRecord, PauseSpan
from workflows.records import what_it_says

CLOSED_WON = datetime.now(UTC).replace(microsecond=0) - timedelta(days=20)


def _entry(day: int, kind: str = "milestone_done") -> AuditEntry:
    return AuditEntry(at=CLOSED_WON + timedelta(days=day), kind=kind, detail=f"{kind} on {day}")


def _written() -> OnboardingRecord:
    record = make_record("0011", CLOSED_WON, milestones=[], team_invitations=2)
    return record.model_copy(update={"audit": [_entry(1), _entry(3)]})


def _said_again(change: dict[str, object]) -> bool:
    """Whether the record with `change` says the same as the one written (its digest)."""
    written = _written()
    return what_it_says(written).rest == what_it_says(written.model_copy(update=change)).rest


@pytest.mark.parametrize(
    "change",
    [
        {"revision": 7},
        {"as_of": CLOSED_WON + timedelta(days=9)},
        {"team_invitations": 5},
        {"support_tickets": 3},
    ],
    ids=["revision", "as_of", "team_invitations", "support_tickets"],
)
def test_the_time_revision_and_counts_alone_say_nothing_new(change: dict[str, object]) -> None:
    assert _said_again(change)


@pytest.mark.parametrize(
    "change",
    [
        {"audit": [_entry(1), _entry(3), _entry(5)]},
        {
            "audit": [_entry(1), _entry(3), _entry(6, "paused")],
            "pauses": [PauseSpan(since=CLOSED_WON + timedelta(days=6), by="csm", reason="x")],
        },
        {"health_score": 61.0},
        {"owner": "csm-2@example.com"},
        {"risk_flags": ["champion_left"]},
    ],
    ids=["audit_entry_added", "pause_begun", "health", "owner", "risk_flag"],
)
def test_a_change_the_store_must_see_makes_a_new_digest(change: dict[str, object]) -> None:
    assert not _said_again(change)


def test_the_counts_are_told_apart_on_their_own() -> None:
    written = _written()
    counted = written.model_copy(update={"team_invitations": 5})
    assert what_it_says(written).counts != what_it_says(counted).counts


def test_an_audit_entry_once_written_is_never_changed() -> None:
    """The digest tells a trail by its length and last entry: it holds because an entry,
    once in the trail, cannot be edited."""
    entry = _entry(1)
    with pytest.raises(FrozenInstanceError, match="detail"):
        entry.detail = "rewritten"  # type: ignore[misc]

"""Which of the onboarding workflow's patches a run takes the new path of.

Workflow code. The first `workflow.patched(id)` a run asks records a marker, and the SDK
adds an upsert of the `TemporalChangeVersion` search attribute: two commands, two
history events, and two state machines that the SDK's core keeps for as long as the run
is in the worker's cache (about 8 KB per patch: README *Worker cost*). Asked one by one,
the patches of `Folded` would cost an onboarding up to 26 of each over its life, 6 of
them in its first minute.

A fold stands for patches (`FOLDS`): a run whose first workflow task recorded it began
on code that had every one, and asks none of them. A new run records the newest fold
only. A run that began before a fold (its first task has no such marker) asks each patch
the fold stands for as it did. So `begin` is the first thing a run does
(`AccountOnboarding.__init__`): asked later, a fold's marker would be recorded at that
point of an older run, which would then leave the old paths it has taken.

A patch added after the newest fold is asked with `workflow.patched` as usual, until the
next fold (README *Changing workflow code safely*).
"""

from __future__ import annotations

from enum import StrEnum

from temporalio import workflow


class Folded(StrEnum):
    """The patches the folds stand for, by id."""

    # Continue-as-new at `max_history_events` (added 2026-11-22).
    CAN_AT_EVENT_COUNT = "continue-as-new-at-event-count"
    # A product event credits its milestone when it happened, not when it arrived (added
    # 2026-11-30).
    CREDIT_AT_EVENT_TIME = "credit-at-event-time"
    # A tier change keeps the stall clock on the customer's last movement (added 2026-12-01).
    STALL_CLOCK_CUSTOMER = "stall-clock-customer-2026-12-01"
    # A pause holds back nudges and escalations to the customer, not celebrations (added
    # 2026-12-01): before it, every message to the customer.
    PAUSE_HOLDS_NUDGES_ONLY = "pause-holds-nudges-only-2026-12-01"
    # Replacing the champion opens a re-alignment window (rules §6.3, added 2026-12-01):
    # before it, `change_contact` only replaced the contact.
    CHAMPION_WINDOW = "champion-window-2026-12-01"
    # An expansion deal for a running onboarding is queued, and its onboarding follows this
    # one (rules §2, added 2026-12-01): before it, the deal was answered "already onboarding"
    # and dropped.
    EXPANSION_QUEUE = "expansion-queue-2026-12-01"
    # A paid deal for a running trial converts it: the trial ends, cancelled as converted,
    # and continues as the paid deal's onboarding (rules §2, added 2026-12-01): before it,
    # the deal was answered "already onboarding" (or, an expansion, queued behind the trial).
    TRIAL_CONVERSION = "trial-conversion-2026-12-01"
    # The onboarding writes its record to the records store (added 2026-12-01). Runs that
    # began before replay without it; `refresh_record` asks such a run to continue-as-new
    # into one that records.
    RECORDS = "onboarding-records"
    # The outbox's independent effects run at once (added 2026-12-01, issue 13): before it,
    # one activity after another.
    EFFECTS_TOGETHER = "effects-together-2026-12-01"
    # A `refresh_record` asked while a write is in flight is written when that one ends
    # (added 2026-12-01): before it, it was lost.
    REFRESH_AFTER_WRITE = "refresh-after-write-2026-12-01"
    # A pause stops the health score's clock: paused, the score is the pause's start's, and a
    # milestone reached in the pause is scored against its deadline moved by the time paused
    # (rules §5, added 2026-12-01): asked when a pause begins (or a run begins paused);
    # before it, both used the unmoved deadlines.
    PAUSE_STOPS_SCORING = "pause-stops-scoring-2026-12-01"
    # A change of the record's counts alone waits until `recording.COUNTS_EVERY` after the
    # last write (rules §8, added 2026-12-01, issue 13): before it, every such change was
    # written at once.
    COUNTS_SPACED = "record-counts-spaced-2026-12-01"
    # A record write that ends wakes the run only when a change waits for it, or it
    # failed (added 2026-12-02, issue 13): before it, every write that ended did, and the
    # run worked out its state again for nothing at about half its workflow tasks.
    WRITE_WAKES_WHEN_WAITED_FOR = "write-wakes-when-waited-for-2026-12-02"


# The first fold's twelve. Listed, never derived from `Folded`: what a fold stands for is
# fixed once runs have recorded it (tests/test_patches.py pins each).
_FIRST_FOLD = frozenset(
    {
        Folded.CAN_AT_EVENT_COUNT,
        Folded.CREDIT_AT_EVENT_TIME,
        Folded.STALL_CLOCK_CUSTOMER,
        Folded.PAUSE_HOLDS_NUDGES_ONLY,
        Folded.CHAMPION_WINDOW,
        Folded.EXPANSION_QUEUE,
        Folded.TRIAL_CONVERSION,
        Folded.RECORDS,
        Folded.EFFECTS_TOGETHER,
        Folded.REFRESH_AFTER_WRITE,
        Folded.PAUSE_STOPS_SCORING,
        Folded.COUNTS_SPACED,
    }
)
# workflow.patched() ids of the folds, newest first, and the patches each stands for.
FOLDS: dict[str, frozenset[Folded]] = {
    "patches-folded-2026-12-02": _FIRST_FOLD | {Folded.WRITE_WAKES_WHEN_WAITED_FOR},
    "patches-folded-2026-12-01": _FIRST_FOLD,
}
# What a new run records: the newest fold.
FOLDED = next(iter(FOLDS))


def begin() -> None:
    """Ask the folds, newest first, as the run's first act, until one is recorded: a new
    run records the newest; one that began on an older fold finds its own marker; one
    that began before every fold finds none."""
    for fold in FOLDS:
        if workflow.patched(fold):
            return


def has(patch: Folded) -> bool:
    """Whether this run takes the new path of `patch`: it began on a fold that stands for
    it, or it asks. The SDK remembers a run's answer to each id, so asking the folds
    here records nothing: `begin` asked them first, newest first, and stopped at the
    run's own. Only for `Folded` ids (typed so): a later patch asked through here would
    switch a folded run to its new path mid-run, without a marker. Asked in the run and
    in signal and update handlers, never in a query or an update's validator: the SDK
    refuses `workflow.patched` there, remembered or not."""
    folds = (fold for fold, stands_for in FOLDS.items() if patch in stands_for)
    return any(workflow.patched(fold) for fold in folds) or workflow.patched(patch)

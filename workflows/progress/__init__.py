"""How an onboarding's state changes (rules §1-§6 (docs/rules.md)), as plain functions.

Each function changes `OnboardingProgress` in place and returns the rest of what must
happen as data (`Changes`). The workflow (`workflows/onboarding.py`) applies them;
nothing here reads the clock, does I/O or calls the SDK: `now` is always an argument,
and whether product events credit a milestone when they happened (a `workflow.patched`
rule) is asked through `keep_times`, only when a milestone is credited; likewise
`customer_clock` at a tier change and `nudges_only` in `held_back`. By role (all
but `checks`, `facts`, `migration`, `products`, `programs` and `skipnet` importable
from here):

- `changes`: `Changes`, the effects (`Notify`, `AssignOwner`) and who gets them, `Onboarding`
  (and `Settled`: one read while nothing changes it)
- `lifecycle`: begin, milestones, criteria and contacts, cancel or lost, the state
- `ladder`: what has come due (`advance`), tier changes, when to wake next
- `pause`: pausing, its duties, resuming (`shift_for_pause`), what it holds back
- `checks`: whether an update may apply now (the workflow's validators)
- `facts`: messages taken once by event id, product events counted with their times
- `champion`: a champion change's re-alignment window, its gates and its lapse
- `skipnet`: the safety net under a skipped step (its check planned, due, judged)
- `products`: a multi-product deal's adoption and phase gates (rules §6.2)
- `programs`: group programs' invitations and attendance (rules §1)
- `migration`: moving a running onboarding to another playbook version (rules §2)
"""

from workflows.progress.champion import change_champion, gate_done
from workflows.progress.changes import (
    AssignOwner,
    Changes,
    CheckSkip,
    CustomerClock,
    Effect,
    KeepTimes,
    Notify,
    NudgesOnly,
    Onboarding,
    Settled,
    milestone,
    notification,
    notify,
    recipient,
    reject,
)
from workflows.progress.ladder import advance, change_tier, next_wake
from workflows.progress.lifecycle import (
    begin,
    cancel,
    change_contact,
    confirm_success_plan,
    credit_observed_events,
    deal_lost,
    reach,
    record_report,
    set_success_criteria,
    skip,
    state,
)
from workflows.progress.pause import held_back, resume, shift_for_pause, start_pause

__all__ = [
    "AssignOwner",
    "Changes",
    "CheckSkip",
    "CustomerClock",
    "Effect",
    "KeepTimes",
    "Notify",
    "NudgesOnly",
    "Onboarding",
    "Settled",
    "advance",
    "begin",
    "cancel",
    "change_champion",
    "change_contact",
    "change_tier",
    "confirm_success_plan",
    "credit_observed_events",
    "deal_lost",
    "gate_done",
    "held_back",
    "milestone",
    "next_wake",
    "notification",
    "notify",
    "reach",
    "recipient",
    "record_report",
    "reject",
    "resume",
    "set_success_criteria",
    "shift_for_pause",
    "skip",
    "start_pause",
    "state",
]

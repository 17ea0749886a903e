"""The soak's fleet: the accounts it onboards, their deals and the product events each
is sent, planned up front from the seed (`plan_fleet`), each with its `Replay`.

Most deals closed-won so long ago that ladder steps are already due when the onboarding
starts (catch-up); a tenth so that steps come due during the run (durable timers), and
those are sent nothing else. The rest reach a level of progress (`LEVELS`) by their
events, and a fifth of them are paused, paused then resumed, or have their tier
overridden (`GROUPS`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from common import NOISE, SEGMENT_BATCH, track_call
from soak_oracle import DAY, Replay

from workflows.models import ClosedWonDeal, Playbook, Tier

# How far each account gets: the events sent for it, and at the end its manual milestones.
LEVELS = ("none", "login", "setup", "value", "invites_resent", "adoption", "complete")
# Days since closed-won at the start, per tier: each half a day off the whole days the
# ladder counts in, so no catch-up step comes due within 12 hours of the run. A
# self_serve account 16.5 days in is upgraded to tech_touch by its ladder at start.
CATCH_UP_DAYS = {
    Tier.HIGH_TOUCH: (0.5, 5.5, 8.5, 15.5, 22.5),
    Tier.TECH_TOUCH: (0.5, 3.5, 8.5, 15.5, 22.5),
    Tier.SELF_SERVE: (0.5, 3.5, 8.5, 16.5),
}
# Who overrides to what: an upgrade that assigns a CSM, one that keeps it, a downgrade.
OVERRIDES = {
    Tier.SELF_SERVE: Tier.HIGH_TOUCH,
    Tier.TECH_TOUCH: Tier.HIGH_TOUCH,
    Tier.HIGH_TOUCH: Tier.TECH_TOUCH,
}
Group = Literal["plain", "pause", "pause_resume", "override"]
GROUPS: tuple[Group, ...] = ("plain", "pause", "pause_resume", "override")


@dataclass(frozen=True)
class Options:
    """The run's size (`bench/soak.py` parses them)."""

    onboardings: int
    kills: int
    concurrency: int
    seed: int


@dataclass
class Account:
    id: str
    deal: ClosedWonDeal
    timer: bool  # closed-won so that ladder steps come due during the run; nothing sent
    level: str
    group: Group
    expected: Replay  # what the rules say it does, given what the run sends it
    calls: list[dict[str, Any]] = field(default_factory=list)  # its Segment calls


def _deal(rng: random.Random, account_id: str, close_date: datetime, tier: Tier) -> ClosedWonDeal:
    """A deal the tier rule puts in `tier`, by a spread of ACVs and clauses."""
    fields: dict[str, Any]
    if tier is Tier.HIGH_TOUCH:
        fields = rng.choice(
            [
                {"acv_usd": rng.randrange(50_000, 250_000)},
                {"acv_usd": rng.randrange(8_000, 49_000), "stakeholder_count": 4},
                {"acv_usd": rng.randrange(8_000, 49_000), "needs_api_integration": True},
            ]
        )
    elif tier is Tier.TECH_TOUCH:
        fields = rng.choice(
            [
                {"acv_usd": rng.randrange(5_000, 50_000), "configuration_hours": 1},
                {"acv_usd": rng.randrange(500, 5_000), "integrations": ["slack"]},  # next up
            ]
        )
    else:
        fields = {"acv_usd": rng.randrange(300, 5_000)}
    contacts = [{"name": "Casey", "email": f"casey@{account_id}.example", "role": "champion"}]
    if tier is Tier.HIGH_TOUCH:
        contacts.append(
            {"name": "Sam", "email": f"sam@{account_id}.example", "role": "executive_sponsor"}
        )
    return ClosedWonDeal.model_validate(
        {
            "account_id": account_id,
            "account_name": f"Soak {account_id}",
            "seats": rng.randrange(5, 500),
            "close_date": close_date,
            "contacts": contacts,
            "success_criteria": ["weekly active use by the team"] if rng.random() < 0.5 else [],
            "crm": {"source": "generic", "deal_id": f"D-{account_id}"},
            **fields,
        }
    )


def _call(account: str, n: int, event: str, user: int, now: str) -> dict[str, Any]:
    return track_call(f"{account}-m{n}", event, account, user, now, path="/app")


def _progress_calls(rng: random.Random, account: str, level: str) -> list[dict[str, Any]]:
    """The account's milestone events for its level, with noise around them."""
    rank = LEVELS.index(level)
    now = datetime.now(UTC).isoformat()
    events: list[tuple[str, int]] = []
    if rank >= LEVELS.index("login"):
        events += [("user_logged_in", u) for u in range(rng.randint(1, 3))]
    if rank >= LEVELS.index("setup"):
        events += [("setup_completed", 0), ("data_import_validated", 0)]
    if rank >= LEVELS.index("value"):
        events.append(("core_workflow_completed", 0))
    if level == "invites_resent":
        events += [("user_invited", 1), ("user_invited", 2)]
    elif rank >= LEVELS.index("adoption"):
        events += [("user_invited", 1), ("user_invited", 2), ("user_invited", 3)]
    calls = [_call(account, n, name, user, now) for n, (name, user) in enumerate(events)]
    if level == "invites_resent":  # two invites, each resent: team adoption needs 3 users
        calls += [dict(c) for c in calls if c["event"] == "user_invited"]
    noise = [
        _call(account, 100 + n, rng.choice(NOISE), rng.randrange(9), now)
        for n in range(2 + 3 * len(events))
    ]
    return calls + noise


def plan_fleet(options: Options, playbook: Playbook, t0: datetime) -> list[Account]:
    rng = random.Random(options.seed)
    login = playbook.milestone(playbook.login_milestone)
    assert login is not None
    timer_spread = 10 + options.onboardings * 0.15  # seconds after t0
    fleet: list[Account] = []
    for i in range(options.onboardings):
        account_id = f"soak-{i:05d}"
        tier = rng.choice(list(Tier))
        timer = i % 10 == 9
        group: Group = "plain"
        level = "none"
        if timer:  # the login deadline and the no-login step come due during the run
            offset = timedelta(seconds=rng.uniform(10, timer_spread))
            close = t0 - login.due_days[tier] * DAY + offset
        else:
            close = t0 - rng.choice(CATCH_UP_DAYS[tier]) * DAY
            level = rng.choice(LEVELS)
            group = rng.choices(GROUPS, weights=(80, 5, 5, 10))[0]
        deal = _deal(rng, account_id, close, tier)
        account = Account(account_id, deal, timer, level, group, Replay(playbook, deal, t0))
        account.calls = _progress_calls(rng, account_id, level)
        fleet.append(account)
    return fleet


def event_batches(rng: random.Random, accounts: Sequence[Account]) -> list[list[dict[str, Any]]]:
    """The accounts' calls shuffled together in batches of 100; 3% are resent later (a
    retrying sender), some of them in the same batch."""
    calls = [c for a in accounts for c in a.calls]
    rng.shuffle(calls)
    for _ in range(len(calls) * 3 // 100):
        at = rng.randrange(len(calls))
        calls.insert(rng.randrange(at, len(calls) + 1), dict(calls[at]))
    return [calls[i : i + SEGMENT_BATCH] for i in range(0, len(calls), SEGMENT_BATCH)]

"""Who is assigned to an onboarding (rules §7 (docs/rules.md)): pure functions, no I/O.
The `assign_owner` activity reads the roster and the loads, `pick` chooses and says why;
`needs_specialist` says whether a plan calls for an implementation specialist."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from pydantic import BaseModel, Field

from workflows.models import Capacity, Milestone, Playbook, StaffRole, Tier
from workflows.models.roster import Person, Roster

# Ratios are compared with this much slack, so 15 of 15 is full, not over.
_EPS = 1e-9


class Load(BaseModel):
    """What one person carries now, as the records store has it: open onboardings they
    own by tier band (high_touch; tech_touch and self_serve are low-touch) and, as a
    specialist, active implementations (an open onboarding with a specialist gate open)."""

    high_touch: int = Field(default=0, ge=0)
    low_touch: int = Field(default=0, ge=0)
    implementations: int = Field(default=0, ge=0)

    def plus(self, tier: Tier, count: int) -> Load:
        """This load with `count` more open onboardings of `tier` owned."""
        if tier is Tier.HIGH_TOUCH:
            return self.model_copy(update={"high_touch": self.high_touch + count})
        return self.model_copy(update={"low_touch": self.low_touch + count})


class Pick(BaseModel):
    """Who gets the account, why (for the audit), and by how many accounts (or
    implementations) they are now over capacity: 0 when they had room; more, and CS
    leadership must be told, when everyone eligible was full."""

    person: str
    reason: str
    over_capacity: int = Field(default=0, ge=0)


class NoOneEligible(ValueError):
    """Nobody on the roster has the role and covers the tier (once `leaving` is out)."""


def needs_specialist(playbook: Playbook, tier: Tier, milestones: Iterable[Milestone]) -> bool:
    """Whether an onboarding of `tier` with this plan gets an implementation specialist:
    the playbook's `[capacity]` lists the tier and an open gate of the plan is one of its
    `specialist_gates` (a per-product copy counts as its gate). False without
    `[capacity]` (playbooks pinned before it)."""
    c = playbook.capacity
    if c is None or tier not in c.specialist_tiers:
        return False
    return any(m.is_open and m.spec_id in c.specialist_gates for m in milestones)


def _capacity(person: Person, playbook: Capacity) -> Capacity:
    """The playbook's capacity with the person's own numbers over it."""
    own = person.capacity.model_dump(exclude_none=True)
    return playbook.model_copy(update=own)


def _used(person: Person, load: Load, cap: Capacity) -> float:
    """The share of the person's capacity in use (1.0: full): a CSM's high-touch and
    low-touch accounts each against their own capacity, added up."""
    if person.role is StaffRole.IMPLEMENTATION_SPECIALIST:
        return load.implementations / cap.specialist_implementations
    return (
        load.high_touch / cap.csm_high_touch_accounts + load.low_touch / cap.csm_low_touch_accounts
    )


def _unit(person: Person, tier: Tier, cap: Capacity) -> int:
    """How many of the new account's kind fill the person's whole capacity."""
    if person.role is StaffRole.IMPLEMENTATION_SPECIALIST:
        return cap.specialist_implementations
    return cap.of_tier(tier)


def load_text(person: Person, load: Load, cap: Capacity) -> str:
    """`9 of 15 high-touch accounts (60%)`; `no open accounts (0%)`."""
    if person.role is StaffRole.IMPLEMENTATION_SPECIALIST:
        parts = [
            f"{load.implementations} of {cap.specialist_implementations} active implementations"
        ]
    else:
        parts = [
            f"{n} of {of} {band} accounts"
            for n, of, band in (
                (load.high_touch, cap.csm_high_touch_accounts, "high-touch"),
                (load.low_touch, cap.csm_low_touch_accounts, "low-touch"),
            )
            if n
        ] or ["no open accounts"]
    return f"{' + '.join(parts)} ({_used(person, load, cap):.0%})"


def covers_region(person: Person, country: str | None, time_zone: str | None) -> bool:
    """A person without regions covers every account; else one of their regions is the
    account's country, its time zone, or the area of its zone (`Europe` for
    `Europe/Berlin`)."""
    if not person.regions:
        return True
    area = time_zone.split("/", 1)[0] if time_zone and "/" in time_zone else None
    return any(r in (country, time_zone, area) for r in person.regions)


def pick(
    roster: Roster,
    loads: Mapping[str, Load],
    *,
    role: StaffRole,
    tier: Tier,
    country: str | None,
    time_zone: str | None,
    capacity: Capacity,
    leaving: str | None = None,
) -> Pick:
    """The person of `role` who gets an account of `tier` in `country` / `time_zone`
    (rules §7 (docs/rules.md)).

    Eligible: the role, covering the tier, not `leaving`; of those, the ones covering the
    account's region, unless none does (then every region, and the reason says so) or
    the region is unknown (neither country nor time zone). The
    least loaded (`loads` by person id, over the person's capacity) among those with
    room for one more gets it, ties to the smaller id. When none has room the least
    loaded still gets it, and `over_capacity` says by how many they are now over.

    Raises NoOneEligible naming the role and tier.
    """
    word = "CSM" if role is StaffRole.CSM else "implementation specialist"
    gone = (leaving or "").lower()
    eligible = [
        p for p in roster.people if p.role is role and tier in p.tiers and p.id.lower() != gone
    ]
    if not eligible:
        others = f" other than {leaving}" if leaving else ""
        raise NoOneEligible(f"no {role.value} on the roster{others} covers {tier.value}")
    where = ""
    if any(p.regions for p in eligible) and (country or time_zone):
        local = [p for p in eligible if covers_region(p, country, time_zone)]
        region = " / ".join(x for x in (country, time_zone) if x)
        if local:
            eligible, where = local, f" in {region}"
        else:
            where = f" (none covers {region}: every region)"

    def standing(p: Person) -> tuple[float, float, str]:
        cap = _capacity(p, capacity)
        used = _used(p, loads.get(p.id, Load()), cap)
        return used, used + 1 / _unit(p, tier, cap), p.id.lower()

    ranked = sorted(eligible, key=standing)
    with_room = [p for p in ranked if standing(p)[1] <= 1 + _EPS]
    chosen = (with_room or ranked)[0]
    cap = _capacity(chosen, capacity)
    now = load_text(chosen, loads.get(chosen.id, Load()), cap)
    covering = f"covering {tier.value}{where}"
    only = len(eligible) == 1
    group = f"the only {word} {covering}" if only else f"{len(eligible)} {word}s {covering}"
    if with_room:
        picked = group if only else f"least loaded of {group}"
        return Pick(person=chosen.id, reason=f"{picked}: {now}")
    over = math.ceil((standing(chosen)[1] - 1) * _unit(chosen, tier, cap) - _EPS)
    full = f"{group} is full" if only else f"every one of {group} is full; least loaded"
    return Pick(
        person=chosen.id,
        reason=f"{full}: {now}, now {over} over capacity",
        over_capacity=over,
    )

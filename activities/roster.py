"""The roster file (`ONBOARDING_ROSTER_FILE`, TOML): the people onboardings are assigned
to (rules §7 (docs/rules.md)); without one, `ONBOARDING_CSM_ROSTER`'s CSMs.

    [[people]]
    id = "ann@vendor.example"          # their email: assignments and messages use it
    name = "Ann Lee"
    role = "csm"                       # or "implementation_specialist"
    tiers = ["high_touch"]             # default: every tier
    regions = ["Europe", "GB"]         # countries, time zones, zone areas; default: all
    capacity = { csm_high_touch_accounts = 12 }   # default: the playbook's [capacity]
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from activities.settings import Settings
from workflows.models import StaffRole
from workflows.models.roster import Person, Roster
from workflows.playbook import toml_key
from workflows.validation import message


class RosterError(ValueError):
    """A roster that cannot be used, each problem named by person and field:
    `people[2](ann@vendor.example).tiers[0]: Input should be 'high_touch', ...`."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def parse_roster(text: str, source: str = "<roster>") -> Roster:
    """The roster in `text` (TOML). Raises RosterError naming each problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RosterError(source, [f"not valid TOML: {exc}"]) from exc
    try:
        return Roster.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(x for x in err["loc"] if x not in ("function-after",))
            key = toml_key(loc, raw)
            problems.append(message(err) if key == "(top level)" else f"{key}: {message(err)}")
        raise RosterError(source, problems) from exc


def load_roster(settings: Settings) -> Roster:
    """The roster as it is now: `ONBOARDING_ROSTER_FILE` read afresh (someone who left is
    gone from the next assignment on), else every `ONBOARDING_CSM_ROSTER` address as a
    CSM covering every tier and region.

    Raises RosterError (the file unreadable or invalid, or nobody on it)."""
    path = settings.roster_file
    if path is None:
        if not settings.csm_roster:
            raise RosterError("ONBOARDING_CSM_ROSTER", ["empty: no CSMs to assign"])
        people = [Person(id=e, name=e, role=StaffRole.CSM) for e in settings.csm_roster]
        return Roster(people=people)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RosterError(str(path), [f"cannot read: {exc.strerror}"]) from exc
    return parse_roster(text, str(path))


def roster_source(settings: Settings) -> str:
    """The setting the roster comes from: `ONBOARDING_ROSTER_FILE` or, without one,
    `ONBOARDING_CSM_ROSTER`."""
    return "ONBOARDING_ROSTER_FILE" if settings.roster_file else "ONBOARDING_CSM_ROSTER"


def roster_summary(roster: Roster, settings: Settings) -> str:
    """Which roster is in use and who is on it, for the startup banner and log:
    `/etc/roster.toml (ONBOARDING_ROSTER_FILE): 3 CSMs, 1 implementation specialist`;
    `ONBOARDING_CSM_ROSTER: 2 CSMs (csm-1@localhost, csm-2@localhost), no implementation
    specialists`."""
    csms = [p.id for p in roster.people if p.role is StaffRole.CSM]
    specialists = len(roster.people) - len(csms)
    counted = [
        f"{len(csms)} CSM{'' if len(csms) == 1 else 's'}",
        f"{specialists or 'no'} implementation specialist{'' if specialists == 1 else 's'}",
    ]
    if settings.roster_file is None:
        return f"ONBOARDING_CSM_ROSTER: {counted[0]} ({', '.join(csms)}), {counted[1]}"
    return f"{settings.roster_file} (ONBOARDING_ROSTER_FILE): {', '.join(counted)}"

"""Activation by role (rules §7 (docs/rules.md), *Activation by role*; seed 003): the
admin, the end users and the executive sponsor (and, for a data product, the engineer and
the analyst) each have their own path to value, so activation is measured per role.

A user's role comes from the event itself (`[activation].role_property` of a track call's
properties) or, failing that, from their last identify call's traits, remembered per
onboarding (`remember`, at most `MAX_KNOWN_USERS` users). A user of a role is activated
by one of the role's events, counted once (`credit`); the role is activated when
`users` distinct users of it are. First value by roles (`first_value_at`) is reached when
every role of `first_value_when` is: reported beside the value milestone, which it does
not complete. A playbook without `[activation]` (those pinned before it) has none of this.

Pure: the workflow calls `note` for each product event it takes once begun.
"""

from __future__ import annotations

from datetime import datetime

from workflows.formats import day_text
from workflows.models import (
    IDENTIFY,
    MAX_KNOWN_USERS,
    Activation,
    OnboardingProgress,
    ProductEvent,
    RoleActivation,
    RoleActivationView,
    RolePath,
    role_text,
)
from workflows.progress.changes import Changes, Onboarding
from workflows.progress.products import user_key


def role_of(spec: Activation, value: str | None) -> str | None:
    """The role id a role property's `value` names (`End User` -> `end_user`), or None
    when it names none of the playbook's roles (or is missing)."""
    if value is None:
        return None
    said = role_text(value)
    return next((role for role in spec.roles if said in spec.values_of(role)), None)


def remember(facts: RoleActivation, user: str, role: str | None) -> None:
    """Keep `user`'s role (a user key) as the latest seen; None (a role the playbook does
    not know) forgets it. At most `MAX_KNOWN_USERS` are kept: the least recently seen go."""
    facts.user_roles.pop(user, None)
    if role is None:
        return
    facts.user_roles[user] = role
    for old in list(facts.user_roles)[:-MAX_KNOWN_USERS]:
        del facts.user_roles[old]


def credit(facts: RoleActivation, spec: Activation, role: str, user: str, at: datetime) -> bool:
    """Count `user` activated for `role` by an event that happened `at`: once per user
    (until the role is activated, an earlier event of theirs delivered late moves their
    time back), and only until the role has the users it needs. True when this made the
    role activated: its time is then when the last of its users was activated. Once
    activated, a role stays so."""
    path = facts.roles.setdefault(role, RolePath())
    if path.activated_at is not None:
        return False
    if user in path.users:
        path.users[user] = min(path.users[user], at)
        return False
    path.users[user] = at
    if len(path.users) < spec.roles[role].users:
        return False
    path.activated_at = max(path.users.values())
    return True


def first_value_at(facts: RoleActivation, spec: Activation) -> datetime | None:
    """When every role of `first_value_when` was activated (the last of them); None
    while one is not."""
    times = [
        facts.roles[r].activated_at if r in facts.roles else None for r in spec.first_value_when
    ]
    if any(t is None for t in times):
        return None
    return max(t for t in times if t is not None)


def note(o: Onboarding, out: Changes, event: ProductEvent, now: datetime) -> None:
    """Take a product event for activation by role: an identify call (or an event) naming
    its user's role is remembered; an event of the user's role's path counts the user
    activated (dated when it happened, never later than `now`). Audited: `role_activated`
    when a role is, `first_value_by_roles` when the rule is met. Nothing without
    `[activation]` or without the user."""
    spec = o.playbook.activation
    if spec is None or event.user_id is None:
        return
    p, user = o.progress, user_key(event.user_id)
    facts = p.activation or RoleActivation()
    named = role_of(spec, event.role)
    if event.role is not None:
        remember(facts, user, named)
    role = named or facts.user_roles.get(user)
    at = min(event.at or now, now)
    path = spec.roles.get(role) if role is not None else None
    if (
        role is not None
        and path
        and event.name in path.events
        and credit(facts, spec, role, user, at)
    ):
        done = day_text(facts.roles[role].activated_at or at)
        out.log(now, "role_activated", f"{spec.title(role)}: activated {done}")
    if facts.first_value_at is None and (reached := first_value_at(facts, spec)) is not None:
        facts.first_value_at = reached
        roles = " and ".join(spec.title(r) for r in spec.first_value_when)
        out.log(now, "first_value_by_roles", f"{roles} activated, {day_text(reached)}")
    if facts.user_roles or facts.roles:
        p.activation = facts


def views(o: Onboarding) -> list[RoleActivationView]:
    """Each role of the playbook, in its order: users activated of those needed, and
    when the role was activated. None without `[activation]`."""
    spec = o.playbook.activation
    if spec is None:
        return []
    facts = o.progress.activation or RoleActivation()
    out = []
    for role, path_spec in spec.roles.items():
        path = facts.roles.get(role, RolePath())
        out.append(
            RoleActivationView(
                role=role,
                title=spec.title(role),
                users=len(path.users),
                needed=path_spec.users,
                activated_at=path.activated_at,
            )
        )
    return out


def first_value_by_roles_at(p: OnboardingProgress) -> datetime | None:
    """When first value by roles was reached; None while not (or without `[activation]`)."""
    return p.activation.first_value_at if p.activation else None


def line(views: list[RoleActivationView]) -> str:
    """`admin 1/1 ✓, end user 2/3, executive sponsor 0/1` (✓: the role is activated)."""
    return ", ".join(
        f"{v.title} {v.users}/{v.needed}" + (" ✓" if v.activated_at else "") for v in views
    )


def awaited_events(o: Onboarding) -> frozenset[str]:
    """The identify calls the ingress must let through: while some role is not yet
    activated (they say who a user is); none once every role is, or without
    `[activation]`. The roles' own events are always watched
    (`Playbook.event_names_watched`)."""
    spec = o.playbook.activation
    if spec is None:
        return frozenset()
    facts = o.progress.activation or RoleActivation()
    done = {r for r, path in facts.roles.items() if path.activated_at is not None}
    return frozenset() if done >= set(spec.roles) else frozenset({IDENTIFY})

"""What a state change asks of the workflow, and the effects themselves.

`Changes` carries audit entries to record, effects to run in order (`Notify`: a
notification to send; `AssignOwner`: a CSM to assign; `CheckSkip`: the skip net's
check to run), messages rejected and ladder
steps fired. `Onboarding` is the state with what it is read with. `notify` builds a
notification's variables from the state, `recipient` says who it goes to and
`notification` makes it the `notify` activity's argument.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from workflows import rules
from workflows.business_days import Calendar
from workflows.formats import day_text, score_text
from workflows.models import (
    Audience,
    AuditEntry,
    CalendarInvite,
    ClosedWonDeal,
    ContactRole,
    Health,
    Milestone,
    Notification,
    OnboardingProgress,
    Phase,
    Playbook,
    RejectedMessage,
    SkipCheck,
    StaffRole,
    TtvBreakdown,
)

DAY = timedelta(days=1)
# Whether product events credit a milestone when they happened (a `workflow.patched`
# rule): asked only when a milestone is credited.
KeepTimes = Callable[[], bool]
# Whether a tier change leaves the stall clock on the customer's last movement (a
# `workflow.patched` rule, rules §4 (docs/rules.md)): asked only when the tier changes.
CustomerClock = Callable[[], bool]
# Whether a pause holds back only nudges and escalations to the customer's people, by
# template kind (a `workflow.patched` rule, rules §5 (docs/rules.md)): asked only when
# that and the older "every message to the customer" rule disagree.
NudgesOnly = Callable[[], bool]


@dataclass
class Notify:
    """Send `template_id` to `audience`; `trigger` makes the idempotency key; `invite`:
    a group program's calendar invitation the email carries."""

    trigger: str
    audience: Audience
    template_id: str
    variables: dict[str, str]
    invite: CalendarInvite | None = None


@dataclass
class AssignOwner:
    """Assign a CSM, or an implementation specialist (`role`), for `reason` (rules §7
    (docs/rules.md)); a reassignment names who leaves (`leaving`) and who asked (`by`)."""

    reason: str
    role: StaffRole = StaffRole.CSM
    leaving: str | None = None
    by: str | None = None


@dataclass
class CheckSkip:
    """Run the skip net's check (rules §6.4 (docs/rules.md)): read the peers' support
    tickets, then judge (`skipnet.judge`)."""

    check: SkipCheck


Effect = Notify | AssignOwner | CheckSkip


@dataclass
class Changes:
    """What a state change asks of the workflow, in the order it happened."""

    audit: list[AuditEntry] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    rejected: list[RejectedMessage] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)  # ladder step keys, for the log
    phase: Phase | None = None  # the phase after `advance`

    def log(self, at: datetime, kind: str, detail: str, by: str | None = None) -> None:
        self.audit.append(AuditEntry(at=at, kind=kind, detail=detail, by=by))


@dataclass(frozen=True)
class Onboarding:
    """The state and what it is read with: the deal and its pinned playbook."""

    deal: ClosedWonDeal
    playbook: Playbook
    progress: OnboardingProgress
    # Whether a pause stops the health score's clock too (rules §5 (docs/rules.md)):
    # False only in a run that was paused before that rule (a `workflow.patched` rule).
    pause_stops_scoring: bool = True

    @property
    def calendar(self) -> Calendar:
        """The account's business calendar (rules §4 (docs/rules.md)): the deal's time zone
        and country, else the playbook's `[business_calendar]`, with its working day."""
        return self.playbook.business_calendar.of(self.deal.time_zone, self.deal.country)

    def steps(self) -> list[rules.DueStep]:
        """The ladder's steps still to come, in the account's calendar (`rules.ladder_steps`)."""
        return rules.ladder_steps(self.progress, self.playbook, self.calendar)

    def health(self, now: datetime) -> Health:
        """The health score now (rules §2 (docs/rules.md)); while paused, as it stood when
        the pause began: no deadline passes while the clocks are stopped (rules §5)."""
        pause = self.progress.pause
        if pause is not None and self.pause_stops_scoring:
            now = min(now, pause.since)
        return rules.health_score(self.progress.milestones, now, self.playbook.health)

    def ttv(self) -> TtvBreakdown:
        """Time to value so far (rules §3 (docs/rules.md))."""
        p, deal = self.progress, self.deal
        return rules.time_to_value(
            self.playbook, p.tier, p.milestones, deal.close_date, p.started_at, deal.deal_type
        )


class Settled(Onboarding):
    """An onboarding read while nothing changes it: the loop's publishing, record and
    next wake-up, between one state change and the next. Each asks for the ladder's
    steps and the health score; here each is worked out once (at each moment, for the
    health). Never kept across a change, and never given to a rule that changes the
    onboarding (`advance` asks for the steps again after each one it fires)."""

    def steps(self) -> list[rules.DueStep]:
        # Kept in the instance's own dict (a frozen dataclass refuses attributes set the
        # usual way); not `functools.cached_property`, whose lock on Python 3.11 is one
        # for the class, shared by every workflow task's thread.
        if "_steps" not in self.__dict__:
            self.__dict__["_steps"] = super().steps()
        steps: list[rules.DueStep] = self.__dict__["_steps"]
        return steps

    def health(self, now: datetime) -> Health:
        known: dict[datetime, Health] = self.__dict__.setdefault("_health", {})
        if now not in known:
            known[now] = super().health(now)
        return known[now]


def milestone(p: OnboardingProgress, milestone_id: str | None) -> Milestone | None:
    return next((m for m in p.milestones if m.id == milestone_id), None)


def reject(out: Changes, at: datetime, kind: str, ref: str, reason: str) -> None:
    out.rejected.append(RejectedMessage(at=at, kind=kind, ref=ref, reason=reason))


def notify(
    o: Onboarding,
    out: Changes,
    trigger: str,
    audience: Audience,
    template_id: str,
    variables: dict[str, str] | None = None,
    about: Milestone | None = None,
    invite: CalendarInvite | None = None,
) -> None:
    """A notification, its variables taken from the state now (`about`: the milestone it
    names, by default the next one due; `invite`: a calendar invitation it carries)."""
    p = o.progress
    about = about or rules.next_milestone(p.milestones)
    base = {
        "account_name": o.deal.account_name,
        "account_id": o.deal.account_id,
        "tier": p.tier.value,
        "phase": phase.value if (phase := rules.current_phase(p.milestones)) else "handoff",
        "milestone": about.title if about else "-",
        "due": day_text(about.due_at) if about else "-",
        "days": "0",
        "reason": "",
    }
    out.effects.append(Notify(trigger, audience, template_id, base | (variables or {}), invite))


def recipient(p: OnboardingProgress, audience: Audience) -> str | None:
    """The customer is the champion (else the admin); the CSM is the owner; the
    implementation specialist is the one assigned."""
    by_role = {c.role: c.email for c in p.contacts}
    match audience:
        case Audience.CUSTOMER:
            return by_role.get(ContactRole.CHAMPION) or by_role.get(ContactRole.ADMIN)
        case Audience.EXECUTIVE_SPONSOR:
            return by_role.get(ContactRole.EXECUTIVE_SPONSOR)
        case Audience.CSM:
            return p.owner
        case Audience.IMPLEMENTATION_SPECIALIST:
            return p.specialist
    return None


def notification(o: Onboarding, effect: Notify, workflow_id: str, now: datetime) -> Notification:
    """The `notify` activity's argument for `effect`, its idempotency key
    `<workflow id>:<trigger>:<audience>` (`<workflow id>#<n>:...` for the account's n-th
    onboarding, n > 1, so an expansion's messages are not taken for the earlier one's);
    the owner and health are taken as they are now."""
    number = o.progress.onboarding_number
    key = workflow_id if number == 1 else f"{workflow_id}#{number}"
    variables = effect.variables | {
        "owner": o.progress.owner or "your CSM",
        "health": score_text(o.health(now).score),
    }
    return Notification(
        idempotency_key=f"{key}:{effect.trigger}:{effect.audience.value}",
        account_id=o.deal.account_id,
        workflow_id=workflow_id,
        audience=effect.audience,
        recipient=recipient(o.progress, effect.audience),
        template_id=effect.template_id,
        template=o.playbook.templates[effect.template_id],
        variables=variables,
        invite=effect.invite,
    )

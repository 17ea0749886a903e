"""The onboarding's words: tiers, phases, owners, roles, states, triggers, audiences, and the
shared date and id types every model uses."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator


class Tier(StrEnum):
    HIGH_TOUCH = "high_touch"
    TECH_TOUCH = "tech_touch"
    SELF_SERVE = "self_serve"

    @property
    def rank(self) -> int:
        """Touch level: self_serve 0 < tech_touch 1 < high_touch 2."""
        return [Tier.SELF_SERVE, Tier.TECH_TOUCH, Tier.HIGH_TOUCH].index(self)

    def next_up(self) -> Tier:
        return [Tier.TECH_TOUCH, Tier.HIGH_TOUCH, Tier.HIGH_TOUCH][self.rank]


class Phase(StrEnum):
    KICKOFF = "kickoff"
    PILOT = "pilot"
    GO_LIVE = "go_live"
    VALIDATION = "validation"
    HANDOFF = "handoff"


PHASE_ORDER: tuple[Phase, ...] = tuple(Phase)


class Owner(StrEnum):
    """Who must act for a milestone to be reached."""

    CUSTOMER = "customer"
    CSM = "csm"
    IMPLEMENTATION = "implementation_specialist"
    PRODUCT = "product"


class ContactRole(StrEnum):
    CHAMPION = "champion"
    EXECUTIVE_SPONSOR = "executive_sponsor"
    ADMIN = "admin"
    END_USER = "end_user"


class StaffRole(StrEnum):
    """What a person on the roster does (rules §7 (docs/rules.md)): a CSM owns the
    onboarding; an implementation specialist carries its implementation gates."""

    CSM = "csm"
    IMPLEMENTATION_SPECIALIST = "implementation_specialist"


class OnboardingState(StrEnum):
    """The `OnboardingState` search attribute."""

    AWAITING_DEAL = "awaiting_deal"  # product events arrived before the closed-won deal
    ACTIVE = "active"
    PAUSED = "paused"
    AT_RISK = "at_risk"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class HealthBand(StrEnum):
    HEALTHY = "healthy"
    AT_RISK = "at_risk"
    CRITICAL = "critical"

    @property
    def severity(self) -> int:
        """How bad the band is: healthy 0 < at_risk 1 < critical 2."""
        return _SEVERITY[self]


_SEVERITY = {HealthBand.HEALTHY: 0, HealthBand.AT_RISK: 1, HealthBand.CRITICAL: 2}


class MilestoneStatus(StrEnum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    SKIPPED = "skipped"


class Trigger(StrEnum):
    MILESTONE_OVERDUE = "milestone_overdue"  # once per milestone deadline
    NO_LOGIN = "no_login"  # `days` after closed-won, login milestone not reached
    NO_PROGRESS = "no_progress"  # `days` after the last milestone progress
    ACTIVATION_MISSED = "activation_missed"  # `days` after closed-won, no first value
    NO_SUCCESS_CRITERIA = "no_success_criteria"  # `days` after closed-won, none agreed
    # `days` after the latest of `count` `events` (since it last fired), `milestone` open
    EVENT_WITHOUT_MILESTONE = "event_without_milestone"
    # `days` without `events` after `count` of them within `active_days`
    USAGE_DROP = "usage_drop"
    # a champion change's re-alignment window ended with a gate open (rules §6.3): raised
    # by `[champion_change]` itself, never by a ladder step
    CHAMPION_WINDOW_LAPSED = "champion_window_lapsed"
    # `days` after closed-won, the first-engagement gate neither scheduled nor held (§3)
    NO_HANDOFF = "no_handoff"
    # `days` after closed-won, the first-engagement gate not held (§3)
    NO_ENGAGEMENT = "no_engagement"
    # the health score (§2) is at risk or worse, once per entry into that band
    HEALTH_AT_RISK = "health_at_risk"
    # the health score (§2) is critical, once per entry into that band
    HEALTH_CRITICAL = "health_critical"


class Audience(StrEnum):
    CUSTOMER = "customer"  # the champion, else the admin
    EXECUTIVE_SPONSOR = "executive_sponsor"
    CSM = "csm"  # the assigned owner
    CS_LEADERSHIP = "cs_leadership"
    IMPLEMENTATION_SPECIALIST = "implementation_specialist"  # the assigned specialist (§7)


class DealStage(StrEnum):
    """What a CRM deal stage means: closed-won starts an onboarding, closed-lost ends or
    flags one (`DealLost`), any other stage does neither."""

    CLOSED_WON = "closed_won"
    CLOSED_LOST = "closed_lost"
    OPEN = "open"


class MessageKind(StrEnum):
    """What a message template is (`[templates.*].kind`): a formal pause holds back nudges
    and escalations to the customer's people, not celebrations or information (rules §5
    (docs/rules.md))."""

    NUDGE = "nudge"  # asks the reader to act (a reminder, a re-engagement)
    ESCALATION = "escalation"  # a stall or a miss, raised to someone who can act
    CELEBRATION = "celebration"  # a milestone reached ("you're all set")
    INFO = "info"  # news that asks nothing (welcome, tier changed)


def _utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC, so a CSV or CRM date never shifts by a zone."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is past the last representable day
        raise ValueError("is outside the range of dates in UTC") from None


def _to_utc_datetime(value: object) -> object:
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, date):
        return datetime.combine(value, time(0, 0), tzinfo=UTC)
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
# A CRM account id: letters, digits, . _ : -
ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


class DealType(StrEnum):
    """What was sold, which picks the onboarding's track (rules §2 (docs/rules.md),
    playbook `[tracks]`): a new customer, an existing customer buying a new product, a
    customer won back after churning, or a free or trial account (free, freemium, trial,
    proof of concept: one track, automated onboarding only, rules §1)."""

    NEW_BUSINESS = "new_business"
    EXPANSION = "expansion"
    WIN_BACK = "win_back"
    TRIAL = "trial"

"""The customer-behaviour model of `onboarding simulate` (docs/rules.md, *Simulating a
playbook change*): per tier and milestone, how long a customer takes to reach it, how
often they never do and how often they stall first; and how often a customer answers an
escalation by moving.

Every duration is in days. A milestone's time is drawn from a triangular distribution
counted from the plan's start (closed-won, or the moment of a tier change): by default
`pace` (low, mode, high) times the days until its deadline, so the default model follows
the playbook's own due days; the value milestone's mode is at most the upper end of the
tier's `ttv_target_days` (rules §3). A TOML file (`--behaviour model.toml`) overrides any
of it; `load_model` names the key of every bad value.
"""

from __future__ import annotations

import random
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from workflows.models import Audience, Milestone, Playbook, Tier
from workflows.playbook import toml_key
from workflows.validation import message

DAY = timedelta(days=1)
Probability = Annotated[float, Field(ge=0, le=1)]
Days = Annotated[float, Field(ge=0)]


class Spread(BaseModel):
    """A triangular distribution: `low` <= `mode` <= `high` (days, or multiples of the
    days until the deadline in `pace`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    low: Days
    mode: Days
    high: Days

    @model_validator(mode="after")
    def _ordered(self) -> Spread:
        if not self.low <= self.mode <= self.high:
            raise ValueError(
                f"needs low <= mode <= high, got {self.low:g}, {self.mode:g}, {self.high:g}"
            )
        return self

    def draw(self, rng: random.Random, scale: float = 1.0) -> float:
        if self.low == self.high:
            return self.low * scale
        return rng.triangular(self.low, self.high, self.mode) * scale


class Range(BaseModel):
    """A uniform range of days, `low` <= `high`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    low: Days
    high: Days

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.low > self.high:
            raise ValueError(f"needs low <= high, got {self.low:g} > {self.high:g}")
        return self

    def draw(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)


class MilestoneBehaviour(BaseModel):
    """One milestone's overrides of its tier's behaviour; unset keys take the tier's."""

    model_config = ConfigDict(extra="forbid")

    days: Spread | None = Field(
        default=None, description="Days from the plan's start to reaching it"
    )
    never: Probability | None = Field(default=None, description="Chance it is never reached")
    stall: Probability | None = Field(
        default=None, description="Chance of a stall (no movement for `stall_days`) before it"
    )
    started: Spread | None = Field(
        default=None,
        description="Days from the plan's start to reporting it in progress (scheduled)",
    )


class TierBehaviour(BaseModel):
    """How customers of one tier move through their plan."""

    model_config = ConfigDict(extra="forbid")

    pace: Spread = Field(
        default=Spread(low=0.3, mode=0.7, high=1.3),
        description="A milestone's time as multiples of the days until its deadline",
    )
    never: Probability = 0.04
    stall: Probability = 0.08
    stall_days: Range = Range(low=7, high=21)
    milestones: dict[str, MilestoneBehaviour] = Field(default_factory=dict)


class Response(BaseModel):
    """A customer answers an escalation that notifies one of `audiences` with chance
    `probability`, by reaching their next milestone within `days`."""

    model_config = ConfigDict(extra="forbid")

    probability: Probability = 0.35
    days: Range = Range(low=0.5, high=4)
    audiences: list[Audience] = Field(
        default_factory=lambda: [Audience.CUSTOMER, Audience.EXECUTIVE_SPONSOR, Audience.CSM]
    )


def _default_tiers() -> dict[Tier, TierBehaviour]:
    scheduled = MilestoneBehaviour(started=Spread(low=0.1, mode=1, high=6))
    return {
        Tier.HIGH_TOUCH: TierBehaviour(never=0.02, milestones={"kickoff_call": scheduled}),
        Tier.TECH_TOUCH: TierBehaviour(milestones={"kickoff_call": scheduled}),
        Tier.SELF_SERVE: TierBehaviour(never=0.08, stall=0.12),
    }


class BehaviourModel(BaseModel):
    """The whole model: `tiers` (a tier left out behaves as the default's) and `response`."""

    model_config = ConfigDict(extra="forbid")

    tiers: dict[Tier, TierBehaviour] = Field(default_factory=_default_tiers)
    response: Response = Field(default_factory=Response)

    @model_validator(mode="after")
    def _every_tier(self) -> BehaviourModel:
        self.tiers = _default_tiers() | self.tiers
        return self


class BehaviourError(ValueError):
    """A behaviour model file that cannot be used, with every problem named by its key."""


def load_model(path: Path) -> BehaviourModel:
    """The model in a TOML file (its keys are `BehaviourModel`'s); `BehaviourError` names
    the key and the reason of every bad value: `tiers.self_serve.never: Input should be
    less than or equal to 1`."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BehaviourError(f"cannot read {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BehaviourError(f"{path}: not valid TOML: {exc}") from None
    try:
        return BehaviourModel.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{toml_key(err['loc'], raw)}: {message(err)}" for err in exc.errors()]
        raise BehaviourError(f"{path}: " + "; ".join(problems)) from None


@dataclass(frozen=True)
class Step:
    """A report the customer (or their CSM) will make: `milestone_id` reached (`done`) or
    scheduled (`in_progress`) at `at`; `by` says why (an escalation it answers)."""

    at: datetime
    milestone_id: str
    status: Literal["done", "in_progress"] = "done"
    by: str = "simulated customer"


def journey(
    model: BehaviourModel,
    playbook: Playbook,
    tier: Tier,
    milestones: list[Milestone],
    since: datetime,
    rng: random.Random,
) -> list[Step]:
    """The reports a customer of `tier` makes on the open `milestones` of a plan that
    starts at `since`, in time order: each milestone no earlier than the one planned
    before it; a stall pushes it and every later one back; once one is never reached,
    nor is any after it (until an escalation moves the customer, see `respond`)."""
    behaviour = model.tiers[tier]
    steps: list[Step] = []
    previous, pushed = since, 0.0
    value = playbook.ttv_target_days[tier][1]
    for m in sorted((m for m in milestones if m.is_open), key=lambda m: m.due_at):
        own = behaviour.milestones.get(m.spec_id, MilestoneBehaviour())
        if own.started is not None and m.started_at is None:
            steps.append(Step(since + own.started.draw(rng) * DAY, m.id, "in_progress"))
        if rng.random() < (own.stall if own.stall is not None else behaviour.stall):
            pushed += behaviour.stall_days.draw(rng)
        if rng.random() < (own.never if own.never is not None else behaviour.never):
            break
        if own.days is not None:
            days = own.days.draw(rng)
        else:
            until_due = max((m.due_at - since) / DAY, 0.0)
            pace = behaviour.pace
            if m.spec_id == playbook.value_milestone and until_due:
                mode = min(pace.mode, value / until_due)
                pace = Spread(low=min(pace.low, mode), mode=mode, high=pace.high)
            days = pace.draw(rng, until_due)
        previous = max(previous, since + (days + pushed) * DAY)
        steps.append(Step(previous, m.id))
    return sorted(steps, key=lambda s: s.at)


def respond(model: BehaviourModel, rng: random.Random) -> float | None:
    """Days until the customer moves after an escalation, or None when they do not."""
    if rng.random() >= model.response.probability:
        return None
    return model.response.days.draw(rng)

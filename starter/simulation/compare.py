"""The side-by-side figures of `onboarding simulate`: one cohort run through two playbooks
(docs/rules.md, *Simulating a playbook change*).

`run` simulates a cohort under one playbook (on every core: the onboardings are
independent) and keeps each onboarding's `Result`; `figures` sums a run up: escalations
by trigger and audience, automatic tier changes, completion and activation rates (rules
§8: first value within `targets.activation_window_days`), time to value (median and
p75, days, of the onboardings that reached first value) and the CSM's workload per week
(notifications to the CSM: escalations, alerts, new owners' notices; week 1 is the
first seven days from the cohort's first closed-won).
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from starter.simulation.engine import Outcome, simulate
from starter.simulation.model import BehaviourModel
from workflows.models import Audience, ClosedWonDeal, Playbook, Tier

DAY = timedelta(days=1)
WEEK = 7 * DAY


@dataclass(frozen=True)
class Result:
    """What one simulated onboarding did, as the figures need it: escalations as
    (trigger, audience) per notification, tier changes (from, to) made by the ladder,
    notifications to the CSM by when, and its end (days from closed-won)."""

    account_id: str
    closed_at: datetime
    tier: Tier
    escalations: tuple[tuple[str, str], ...]
    tier_changes: tuple[tuple[str, str], ...]
    csm_notices: tuple[datetime, ...]
    completed_days: float | None
    value_days: float | None


def result_of(outcome: Outcome, playbook: Playbook) -> Result:
    p, closed = outcome.progress, outcome.deal.close_date
    escalations = tuple(
        (_trigger(n.trigger, playbook), n.audience.value) for n in outcome.notices if n.escalation
    )
    value = next(
        (m.done_at for m in p.milestones if m.spec_id == playbook.value_milestone and m.done_at),
        None,
    )
    return Result(
        account_id=outcome.deal.account_id,
        closed_at=closed,
        tier=p.tier_decision.tier,
        escalations=escalations,
        tier_changes=tuple(
            (c.from_tier.value, c.to_tier.value) for c in p.tier_changes if c.kind == "automatic"
        ),
        csm_notices=tuple(n.at for n in outcome.notices if n.audience is Audience.CSM),
        completed_days=(p.finished_at - closed) / DAY if p.finished_at else None,
        value_days=(value - closed) / DAY if value else None,
    )


def _trigger(key: str, playbook: Playbook) -> str:
    """A ladder step's trigger from its key (`tech_touch.stall_outreach:e0#0`, as
    `rules.ladder_steps` makes it)."""
    tier, _, rest = key.partition(".")
    step_id = rest.split(":", 1)[0].split("@", 1)[0]
    step = next(s for s in playbook.ladder[Tier(tier)] if s.id == step_id)
    return step.when.value


def _run_chunk(
    args: tuple[list[ClosedWonDeal], Playbook, BehaviourModel, int, float],
) -> list[Result]:
    deals, playbook, model, seed, days = args
    return [result_of(simulate(d, playbook, model, seed, days), playbook) for d in deals]


def run(
    deals: Sequence[ClosedWonDeal],
    playbook: Playbook,
    model: BehaviourModel,
    seed: int,
    days: float,
    workers: int | None = None,
) -> list[Result]:
    """Every deal's onboarding simulated for `days` days under `playbook`, in the
    cohort's order; on `workers` processes (default: one per core; 1 runs here)."""
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(deals) < 2 * workers:
        return _run_chunk((list(deals), playbook, model, seed, days))
    size = -(-len(deals) // workers)
    chunks = [
        (list(deals[i : i + size]), playbook, model, seed, days) for i in range(0, len(deals), size)
    ]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return [r for part in pool.map(_run_chunk, chunks) for r in part]


class Rate(BaseModel):
    """`count` of `of` onboardings, and the share in %."""

    count: int
    of: int
    pct: float | None


class Figures(BaseModel):
    """One playbook's run summed up (the module's docstring says how)."""

    playbook: str = Field(description="version (content hash)")
    onboardings: int
    by_tier: dict[str, int] = Field(description="Onboardings by the tier they started in")
    escalations: dict[str, int] = Field(description="Notifications by 'trigger -> audience'")
    escalations_total: int
    tier_changes: dict[str, int] = Field(description="Automatic tier changes by 'from -> to'")
    completion: Rate
    activation: Rate
    ttv_median_days: float | None
    ttv_p75_days: float | None
    csm_per_week: list[int]

    @property
    def csm_week_mean(self) -> float:
        return round(statistics.fmean(self.csm_per_week), 1) if self.csm_per_week else 0.0

    @property
    def csm_week_peak(self) -> int:
        return max(self.csm_per_week, default=0)


def _rate(count: int, of: int) -> Rate:
    return Rate(count=count, of=of, pct=round(100 * count / of, 1) if of else None)


def figures(results: Sequence[Result], playbook: Playbook, days: float, window: int) -> Figures:
    """The figures of one run of `days` days per onboarding; activated: first value
    within `window` days of closed-won."""
    values = sorted(r.value_days for r in results if r.value_days is not None)
    start = min((r.closed_at for r in results), default=None)
    weeks = [0] * _weeks(results, days)
    for r in results:
        for at in r.csm_notices:
            assert start is not None
            weeks[min(int((at - start) / WEEK), len(weeks) - 1)] += 1
    escalations = Counter(f"{t} -> {a}" for r in results for t, a in r.escalations)
    return Figures(
        playbook=f"{playbook.version} ({playbook.content_hash})",
        onboardings=len(results),
        by_tier=dict(sorted(Counter(r.tier.value for r in results).items())),
        escalations=dict(sorted(escalations.items())),
        escalations_total=sum(escalations.values()),
        tier_changes=dict(
            sorted(Counter(f"{a} -> {b}" for r in results for a, b in r.tier_changes).items())
        ),
        completion=_rate(sum(r.completed_days is not None for r in results), len(results)),
        activation=_rate(sum(v <= window for v in values), len(results)),
        ttv_median_days=round(statistics.median(values), 1) if values else None,
        ttv_p75_days=round(_p75(values), 1) if values else None,
        csm_per_week=weeks,
    )


def _weeks(results: Sequence[Result], days: float) -> int:
    if not results:
        return 0
    start = min(r.closed_at for r in results)
    end = max(r.closed_at for r in results) + days * DAY
    return max(1, -(-(end - start) // WEEK))


def _p75(values: list[float]) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=4, method="inclusive")[2]


class Comparison(BaseModel):
    """Two playbooks on the same cohort: `current` (`--against`) and `new` (`--playbook`)."""

    cohort: int
    seed: int
    days: float
    activation_window_days: int
    current: Figures
    new: Figures


def compare(
    deals: Sequence[ClosedWonDeal],
    new: Playbook,
    current: Playbook,
    model: BehaviourModel,
    seed: int,
    days: float,
    workers: int | None = None,
) -> Comparison:
    """The cohort under both playbooks, summed up side by side (activation within the
    current playbook's `targets.activation_window_days`, for both)."""
    window = current.targets.activation_window_days
    figures_of: dict[str, Any] = {}
    for name, playbook in (("current", current), ("new", new)):
        results = run(deals, playbook, model, seed, days, workers)
        figures_of[name] = figures(results, playbook, days, window)
    return Comparison(
        cohort=len(deals), seed=seed, days=days, activation_window_days=window, **figures_of
    )


def _signed(delta: float) -> str:
    return "0" if delta == 0 else f"{delta:+g}"


def table(c: Comparison) -> str:
    """The figures as a text table: metric, current, new, change (new - current)."""
    cur, new = c.current, c.new
    rows: list[tuple[str, str, str, str]] = [
        ("", "current", "new", "change"),
        ("playbook", cur.playbook, new.playbook, ""),
        ("onboardings", str(cur.onboardings), str(new.onboardings), ""),
    ]

    def counts(title: str, a: dict[str, int], b: dict[str, int]) -> None:
        rows.append(
            (
                title,
                str(sum(a.values())),
                str(sum(b.values())),
                _signed(sum(b.values()) - sum(a.values())),
            )
        )
        for key in sorted(set(a) | set(b)):
            x, y = a.get(key, 0), b.get(key, 0)
            rows.append((f"  {key}", str(x), str(y), _signed(y - x)))

    def number(title: str, a: float | None, b: float | None) -> None:
        change = _signed(round(b - a, 1)) if a is not None and b is not None else ""
        rows.append((title, "-" if a is None else f"{a:g}", "-" if b is None else f"{b:g}", change))

    def rate(title: str, a: Rate, b: Rate) -> None:
        change = (
            _signed(round(b.pct - a.pct, 1)) + " pts"
            if a.pct is not None and b.pct is not None
            else ""
        )
        rows.append((title, f"{a.pct:g}% ({a.count})", f"{b.pct:g}% ({b.count})", change))

    counts("escalations (trigger -> audience)", cur.escalations, new.escalations)
    counts("automatic tier changes", cur.tier_changes, new.tier_changes)
    rate("completion (handoff done)", cur.completion, new.completion)
    rate(
        f"activation (first value in {c.activation_window_days} d)", cur.activation, new.activation
    )
    number("TTV median (days)", cur.ttv_median_days, new.ttv_median_days)
    number("TTV p75 (days)", cur.ttv_p75_days, new.ttv_p75_days)
    number("CSM notifications per week, mean", cur.csm_week_mean, new.csm_week_mean)
    number("CSM notifications per week, peak", cur.csm_week_peak, new.csm_week_peak)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    first, *rest = widths
    lines = [
        f"{r[0]:<{first}}" + "".join(f"  {cell:>{w}}" for cell, w in zip(r[1:], rest, strict=True))
        for r in rows
    ]
    return "\n".join(line.rstrip() for line in lines)

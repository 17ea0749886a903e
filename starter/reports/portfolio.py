"""The portfolio report (rules §8, docs/rules.md): every figure, overall, per tier, per
closed-won month (cohort) and per tier x cohort, with the playbook's targets beside them.

    rows = load_rows(store, tier=None, cohort=None)
    report = portfolio(rows, playbook, now=datetime.now(UTC))     # PortfolioReport

`now` is the report time, a parameter so the figures are reproducible on any day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from starter.reports import sections
from starter.reports.figures import group_figures
from starter.reports.model import GroupFigures, PortfolioReport
from starter.reports.rows import Onboarding, seconds
from workflows.models import Playbook, Tier


def cohort_months(cohorts: set[str]) -> list[str]:
    """Every month `YYYY-MM` from the first to the last of `cohorts`, in order, so a trend
    shows a month without closed-won deals as a row of zeros."""
    if not cohorts:
        return []
    first, last = min(cohorts), max(cohorts)
    year, month = int(first[:4]), int(first[5:])
    out = []
    while (label := f"{year:04d}-{month:02d}") <= last:
        out.append(label)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def portfolio(
    rows: Sequence[Onboarding],
    playbook: Playbook,
    now: datetime,
    *,
    tier: Tier | None = None,
    cohort: str | None = None,
) -> PortfolioReport:
    """The report over `rows` (already filtered by `tier`/`cohort`, which it records) as
    of `now` (aware)."""
    now_s = seconds(now)
    by_tier: dict[Tier, list[Onboarding]] = defaultdict(list)
    by_cohort: dict[str, list[Onboarding]] = defaultdict(list)
    by_both: dict[tuple[Tier, str], list[Onboarding]] = defaultdict(list)
    for r in rows:
        by_tier[r.tier].append(r)
        by_cohort[r.cohort].append(r)
        by_both[r.tier, r.cohort].append(r)
    months = cohort_months(set(by_cohort))
    tier_rows: list[GroupFigures] = [
        group_figures(by_tier[t], playbook, now_s, tier=t) for t in Tier if t in by_tier
    ]
    return PortfolioReport(
        as_of=now,
        tier=tier,
        cohort=cohort,
        playbook_version=playbook.version,
        targets=playbook.targets,
        overall=group_figures(rows, playbook, now_s, tier=tier, cohort=cohort),
        by_tier=tier_rows,
        by_cohort=[group_figures(by_cohort[c], playbook, now_s, cohort=c) for c in months],
        by_tier_cohort=[
            group_figures(by_both[t, c], playbook, now_s, tier=t, cohort=c)
            for t in Tier
            if t in by_tier
            for c in months
        ],
        drop_off=sections.drop_off(rows, playbook, now_s),
        escalations=sections.escalations(rows, playbook, now_s),
        tier_changes=sections.tier_changes(rows),
        misclassification=sections.misclassification(rows, playbook),
        at_risk=sections.at_risk(rows, now_s),
        csm_load=sections.csm_load(rows, playbook),
        headcount=sections.headcount(rows, playbook, now_s),
        tier_boundaries=sections.tier_boundaries(rows, playbook, now_s),
    )

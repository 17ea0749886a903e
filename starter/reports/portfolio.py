"""The portfolio report (rules §8, docs/rules.md): every figure, overall, per tier, per
closed-won month (cohort) and per tier x cohort, with the playbook's targets beside them,
and the portfolio-wide sections.

    report = portfolio_report(store, playbook, now=datetime.now(UTC), tier=None, cohort=None)
    # the same in two steps: what the store says, then the figures
    report = portfolio(load_rows(store, playbook, now), playbook, now)

`now` is the report time, a parameter so the figures are reproducible on any day.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from activities.records.store import RecordStore
from starter.reports import sections
from starter.reports.figures import Tally, judge
from starter.reports.model import PortfolioReport
from starter.reports.rows import Rows, load_rows, seconds
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
    loaded: Rows,
    playbook: Playbook,
    now: datetime,
    *,
    tier: Tier | None = None,
    cohort: str | None = None,
) -> PortfolioReport:
    """The report over `loaded` (loaded as of `now`, aware, filtered by `tier`/`cohort`,
    which it records). With a `tier` filter every group is of that tier and carries its
    targets."""
    now_s, rows = seconds(now), loaded.onboardings
    verdicts = judge(rows, playbook, now_s)
    cells: dict[tuple[Tier, str], Tally] = defaultdict(Tally)
    for r, v in zip(rows, verdicts, strict=True):
        cells[r.tier, r.cohort].add(r, v)
    tiers = [t for t in Tier if any(key[0] is t for key in cells)]
    months = cohort_months({key[1] for key in cells})
    by_tier = {t: Tally.merge(c for key, c in cells.items() if key[0] is t) for t in tiers}
    by_cohort = {m: Tally.merge(c for key, c in cells.items() if key[1] == m) for m in months}
    return PortfolioReport(
        as_of=now,
        tier=tier,
        cohort=cohort,
        playbook_version=playbook.version,
        targets=playbook.targets,
        overall=Tally.merge(by_tier.values()).figures(playbook, tier=tier, cohort=cohort),
        by_tier=[by_tier[t].figures(playbook, tier=t, cohort=cohort) for t in tiers],
        by_cohort=[by_cohort[m].figures(playbook, tier=tier, cohort=m) for m in months],
        by_tier_cohort=[
            cells.get((t, m), Tally()).figures(playbook, tier=t, cohort=m)
            for t in tiers
            for m in months
        ],
        drop_off=sections.drop_off(rows, playbook),
        escalations=sections.escalations(loaded.ladder),
        tier_changes=sections.tier_changes(rows),
        misclassification=sections.misclassification(rows, playbook),
        at_risk=sections.at_risk(rows),
        csm_load=sections.csm_load(rows, playbook),
        headcount=sections.headcount(rows, playbook, now_s),
        tier_boundaries=sections.tier_boundaries(rows, verdicts, playbook),
        programs=sections.programs(rows, verdicts, playbook),
        roles=sections.roles(rows, playbook, now_s),
        first_value_by_roles=sections.first_value_by_roles(rows, playbook, now_s),
    )


def portfolio_report(
    store: RecordStore,
    playbook: Playbook,
    now: datetime,
    *,
    tier: Tier | None = None,
    cohort: str | None = None,
) -> PortfolioReport:
    """The report over the store's onboardings now in `tier` and of closed-won month
    `cohort` (when given). Raises ValueError for a cohort that is not `YYYY-MM`,
    SQLAlchemyError when the store cannot be read."""
    loaded = load_rows(store, playbook, now, tier=tier, cohort=cohort)
    return portfolio(loaded, playbook, now, tier=tier, cohort=cohort)

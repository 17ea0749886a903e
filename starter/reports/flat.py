"""The portfolio report's group figures as one flat CSV table, the shape a warehouse loads:
one row per group (all, each tier, each cohort, each tier x cohort), one column per
number. What `onboarding report --format csv` prints and `GET /reports/portfolio?format=csv`
answers; the README's *Reports* section lists the columns.

A share is three columns (`<figure>_count`, `_of`, `_pct`), a target range two (`_low`,
`_high`); an empty cell is a figure with nothing to measure. The portfolio-wide sections
(drop-off, escalations, at-risk list, ...) are in the JSON.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from starter.reports.model import GroupFigures, PortfolioReport, Share
from workflows.models import HealthBand

Cell = str | int | float | None
# The GroupFigures fields that are [low, high] target ranges (or null).
_RANGES = frozenset({"completion_target_pct", "ttv_target_days"})


def cells(g: GroupFigures) -> Iterator[tuple[str, Cell]]:
    """The group's columns and values, in the model's field order; the same columns for
    every group."""
    for name, value in g:
        if isinstance(value, Share):
            yield f"{name}_count", value.count
            yield f"{name}_of", value.of
            yield f"{name}_pct", value.pct
        elif name in _RANGES:
            low, high = value or (None, None)
            yield f"{name}_low", low
            yield f"{name}_high", high
        elif name == "health":
            for band in HealthBand:
                yield f"health_{band.value}", value[band]
        elif name == "below_target":
            yield name, ";".join(value)
        else:
            yield name, value


def csv_text(report: PortfolioReport) -> str:
    """The header and one line per group: `as_of`, `playbook_version`, `group` (`all`,
    `tier`, `cohort` or `tier_cohort`; tier x cohort groups without onboardings are left
    out), then the group's `cells`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["as_of", "playbook_version", "group", *(n for n, _ in cells(report.overall))])
    groups = [
        ("all", [report.overall]),
        ("tier", report.by_tier),
        ("cohort", report.by_cohort),
        ("tier_cohort", [g for g in report.by_tier_cohort if g.onboardings]),
    ]
    lead = [report.as_of.isoformat(), report.playbook_version]
    for name, figures in groups:
        for g in figures:
            values = ("" if v is None else v for _, v in cells(g))
            writer.writerow([*lead, name, *values])
    return out.getvalue()

"""The portfolio report (`starter.reports`) as text tables and as CSV (one figure a line:
section, tier, cohort, item, figure, value), for `onboarding report`."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from starter.cli.render import date_text, table_lines
from starter.reports.model import GroupFigures, PortfolioReport, Share

# The columns naming a row of each list section in the CSV's `item`.
_ITEMS = {
    "drop_off": ("milestone_id",),
    "escalations": ("step_id", "trigger"),
    "tier_changes": ("kind", "from_tier", "to_tier"),
    "misclassification": ("acv_band",),
    "at_risk": ("account_id",),
    "csm_load": ("owner",),
    "headcount": ("segment",),
    "tier_boundaries": ("threshold", "initial_tier"),
}


def _pct(s: Share) -> str:
    return "-" if s.pct is None else f"{s.pct:g}% ({s.count}/{s.of})"


def _num(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:g}{unit}"


def _range(r: tuple[float, float] | None, unit: str = "") -> str:
    return "-" if r is None else f"{r[0]:g}-{r[1]:g}{unit}"


_GROUP_HEAD = [
    "GROUP", "N", "RUNNING", "AT RISK", "PAUSED", "DONE", "CANCELLED", "COMPLETION", "TARGET",
    "ACTIVATED", "TARGET", "TTV MED", "TTV P75", "TARGET", "HANDOFF/SETUP/ACTIVATION MED",
    "CS <48H", "CS 7D+", "ON TIME", "HEALTHY/AT RISK/CRITICAL", "BELOW TARGET",
]  # fmt: skip


def _group_row(g: GroupFigures, label: str) -> list[str]:
    parts = (g.handoff_delay_median_days, g.setup_median_days, g.activation_median_days)
    return [
        label, str(g.onboardings), str(g.running), str(g.at_risk), str(g.paused),
        str(g.completed), str(g.cancelled), _pct(g.completion),
        _range(g.completion_target_pct, "%"),
        _pct(g.activation), f"{g.activation_target_pct:g}%", _num(g.ttv_median_days, " d"),
        _num(g.ttv_p75_days, " d"), _range(g.ttv_target_days, " d"),
        " / ".join(_num(p) for p in parts), _pct(g.first_engagement_good),
        _pct(g.first_engagement_poor), _pct(g.milestones_on_time),
        " / ".join(str(n) for n in g.health.values()), ", ".join(g.below_target) or "-",
    ]  # fmt: skip


def _section(title: str, head: list[str], rows: list[list[str]]) -> list[str]:
    if not rows:
        return [title, "  (none)", ""]
    return [title, *table_lines([head, *rows]), ""]


def render_table(r: PortfolioReport) -> str:
    """The report as plain-text sections of left-aligned tables."""
    scope = " ".join(f"{k} {v}" for k, v in (("tier", r.tier), ("cohort", r.cohort)) if v)
    lines = [
        f"Portfolio as of {r.as_of:%Y-%m-%d %H:%M} UTC, playbook {r.playbook_version}"
        + (f" ({scope})" if scope else ""),
        "",
    ]
    groups = [_group_row(r.overall, "all")] + [_group_row(g, str(g.tier)) for g in r.by_tier]
    lines += _section("By tier", _GROUP_HEAD, groups)
    lines += _section(
        "By cohort (closed-won month)",
        _GROUP_HEAD,
        [_group_row(g, str(g.cohort)) for g in r.by_cohort],
    )
    lines += _section(
        "By tier and cohort",
        _GROUP_HEAD,
        [_group_row(g, f"{g.tier} {g.cohort}") for g in r.by_tier_cohort if g.onboardings],
    )
    lines += _section(
        f"Milestone drop-off (flag over {r.targets.drop_off_flag_pct:g}%)",
        ["TIER", "MILESTONE", "DID NOT REACH", "FLAG"],
        [[d.tier, d.milestone_id, _pct(d.lost), "!" if d.flagged else ""] for d in r.drop_off],
    )
    lines += _section(
        f"Escalations (followed by progress within {r.targets.escalation_response_days} d)",
        ["STEP", "TRIGGER", "FIRED", "ACCOUNTS", "FOLLOWED BY PROGRESS"],
        [
            [e.step_id, e.trigger, str(e.fired), str(e.accounts), _pct(e.followed_by_progress)]
            for e in r.escalations
        ],
    )
    lines += _section(
        "Tier changes and overrides",
        ["KIND", "FROM", "TO", "COUNT"],
        [[c.kind, c.from_tier, c.to_tier, str(c.count)] for c in r.tier_changes],
    )
    lines += _section(
        "Tier rule misclassification (tier changed after start) by ACV band",
        ["ACV BAND", "CHANGED"],
        [[m.acv_band, _pct(m.changed)] for m in r.misclassification],
    )
    lines += _section(
        "At risk, by owner",
        ["OWNER", "ACCOUNT", "TIER", "STATE", "HEALTH", "NEXT DEADLINE", "WHY"],
        [
            [
                a.owner or "(unassigned)",
                a.account_id,
                a.tier,
                a.state,
                a.health_band,
                date_text(a.next_deadline),
                "; ".join(a.reasons) or "-",
            ]
            for a in r.at_risk
        ],
    )
    lines += _section(
        "CSM load (running onboardings against capacity "
        f"{_range(r.targets.csm_high_touch_accounts)} high-touch or "
        f"{_range(r.targets.csm_low_touch_accounts)} low-touch)",
        ["OWNER", "HIGH TOUCH", "LOW TOUCH", "LOAD", "OVER"],
        [
            [
                c.owner or "(unassigned)",
                str(c.high_touch),
                str(c.low_touch),
                f"{c.load_pct:g}%",
                "!" if c.over_capacity else "",
            ]
            for c in r.csm_load
        ],
    )
    lines += _section(
        f"Headcount for the start rate of the last {r.targets.start_rate_months} full months",
        ["SEGMENT", "STARTS/MONTH", "AVG MONTHS", "CAPACITY MIDPOINT", "CSMS NEEDED"],
        [
            [
                h.segment,
                _num(h.starts_per_month),
                _num(h.average_duration_months),
                _num(h.capacity_midpoint),
                _num(h.csms_needed),
            ]
            for h in r.headcount
        ],
    )
    lines += _section(
        f"Tier boundaries (ACV within {r.targets.tier_boundary_pct:g}% of a threshold)",
        ["THRESHOLD", "TIER GIVEN", "N", "COMPLETION", "TTV MED", "CHANGED TIER"],
        [
            [
                f"{b.threshold} {b.threshold_usd:,.0f}",
                b.initial_tier,
                str(b.onboardings),
                _pct(b.completion),
                _num(b.ttv_median_days, " d"),
                _pct(b.changed_tier),
            ]
            for b in r.tier_boundaries
        ],
    )
    return "\n".join(lines).rstrip() + "\n"


def _flat(value: Any, prefix: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _flat(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        yield prefix, ";".join(str(v) for v in value)
    else:
        yield prefix, "" if value is None else str(value)


def render_csv(r: PortfolioReport) -> str:
    """One figure a line: `section,tier,cohort,item,figure,value` (shares as figure.count,
    .of, .pct; lists joined by `;`), with a header line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "tier", "cohort", "item", "figure", "value"])
    data = r.model_dump(mode="json")
    for key, value in data["targets"].items():
        for figure, text in _flat(value, key):
            writer.writerow(["targets", "", "", "", figure, text])
    for section in ("overall", "by_tier", "by_cohort", "by_tier_cohort", *_ITEMS):
        entries = data[section] if isinstance(data[section], list) else [data[section]]
        for entry in entries:
            tier, cohort = entry.pop("tier", None) or "", entry.pop("cohort", None) or ""
            item = "/".join(str(entry.pop(k) or "") for k in _ITEMS.get(section, ()))
            for figure, text in _flat(entry, ""):
                writer.writerow([section, tier, cohort, item, figure, text])
    return out.getvalue()

"""The portfolio report (`starter.reports`) as readable text for `onboarding report`: the
per-tier figures with each tier's target under them, the cohort trend, then the
portfolio-wide sections. A figure that misses its target is marked `!`."""

from __future__ import annotations

from collections.abc import Callable

from starter.cli.render import date_text, table_lines
from starter.reports.model import GroupFigures, PortfolioReport, Share

MISS = " !"


def _pct(s: Share, counts: bool = True) -> str:
    if s.pct is None:
        return "-"
    return f"{s.pct:g}% ({s.count}/{s.of})" if counts else f"{s.pct:g}%"


def _num(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:g}{unit}"


def _range(r: tuple[float, float] | None, unit: str = "") -> str:
    return "-" if r is None else f"{r[0]:g}-{r[1]:g}{unit}"


def _marked(g: GroupFigures, figure: str, text: str) -> str:
    return text + MISS if figure in g.below_target else text


def _tier_rows(r: PortfolioReport) -> list[list[str]]:
    """Figures down, groups across (all, then each tier); each target on the line under
    its figure."""
    groups = [r.overall, *r.by_tier] if len(r.by_tier) > 1 else r.by_tier or [r.overall]
    t = r.targets
    lines: list[tuple[str, Callable[[GroupFigures], str]]] = [
        ("onboardings", lambda g: str(g.onboardings)),
        ("running / at risk / paused", lambda g: f"{g.running} / {g.at_risk} / {g.paused}"),
        ("completed / cancelled", lambda g: f"{g.completed} / {g.cancelled}"),
        ("completion", lambda g: _marked(g, "completion", _pct(g.completion))),
        ("  target", lambda g: _range(g.completion_target_pct, "%")),
        (
            f"activation within {t.activation_window_days} d",
            lambda g: _marked(g, "activation", _pct(g.activation)),
        ),
        ("  target", lambda g: f"{g.activation_target_pct:g}%"),
        (
            "TTV median / p75",
            lambda g: _marked(
                g, "ttv_median", f"{_num(g.ttv_median_days)} / {_num(g.ttv_p75_days, ' d')}"
            ),
        ),
        ("  target", lambda g: _range(g.ttv_target_days, " d")),
        (
            "  handoff / setup / activation",
            lambda g: (
                " / ".join(
                    _num(d)
                    for d in (
                        g.handoff_delay_median_days,
                        g.setup_median_days,
                        g.activation_median_days,
                    )
                )
                + " d"
            ),
        ),
        (
            f"first CS engagement < {t.first_engagement_good_hours:g} h",
            lambda g: _pct(g.first_engagement_good),
        ),
        (
            f"first CS engagement {t.first_engagement_poor_days:g} d+",
            lambda g: _pct(g.first_engagement_poor),
        ),
        ("milestones within SLA", lambda g: _pct(g.milestones_on_time)),
        ("setup completed", lambda g: _pct(g.setup_completion)),
        (
            f"invited a teammate by day {t.activation_window_days}",
            lambda g: _pct(g.team_invited),
        ),
        ("  invitations (median)", lambda g: _num(g.team_invitations_median)),
        ("first-week retention", lambda g: _pct(g.first_week_retention)),
        (
            "health: healthy / at risk / critical",
            lambda g: " / ".join(str(n) for n in g.health.values()),
        ),
        ("escalated", lambda g: _pct(g.escalated)),
        ("tier changed", lambda g: _pct(g.tier_changed)),
        ("  overridden", lambda g: _pct(g.overridden)),
        ("trials converted to paid", lambda g: _pct(g.trials_converted)),
    ]
    head = ["", *(str(g.tier) if g.tier else "all" for g in groups)]
    return [head, *([label, *(cell(g) for g in groups)] for label, cell in lines)]


_TREND_HEAD = [
    "N", "RUNNING", "AT RISK", "COMPLETION", "ACTIVATION", "TTV MED", "TTV P75", "CS <48H",
    "CS 7D+", "ON TIME", "ESCALATED",
]  # fmt: skip


def _trend_row(g: GroupFigures) -> list[str]:
    return [
        str(g.onboardings),
        str(g.running),
        str(g.at_risk),
        _marked(g, "completion", _pct(g.completion, counts=False)),
        _marked(g, "activation", _pct(g.activation, counts=False)),
        _marked(g, "ttv_median", _num(g.ttv_median_days, " d")),
        _num(g.ttv_p75_days, " d"),
        _pct(g.first_engagement_good, counts=False),
        _pct(g.first_engagement_poor, counts=False),
        _pct(g.milestones_on_time, counts=False),
        _pct(g.escalated, counts=False),
    ]


def _section(title: str, rows: list[list[str]]) -> list[str]:
    """A titled table; `rows` has its header first."""
    if len(rows) < 2:
        return [title, "  (none)", ""]
    return [title, *table_lines(rows), ""]


def render_table(r: PortfolioReport) -> str:
    """The report as plain-text sections of left-aligned tables."""
    t = r.targets
    scope = ", ".join(f"{k} {v}" for k, v in (("tier", r.tier), ("cohort", r.cohort)) if v)
    lines = [
        f"Portfolio as of {r.as_of:%Y-%m-%d %H:%M} UTC, playbook {r.playbook_version}: "
        f"{r.overall.onboardings} onboardings" + (f" ({scope})" if scope else ""),
        f"Figures marked{MISS} miss their target.",
        "",
    ]
    lines += _section("By tier", _tier_rows(r))
    lines += _section(
        "By cohort (closed-won month)",
        [["COHORT", *_TREND_HEAD], *([str(g.cohort), *_trend_row(g)] for g in r.by_cohort)],
    )
    if len(r.by_tier) > 1:
        lines += _section(
            "By tier and cohort",
            [
                ["TIER", "COHORT", *_TREND_HEAD],
                *(
                    [str(g.tier), str(g.cohort), *_trend_row(g)]
                    for g in r.by_tier_cohort
                    if g.onboardings
                ),
            ],
        )
    lines += _section(
        f"Milestone drop-off (flagged{MISS} when over {t.drop_off_flag_pct:g}% do not pass)",
        [
            ["TIER", "MILESTONE", "NOT PASSED WHEN DUE"],
            *(
                [d.tier, d.milestone_id, _pct(d.lost) + (MISS if d.flagged else "")]
                for d in r.drop_off
            ),
        ],
    )
    lines += _section(
        f"Escalations (followed by a milestone done within {t.escalation_response_days} d)",
        [
            ["TIER", "STEP", "TRIGGER", "FIRED", "ACCOUNTS", "FOLLOWED BY PROGRESS"],
            *(
                [
                    e.tier,
                    e.step_id,
                    e.trigger,
                    str(e.fired),
                    str(e.accounts),
                    _pct(e.followed_by_progress),
                ]
                for e in r.escalations
            ),
        ],
    )
    lines += _section(
        "Tier changes and overrides",
        [
            ["KIND", "FROM", "TO", "COUNT"],
            *([c.kind, c.from_tier, c.to_tier, str(c.count)] for c in r.tier_changes),
        ],
    )
    lines += _section(
        "Tier rule misclassification (tier changed after the start) by ACV band",
        [
            ["ACV BAND", "CHANGED", "OVERRIDDEN"],
            *([m.acv_band, _pct(m.changed), _pct(m.overridden)] for m in r.misclassification),
        ],
    )
    lines += _section(
        "At risk, by owner",
        [
            ["OWNER", "ACCOUNT", "TIER", "STATE", "HEALTH", "NEXT DEADLINE", "WHY"],
            *(
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
            ),
        ],
    )
    lines += _section(
        "CSM load (running onboardings against capacity "
        f"{_range(t.csm_high_touch_accounts)} high-touch or "
        f"{_range(t.csm_low_touch_accounts)} low-touch; over 100%{MISS})",
        [
            ["OWNER", "HIGH TOUCH", "LOW TOUCH", "LOAD"],
            *(
                [
                    c.owner or "(unassigned)",
                    str(c.high_touch),
                    str(c.low_touch),
                    f"{c.load_pct:g}%" + (MISS if c.over_capacity else ""),
                ]
                for c in r.csm_load
            ),
        ],
    )
    lines += _section(
        f"Headcount (start rate over the last {t.start_rate_months} full months)",
        [
            [
                "ROLE",
                "CAPACITY",
                "ACTIVE",
                "NEEDED NOW",
                "STARTS/MONTH",
                "AVG MONTHS",
                "NEEDED FOR START RATE",
                "NOTE",
            ],
            *(
                [
                    h.role,
                    _range(h.capacity),
                    str(h.active),
                    _num(h.needed_now),
                    _num(h.starts_per_month),
                    _num(h.average_duration_months),
                    _num(h.needed_for_start_rate),
                    h.note or "",
                ]
                for h in r.headcount
            ),
        ],
    )
    lines += _section(
        f"Tier boundaries (ACV within {t.tier_boundary_pct:g}% of a threshold)",
        [
            [
                "THRESHOLD",
                "TIER GIVEN",
                "N",
                "COMPLETION",
                "ACTIVATION",
                "TTV MED",
                "CHANGED TIER",
            ],
            *(
                [
                    f"{b.threshold} {b.threshold_usd:,.0f}",
                    b.initial_tier,
                    str(b.onboardings),
                    _pct(b.completion),
                    _pct(b.activation),
                    _num(b.ttv_median_days, " d"),
                    _pct(b.changed_tier),
                ]
                for b in r.tier_boundaries
            ),
        ],
    )
    lines += _section(
        "Group programs: activation of the invited, attendees against non-attendees",
        [
            [
                "PROGRAM",
                "INVITED",
                "ATTENDED",
                "ACTIVATION ATTENDEES",
                "NON-ATTENDEES",
                "TTV MED ATTENDEES",
                "NON-ATTENDEES",
            ],
            *(
                [
                    x.program,
                    str(x.invited),
                    _pct(x.attended),
                    _pct(x.attendees.activation),
                    _pct(x.non_attendees.activation),
                    _num(x.attendees.ttv_median_days, " d"),
                    _num(x.non_attendees.ttv_median_days, " d"),
                ]
                for x in r.programs
            ),
        ],
    )
    fv = _pct(r.first_value_by_roles) if r.first_value_by_roles else "-"
    lines += _section(
        f"Activation by role (within {t.activation_window_days} days; first value by roles {fv})",
        [
            ["ROLE", f"ACTIVATED BY DAY {t.activation_window_days}", "MEDIAN DAYS (OF)"],
            *(
                [
                    x.title,
                    _pct(x.activation),
                    f"{_num(x.activation_median_days, ' d')} ({x.activated})",
                ]
                for x in r.roles
            ),
        ],
    )
    return "\n".join(lines).rstrip() + "\n"

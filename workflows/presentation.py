"""What people see of an onboarding, as pure functions over its state: the `status`
query's answer, the Temporal UI's current details (a markdown checklist) and the values
of its search attributes. The workflow (`workflows/onboarding.py`) publishes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio.common import SearchAttributeKey

from workflows import business_days, progress, rules
from workflows import search_attributes as sa
from workflows.formats import day_text, score_text
from workflows.models import (
    ChampionWindow,
    EarlyFacts,
    Health,
    HealthBand,
    MilestoneStatus,
    MilestoneView,
    OnboardingProgress,
    OnboardingState,
    OnboardingStatus,
    Playbook,
    ProductView,
    ProgramView,
    RoleActivationView,
    SkipCheckView,
    SlaStep,
    Trigger,
    TtvBreakdown,
    product_dependencies,
)
from workflows.progress import activation, champion, expansion, measures, products, skipnet


def next_deadline(p: OnboardingProgress) -> datetime | None:
    """The next open milestone's due date; None once finished."""
    m = rules.next_milestone(p.milestones)
    return m.due_at if m and p.finished_at is None else None


def event_counts_text(counts: dict[str, int]) -> str:
    """`activated x2, user_invited x1`, by name; `none` when there are none."""
    return ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())) or "none"


def status(o: progress.Onboarding, workflow_id: str, now: datetime) -> OnboardingStatus:
    """The `status` query's answer once the deal has arrived."""
    deal, p = o.deal, o.progress
    zone = o.calendar.time_zone
    views = [
        MilestoneView(
            id=m.id,
            title=m.title,
            phase=m.phase,
            weight=m.weight,
            owner=m.owner,
            status=m.status,
            due_at=m.due_at,
            done_at=m.done_at,
            overdue=m.is_open and now >= m.due_at,
            credit=rules.milestone_credit(m, now, o.playbook.health),
            provisional=m.provisional and m.is_open,
            product=m.product,
            held=m.held and m.is_open,
            due_unit=m.due_unit,
            due_local=business_days.deadline_text(m.due_at, m.due_unit, zone),
        )
        for m in p.milestones
    ]
    return OnboardingStatus(
        account_id=deal.account_id,
        account_name=deal.account_name,
        workflow_id=workflow_id,
        acv_usd=deal.acv_usd,
        currency=deal.currency,
        acv=deal.acv,
        fx_rate=deal.fx_rate,
        state=progress.state(o, now),
        tier=p.tier,
        tier_decision=p.tier_decision,
        tier_changes=p.tier_changes,
        phase=rules.current_phase(p.milestones),
        playbook_version=o.playbook.version,
        playbook_hash=o.playbook.content_hash,
        owner=p.owner,
        closed_won_at=deal.close_date,
        as_of=now,
        next_deadline=next_deadline(p),
        milestones=views,
        health=o.health(now),
        ttv=o.ttv(),
        completion_pct=rules.completion_pct(p.milestones),
        success_criteria=p.success_criteria,
        pause=p.pause,
        decision_required=p.decision_required,
        risk_flags=p.risk_flags,
        escalations=p.escalations,
        event_counts=p.event_counts,
        started_at=p.started_at,
        finished_at=p.finished_at,
        cancel_reason=p.cancelled.reason if p.cancelled else None,
        paused_days_total=p.paused_days_total,
        rejected=p.rejected,
        audit=p.audit,
        champion_windows=p.champion_windows,
        deal_type=deal.deal_type,
        churn_reason=deal.churn_reason,
        success_plan=p.success_plan,
        schedule_provisional=any(m.provisional and m.is_open for m in p.milestones),
        support_tickets=skipnet.support_tickets(p, o.playbook),
        products=product_views(o),
        onboarding_number=p.onboarding_number,
        deals_onboarded=expansion.deals_onboarded(p, deal),
        queued_deals=expansion.queued_views(p),
        team_invitations=measures.team_invitations(p, o.playbook.measures),
        first_active_on=measures.first_active_on(p),
        came_back_on=measures.came_back_on(p),
        skip_checks=skip_check_views(p),
        programs=program_views(o),
        specialist=p.specialist,
        time_zone=zone,
        sla_steps=sla_steps(o),
        roles=activation.views(o),
        first_value_by_roles_at=activation.first_value_by_roles_at(p),
        converted_to=p.converted_to,
    )


def skip_check_views(p: OnboardingProgress) -> list[SkipCheckView]:
    """The skip net's pending checks (one per skip, so a handful), earliest first: the
    gate, when it was skipped, the day it is due (moved by a pause once resumed) and the
    day it was first due; `held` while a pause holds it (rules §6.4). None once the
    onboarding is finished or cancelled: it runs none then."""
    if p.finished_at is not None:
        return []
    titles = {m.id: m.title for m in p.milestones}
    return [
        SkipCheckView(
            milestone_id=c.milestone_id,
            title=titles.get(c.milestone_id, c.milestone_id),
            skipped_at=c.skipped_at,
            due_at=c.due_at,
            planned_at=c.planned_at,
            held=p.pause is not None,
        )
        for c in sorted(p.skip_checks, key=lambda c: c.due_at)
    ]


def program_views(o: progress.Onboarding) -> list[ProgramView]:
    """The group programs the onboarding was invited to or attended (rules §1)."""
    known = o.playbook.programs
    return [
        ProgramView(
            program=x.program,
            title=known[x.program].title if x.program in known else x.program,
            invited_at=x.invited_at,
            session_at=x.session_at,
            attended_at=x.attended_at,
            attendances=x.attendances,
        )
        for x in o.progress.programs
    ]


def sla_steps(o: progress.Onboarding) -> list[SlaStep]:
    """The ladder's steps still to come on the sales-to-CS handoff and the first CS
    engagement (rules §3), or counted in business days or hours (rules §4), earliest
    first, each with its deadline in the account's zone."""
    zone = o.calendar.time_zone
    return [
        SlaStep(
            step_id=d.step.id,
            trigger=d.step.when,
            due_at=d.at,
            due_local=business_days.deadline_text(d.at, d.step.days_unit, zone),
            days=d.step.days,
            days_unit=d.step.days_unit,
        )
        for d in o.steps()
        if d.step.days_unit != "days" or d.step.when in _SLA_TRIGGERS
    ]


_SLA_TRIGGERS = (Trigger.NO_HANDOFF, Trigger.NO_ENGAGEMENT)


def product_views(o: progress.Onboarding) -> list[ProductView]:
    """Each product of a multi-product deal: its adoption, and the gate it waits at
    with its predecessors' adoption now and the threshold (rules §6.2)."""
    deal, p = o.deal, o.progress
    deps = product_dependencies(deal.products)
    adopted = products.adoptions(deal, p)
    views = []
    for x in deal.products:
        waiting = next((g for g in p.product_gates if g.product == x.id and g.waiting), None)
        views.append(
            ProductView(
                id=x.id,
                name=x.name,
                licensed_seats=x.licensed_seats,
                active_users=len(p.products[x.id].users) if x.id in p.products else 0,
                adoption=adopted[x.id],
                depends_on=deps[x.id],
                waiting_at=waiting.phase if waiting else None,
                waiting_since=waiting.decided_at if waiting else None,
                predecessor_adoption={d: adopted[d] for d in deps[x.id]},
                threshold=o.playbook.products.adoption_threshold,
            )
        )
    return views


def waiting_status(
    account_id: str,
    playbook: Playbook,
    early: EarlyFacts,
    until: datetime,
    workflow_id: str,
    now: datetime,
) -> OnboardingStatus:
    """The `status` query's answer before the deal: what has arrived, waited for `until`."""
    return OnboardingStatus(
        account_id=account_id,
        account_name=account_id,
        workflow_id=workflow_id,
        acv_usd=0,
        state=OnboardingState.AWAITING_DEAL,
        tier=None,
        tier_decision=None,
        tier_changes=[],
        phase=None,
        playbook_version=playbook.version,
        playbook_hash=playbook.content_hash,
        owner=None,
        closed_won_at=None,
        as_of=now,
        next_deadline=None,
        milestones=[],
        health=Health(score=None, band=HealthBand.HEALTHY, earned=0, possible=0),
        ttv=TtvBreakdown(),
        completion_pct=0,
        success_criteria=[],
        pause=None,
        decision_required=False,
        risk_flags=[],
        escalations=[],
        event_counts=early.event_counts,
        awaiting_deal_until=until,
        rejected=early.rejected,
        audit=[],
    )


def waiting_details(account_id: str, early: EarlyFacts, until: datetime) -> str:
    """The UI's current details before the deal: what we wait for, what has arrived."""
    return (
        f"**{account_id}** · waiting for the closed-won deal until {day_text(until)}\n\n"
        f"Product events so far: {event_counts_text(early.event_counts)}"
    )


def search_values(
    o: progress.Onboarding, now: datetime
) -> list[tuple[SearchAttributeKey[Any], object]]:
    """Each custom search attribute and its value now (None: unset), in a fixed order."""
    p = o.progress
    health = o.health(now)
    phase = rules.current_phase(p.milestones)
    return [
        (sa.ONBOARDING_TIER, p.tier.value),
        (sa.ONBOARDING_PHASE, phase.value if phase else "done"),
        (sa.ONBOARDING_STATE, progress.state(o, now).value),
        (sa.ONBOARDING_HEALTH, round(health.score) if health.score is not None else None),
        (sa.CSM_OWNER, p.owner),
        (sa.ACV_USD, o.deal.acv_usd),
        (sa.NEXT_DEADLINE, next_deadline(p)),
    ]


def checklist(o: progress.Onboarding, now: datetime) -> str:
    """The UI's current details: a headline (with the owner and any implementation
    specialist), then each milestone as a checklist line, then a pause, a pending
    decision, the last escalation, the SLA steps to come on the account's clock (rules
    §3-§4), the last champion change's re-alignment window (rules §6.3), a multi-product
    deal's products (rules §6.2), the skip net's pending checks (rules §6.4) and
    activation by role (rules §7). A deadline counted in business days or hours shows in
    the account's zone and says so."""
    p, health = o.progress, o.health(now)
    zone = o.calendar.time_zone
    lines = [
        f"**{o.deal.account_name}** · {p.tier.value} · {progress.state(o, now).value} · "
        f"health {score_text(health.score)} ({health.band.value}) · "
        f"owner {p.owner or 'automated'}"
        + (f" · implementation specialist {p.specialist}" if p.specialist else ""),
        "",
    ]
    for m in p.milestones:
        if m.status is MilestoneStatus.DONE and m.done_at:
            late = " (late)" if m.done_at > m.due_at else ""
            lines.append(f"- [x] {m.phase.value}: {m.title} — done {day_text(m.done_at)}{late}")
        elif m.status is MilestoneStatus.SKIPPED:
            lines.append(f"- [x] ~~{m.phase.value}: {m.title}~~ — skipped: {m.skip_reason}")
        else:
            flag = " **OVERDUE**" if now >= m.due_at else ""
            if m.provisional:  # not agreed yet: never overdue (rules §2)
                flag = " (provisional: waits for the success plan)"
            if m.held:  # its product waits at a phase gate: never overdue (rules §6.2)
                flag = " (held: its product waits)"
            started = " (in progress)" if m.status is MilestoneStatus.IN_PROGRESS else ""
            due = day_text(m.due_at)
            if m.due_unit != "days":  # the account's clock, and what it counts
                due = business_days.deadline_text(m.due_at, m.due_unit, zone)
            lines.append(f"- [ ] {m.phase.value}: {m.title}{started} — due {due}{flag}")
    if p.pause:
        lines += ["", f"Paused by {p.pause.by} since {day_text(p.pause.since)}: {p.pause.reason}"]
    if p.decision_required:
        lines += ["", "**Decision required:** resume with a revised timeline, or pause."]
    if p.escalations:
        last = p.escalations[-1]
        lines += ["", f"Last escalation: {last.tier.value}.{last.step_id} on {day_text(last.at)}"]
    if slas := sla_steps(o):
        lines += ["", *_slas(o, slas)]
    if p.champion_windows:
        lines += ["", *_realignment(o, p.champion_windows[-1])]
    if o.deal.products:
        lines += ["", *_products(o)]
    if checks := skip_check_views(p):
        lines += ["", "Skip net checks:", *map(skip_check_line, checks)]
    if roles := activation.views(o):
        lines += ["", roles_line(o, roles)]
    return "\n".join([*lines, "", *deal_facts(o)])


def deal_facts(o: progress.Onboarding) -> list[str]:
    """The closed-won deal's facts, at the foot of the UI's current details: ACV, seats,
    closed-won day and CRM ids; the tier the rule gave at the start, with its clause; the
    pinned playbook's version and hash. Here rather than in the start's static details,
    which every start request would carry to the server (README *Benchmark*)."""
    deal, decision, playbook = o.deal, o.progress.tier_decision, o.playbook
    crm = deal.crm
    ids = "".join(
        f", {label} `{value}`"
        for label, value in (("deal", crm.deal_id), ("company", crm.company_id))
        if value
    )
    lines = [
        f"Deal: ACV {rules.acv_text(deal)}, {deal.seats} seats, closed-won "
        f"{day_text(deal.close_date)} · CRM {crm.source}{ids}",
        f"Tier at the start: {decision.tier.value} (`{decision.clause}`): {decision.reason}",
        f"Playbook: {playbook.name}, version {playbook.version} "
        f"(sha256 `{playbook.content_hash or 'n/a'}`)",
    ]
    if deal.fx_rate is not None:
        lines.append(
            f"Exchange rate: {deal.fx_rate.per_usd:g} {deal.currency} per USD, in force "
            f"from {deal.fx_rate.effective.isoformat()}"
        )
    return lines


def roles_line(o: progress.Onboarding, roles: list[RoleActivationView]) -> str:
    """`Activation by role: admin 1/1 ✓, end user 2/3, executive sponsor 0/1 · first value
    (admin and end user): not yet` (or the day it was reached; rules §7)."""
    spec = o.playbook.activation
    assert spec is not None, "roles are shown only with [activation]"
    reached = activation.first_value_by_roles_at(o.progress)
    rule = " and ".join(spec.title(r) for r in spec.first_value_when)
    when = day_text(reached) if reached else "not yet"
    return f"Activation by role: {activation.line(roles)} · first value ({rule}): {when}"


def skip_check_line(v: SkipCheckView) -> str:
    """`- First training session completed (skipped 2026-03-03): checked 2026-03-20 (moved
    from 2026-03-16 by a pause)`; while paused, `(held by the pause: moves by the time
    paused)`."""
    line = f"- {v.title} (skipped {day_text(v.skipped_at)}): checked {day_text(v.due_at)}"
    if v.held:
        return f"{line} (held by the pause: moves by the time paused)"
    if v.planned_at is not None and v.planned_at != v.due_at:
        return f"{line} (moved from {day_text(v.planned_at)} by a pause)"
    return line


def _slas(o: progress.Onboarding, slas: list[SlaStep]) -> list[str]:
    """The SLA steps to come (rules §3-§4), one a line: `- no_handoff (24 business hours):
    2026-12-08 17:00 America/New_York, in business hours`."""
    lines = []
    for s in slas:
        amount = f"{s.days} {business_days.UNIT_WORDS[s.days_unit]}"
        lines.append(f"- {s.step_id} ({amount}): {s.due_local}")
    return ["SLAs to come (in the account's calendar):", *lines]


def _products(o: progress.Onboarding) -> list[str]:
    """Each product's adoption; one that waits, bold, with why (rules §6.2)."""
    lines = []
    for v in product_views(o):
        line = f"{v.name}: adoption {v.adoption * 100:.0f}% ({v.active_users}/{v.licensed_seats})"
        if v.waiting_at is not None and v.waiting_since is not None:
            why = products.adoption_text(v.predecessor_adoption, v.threshold)
            since = day_text(v.waiting_since)
            line = f"**{line} — waits at the {v.waiting_at.value} gate since {since}: {why}**"
        lines.append(f"- {line}")
    return ["Products:", *lines]


def _realignment(o: progress.Onboarding, w: ChampionWindow) -> list[str]:
    """The re-alignment window as checklist lines: open, with each gate; else its outcome."""
    head = f"Champion change ({w.previous} -> {w.champion}): re-alignment"
    if w.outcome != "open":
        closed = day_text(w.closed_at) if w.closed_at else "-"
        return [f"{head} {w.outcome} {closed}"]
    titles = o.playbook.champion_change.gates if o.playbook.champion_change else {}
    lines = [f"**{head}** by the end of {champion.last_day(w)}"]
    for gate, done in w.gates.items():
        title = titles.get(gate, gate)
        lines.append(f"- [x] {title} — done {day_text(done)}" if done else f"- [ ] {title}")
    return lines

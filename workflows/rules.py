"""The onboarding rules as pure functions (rules §1-§4 (docs/rules.md)), tested without a
server.

Nothing here reads the clock or does I/O: `now` is always an argument, so the workflow
can call these with `workflow.now()` and replay gets the same answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from workflows import business_days
from workflows.business_days import Calendar
from workflows.formats import amount_text, usd_text
from workflows.models import (
    HEALTH_BANDS,
    PHASE_ORDER,
    Action,
    Audience,
    ClosedWonDeal,
    DealProduct,
    DealType,
    EscalationStep,
    Health,
    HealthBand,
    HealthRule,
    Milestone,
    MilestoneSpec,
    MilestoneStatus,
    OnboardingProgress,
    OnboardingStatus,
    Phase,
    Playbook,
    Tier,
    TierDecision,
    TierRule,
    Track,
    Trigger,
    TtvBreakdown,
)

DAY = timedelta(days=1)

# --------------------------------------------------------------------------- §1 tier rule


def acv_text(deal: ClosedWonDeal | OnboardingStatus) -> str:
    """The ACV in US dollars, and what it was sold in when that is another currency:
    `$48,000 (7,200,000 JPY at 150 per USD)`. Of a deal, or of an onboarding's status."""
    text = usd_text(deal.acv_usd)
    if deal.acv is not None and deal.fx_rate is not None:
        rate = deal.fx_rate.per_usd
        text += f" ({amount_text(deal.acv)} {deal.currency} at {rate:g} per USD)"
    return text


def assign_tier(deal: ClosedWonDeal, rule: TierRule) -> TierDecision:
    """The tier for a closed-won deal, with the clause that decided it (rules §1
    (docs/rules.md)). ACV is in US dollars; the reason shows a deal's own currency too."""
    acv, hours = deal.acv_usd, deal.configuration_hours
    acv_is = acv_text(deal)
    high_clauses = [
        (
            acv >= rule.enterprise_acv_usd,
            "acv",
            f"ACV {acv_is} >= enterprise threshold {usd_text(rule.enterprise_acv_usd)}",
        ),
        (deal.needs_api_integration, "api_integration", "needs API integration"),
        (deal.custom_data_migration, "data_migration", "needs custom data migration"),
        (
            deal.stakeholder_count >= rule.high_touch_min_stakeholders,
            "stakeholders",
            f"{deal.stakeholder_count} stakeholders (>= {rule.high_touch_min_stakeholders})",
        ),
        (
            hours > rule.high_touch_config_hours_over,
            "configuration_hours",
            f"{hours:g} h of configuration (> {rule.high_touch_config_hours_over:g} h)",
        ),
    ]
    for fired, clause, reason in high_clauses:
        if fired:
            return TierDecision(tier=Tier.HIGH_TOUCH, clause=f"high_touch.{clause}", reason=reason)

    # No high_touch clause fired, so there is no API integration or custom migration.
    in_smb_band = acv < rule.smb_floor_acv_usd
    if not in_smb_band and hours < rule.tech_touch_setup_hours_under:
        return TierDecision(
            tier=Tier.TECH_TOUCH,
            clause="tech_touch.all",
            reason=(
                f"ACV {acv_is} in {usd_text(rule.smb_floor_acv_usd)}-"
                f"{usd_text(rule.enterprise_acv_usd)}, setup {hours:g} h "
                f"(< {rule.tech_touch_setup_hours_under:g} h), no custom integration"
            ),
        )
    if in_smb_band and hours == 0 and not deal.integrations:
        return TierDecision(
            tier=Tier.SELF_SERVE,
            clause="self_serve.all",
            reason=(
                f"ACV {acv_is} < {usd_text(rule.smb_floor_acv_usd)}, "
                "no configuration, no integrations"
            ),
        )

    band = Tier.SELF_SERVE if in_smb_band else Tier.TECH_TOUCH
    if band is Tier.SELF_SERVE:
        misses = [
            f"{hours:g} h of configuration" if hours else "",
            f"integrations: {', '.join(deal.integrations)}" if deal.integrations else "",
        ]
    else:
        misses = [f"setup {hours:g} h is not under {rule.tech_touch_setup_hours_under:g} h"]
    tier = band.next_up()
    return TierDecision(
        tier=tier,
        clause="next_tier_up",
        reason=(
            f"ACV {acv_is} is in the {band.value} band but "
            f"{'; '.join(m for m in misses if m)}: next tier up, {tier.value}"
        ),
    )


def track_tier(decision: TierDecision, deal_type: DealType, track: Track) -> TierDecision:
    """The tier rule's decision moved `track.tier_bump` touch levels up (rules §1
    (docs/rules.md): a win-back runs one level above its segment); the clause and the
    reason say so: `tech_touch.all+win_back`. An automated-only track (free and trial
    accounts) runs self_serve whatever the rule decided: clause `self_serve.trial`,
    reason `<the rule's reason>; trial track is automated only: high_touch ->
    self_serve`. A track without either keeps the decision."""
    if track.automated_only:
        if decision.tier is Tier.SELF_SERVE:
            moved = "self_serve as the tier rule decided"
        else:
            moved = f"{decision.tier.value} -> {Tier.SELF_SERVE.value}"
        return TierDecision(
            tier=Tier.SELF_SERVE,
            clause=f"{Tier.SELF_SERVE.value}.{deal_type.value}",
            reason=f"{decision.reason}; {deal_type.value} track is automated only: {moved}",
        )
    if not track.tier_bump:
        return decision
    tier = decision.tier
    for _ in range(track.tier_bump):
        tier = tier.next_up()
    if tier is decision.tier:
        moved = f"already {tier.value}, the highest"
    else:
        moved = f"{decision.tier.value} -> {tier.value}"
    return TierDecision(
        tier=tier,
        clause=f"{decision.clause}+{deal_type.value}",
        reason=(
            f"{decision.reason}; {deal_type.value} track runs {track.tier_bump} touch "
            f"level{'s' if track.tier_bump > 1 else ''} higher: {moved}"
        ),
    )


def decide_tier(deal: ClosedWonDeal, playbook: Playbook) -> TierDecision:
    """The tier a deal starts in: the tier rule, then its track's bump (rules §1
    (docs/rules.md))."""
    decision = assign_tier(deal, playbook.tier_rule)
    return track_tier(decision, deal.deal_type, playbook.track(deal.deal_type))


# --------------------------------------------------------------------------- §2 the plan


def build_plan(
    playbook: Playbook,
    tier: Tier,
    closed_won: datetime,
    deal_type: DealType = DealType.NEW_BUSINESS,
    products: Sequence[DealProduct] = (),
    calendar: Calendar | None = None,
) -> list[Milestone]:
    """The milestone gates of the tier and the deal type's track, with deadlines counted
    from closed-won (rules §2 (docs/rules.md)) in each gate's `due_unit`: business days
    and hours in the account's `calendar` (None: the playbook's `[business_calendar]`,
    rules §4); a multi-product deal's `products` each get their own copy of the
    playbook's per-product gates (rules §6.2)."""
    calendar = calendar or playbook.business_calendar.of(None, None)
    return [
        _planned(playbook, spec, product, tier, closed_won, calendar)
        for spec, product in _gates(playbook, tier, deal_type, products)
    ]


def product_gate_id(milestone_id: str, product_id: str) -> str:
    """A per-product gate's id in the plan: `technical_setup:crm` (rules §6.2)."""
    return f"{milestone_id}:{product_id}"


def _gates(
    playbook: Playbook, tier: Tier, deal_type: DealType, products: Sequence[DealProduct]
) -> list[tuple[MilestoneSpec, DealProduct | None]]:
    """The tier's gates in plan order, a per-product one once per product in the deal's
    order; without products every gate once, as a single-product deal's."""
    repeated = set(playbook.products.per_product) if products else set()
    return [
        (spec, product)
        for spec in playbook.milestones_for(tier, deal_type)
        for product in (products if spec.id in repeated else [None])
    ]


def _planned(
    playbook: Playbook,
    spec: MilestoneSpec,
    product: DealProduct | None,
    tier: Tier,
    base: datetime,
    calendar: Calendar,
) -> Milestone:
    return Milestone(
        id=product_gate_id(spec.id, product.id) if product else spec.id,
        title=f"{spec.title} ({product.name})" if product else spec.title,
        phase=spec.phase,
        weight=spec.weight,
        owner=spec.owner,
        starts_at=base + playbook.phase_start_day(tier, spec.phase) * DAY,
        due_at=business_days.deadline(base, spec.due_days[tier], spec.due_unit, calendar),
        product=product.id if product else None,
        template=spec.id if product else None,
        due_unit=spec.due_unit,
    )


def replan(
    playbook: Playbook,
    milestones: list[Milestone],
    tier: Tier,
    at: datetime,
    deal_type: DealType = DealType.NEW_BUSINESS,
    products: Sequence[DealProduct] = (),
    calendar: Calendar | None = None,
) -> list[Milestone]:
    """The plan after a tier change at `at` (rules §4 (docs/rules.md): a designed transition).

    Reached and skipped milestones stay as they are, with their credit. The new tier's
    remaining milestones are laid out on its timeline as if its first open phase began
    now (closed-won put that many days before `at`, business deadlines counted from
    there in `calendar`), so no rebuilt deadline is already in the past. The deal type's
    track and the deal's products stay.
    """
    calendar = calendar or playbook.business_calendar.of(None, None)
    gates = _gates(playbook, tier, deal_type, products)
    settled = {m.id for m in milestones if not m.is_open}
    ids = [product_gate_id(spec.id, product.id) if product else spec.id for spec, product in gates]
    phases = [spec.phase for (spec, _), i in zip(gates, ids, strict=True) if i not in settled]
    if not phases:
        return [m for m in milestones if not m.is_open]
    first_phase = min(phases, key=PHASE_ORDER.index)
    base = at - playbook.phase_start_day(tier, first_phase) * DAY
    return _rebuilt(playbook, gates, milestones, tier, base, calendar)


def _rebuilt(
    playbook: Playbook,
    gates: list[tuple[MilestoneSpec, DealProduct | None]],
    milestones: list[Milestone],
    tier: Tier,
    base: datetime,
    calendar: Calendar,
) -> list[Milestone]:
    """`gates` planned from `base`, keeping what `milestones` settled (with their credit)
    and the status of those still open (a new revision: a fresh overdue step)."""
    settled = {m.id: m for m in milestones if not m.is_open}
    previous = {m.id: m for m in milestones}
    plan: list[Milestone] = []
    for spec, product in gates:
        m = _planned(playbook, spec, product, tier, base, calendar)
        if m.id in settled:
            plan.append(settled.pop(m.id))
            continue
        if (old := previous.get(m.id)) is not None:
            m.status, m.started_at, m.revision = old.status, old.started_at, old.revision + 1
        plan.append(m)
    # Reached milestones the new tier does not plan keep their earned credit.
    return plan + list(settled.values())


def migrated_plan(
    playbook: Playbook,
    milestones: list[Milestone],
    tier: Tier,
    base: datetime,
    renamed: Mapping[str, str],
    deal_type: DealType = DealType.NEW_BUSINESS,
    products: Sequence[DealProduct] = (),
    calendar: Calendar | None = None,
) -> list[Milestone]:
    """The plan after a move to another playbook version (rules §2 (docs/rules.md),
    *Migrating to a new playbook version*): `playbook`'s gates of `tier` and the deal
    type's track, their deadlines counted from `base` (closed-won shifted by every pause,
    `OnboardingProgress.clock_start`) as a new plan's are, in `calendar`.

    `renamed` maps a milestone's id in the plan to its id in the new one (for a gate
    the new playbook calls otherwise, `migration.renamed_ids`): it carries its status,
    start, completion and credit over under the new id and title. Reached and skipped
    milestones keep their deadline and credit (those the new plan lacks stay as they
    are, as a tier change keeps them); open ones take the new plan's deadline as a new
    revision."""
    calendar = calendar or playbook.business_calendar.of(None, None)
    gates = _gates(playbook, tier, deal_type, products)
    planned = build_plan(playbook, tier, base, deal_type, products, calendar)
    titles = {m.id: m.title for m in planned}
    carried = []
    for m in milestones:
        if (new_id := renamed.get(m.id)) is not None:
            template = new_id.split(":", 1)[0] if m.template else None
            title = titles.get(new_id, m.title)
            m = replace(m, id=new_id, title=title, template=template)
        carried.append(m)
    return _rebuilt(playbook, gates, carried, tier, base, calendar)


def current_phase(milestones: list[Milestone]) -> Phase | None:
    """The earliest phase with an open gate; None once every gate is settled."""
    open_phases = [m.phase for m in milestones if m.is_open]
    return min(open_phases, key=PHASE_ORDER.index) if open_phases else None


def completion_pct(milestones: list[Milestone]) -> float:
    counted = [m for m in milestones if m.status is not MilestoneStatus.SKIPPED]
    if not counted:
        return 100.0
    done = sum(m.status is MilestoneStatus.DONE for m in counted)
    return round(100 * done / len(counted), 1)


# --------------------------------------------------------------------------- §2 health


def milestone_credit(m: Milestone, now: datetime, rule: HealthRule) -> float | None:
    """Completion credit of one milestone now; None if it does not count yet (or skipped)."""
    if m.status is MilestoneStatus.SKIPPED:
        return None
    # A deadline not agreed, or not running while its product waits (rules §6.2), counts
    # for the account, never against it.
    if m.provisional or m.held:
        return rule.credit_on_time if m.status is MilestoneStatus.DONE else None
    if m.status is MilestoneStatus.DONE:
        assert m.done_at is not None
        if m.done_at <= m.due_at:
            return rule.credit_on_time
        late_limit = m.starts_at + (m.due_at - m.starts_at) * rule.late_window_multiple
        return rule.credit_late if m.done_at <= late_limit else rule.credit_very_late
    if now < m.due_at:
        return None
    if m.status is MilestoneStatus.IN_PROGRESS:
        return rule.credit_in_progress_overdue
    return rule.credit_not_started_overdue


def health_score(milestones: list[Milestone], now: datetime, rule: HealthRule) -> Health:
    """sum(weight x credit) / sum(weights of milestones due or done) x 100 (rules §2
    (docs/rules.md))."""
    earned = possible = 0.0
    for m in milestones:
        credit = milestone_credit(m, now, rule)
        if credit is not None:
            earned += m.weight * credit
            possible += m.weight
    if possible == 0:
        return Health(score=None, band=HealthBand.HEALTHY, earned=0, possible=0)
    score = round(100 * earned / possible, 1)
    if score >= rule.healthy:
        band = HealthBand.HEALTHY
    elif score >= rule.at_risk:
        band = HealthBand.AT_RISK
    else:
        band = HealthBand.CRITICAL
    return Health(score=score, band=band, earned=earned, possible=possible)


def in_band(health: Health, band: HealthBand) -> bool:
    """Whether `health` is in `band` or a worse one (rules §2 (docs/rules.md)); never
    before a milestone is due (no score)."""
    return health.score is not None and health.band.severity >= band.severity


def health_entered(
    milestones: list[Milestone], since: datetime, rule: HealthRule
) -> dict[HealthBand, datetime | None]:
    """For each band a health step watches (`HEALTH_BANDS`), the first moment from
    `since` on at which the health is in it or a worse one, as the plan stands (rules §2
    (docs/rules.md)): `since` itself, or the deadline of an open gate that takes it
    there; None if none does. Between two turns of the loop only deadlines passing move
    the score (a provisional or held one counts for nothing). One sweep of the deadlines
    for every band: the ladder asks at each wake-up, so this is the simulator's and the
    loop's hottest rule."""
    deadlines = sorted(
        {m.due_at for m in milestones if m.is_open and not (m.provisional or m.held)}
    )
    entered: dict[HealthBand, datetime | None] = dict.fromkeys(HEALTH_BANDS.values())
    waiting = list(entered)
    for at in [since, *(d for d in deadlines if d > since)]:
        health = health_score(milestones, at, rule)
        for band in [b for b in waiting if in_band(health, b)]:
            entered[band] = at
            waiting.remove(band)
        if not waiting:
            break
    return entered


def health_entries(
    progress: OnboardingProgress, playbook: Playbook, now: datetime
) -> dict[Trigger, int]:
    """The entry a health step's key carries after a turn of the loop at `now` (rules §4
    (docs/rules.md)): a health trigger's count goes up by one when the health is above
    its band and a step on it was done in the current entry, so the next drop into the
    band fires it again. Unchanged while paused."""
    entries = dict(progress.health_entries)
    if progress.pause is not None or progress.finished_at is not None:
        return entries
    fired, health = set(progress.fired), None
    for trigger, band in HEALTH_BANDS.items():
        keys = {
            f"{tier.value}.{step.id}:h{entries.get(trigger, 0)}"
            for tier, steps in playbook.ladder.items()
            for step in steps
            if step.when is trigger
        }
        if not keys & fired:
            continue
        health = health or health_score(progress.milestones, now, playbook.health)
        if not in_band(health, band):
            entries[trigger] = entries.get(trigger, 0) + 1
    return entries


# --------------------------------------------------------------------------- §3 TTV


def _days(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return round(max(0.0, (later - earlier) / DAY), 2)


def time_to_value(
    playbook: Playbook,
    tier: Tier,
    milestones: list[Milestone],
    closed_won: datetime,
    started_at: datetime,
    deal_type: DealType = DealType.NEW_BUSINESS,
) -> TtvBreakdown:
    """Handoff delay + setup + activation, from contract signature (rules §3 (docs/rules.md)).

    A tier with no first-engagement milestone (self-serve) is engaged by the automated
    welcome the workflow sends when it starts.
    """

    def reached(mark: str) -> datetime | None:
        times = [
            m.done_at
            for m in milestones
            if m.done_at is not None and (s := playbook.milestone(m.spec_id)) and s.ttv == mark
        ]
        return min(times) if times else None

    planned = playbook.milestones_for(tier, deal_type)
    has_engagement_gate = any(s.ttv == "first_engagement" for s in planned)
    engaged = reached("first_engagement") if has_engagement_gate else started_at
    ready, value = reached("system_ready"), reached("first_value")
    return TtvBreakdown(
        handoff_delay_days=_days(engaged, closed_won),
        setup_days=_days(ready, engaged),
        activation_days=_days(value, ready),
        total_days=_days(value, closed_won),
        target_days=playbook.ttv_target_days[tier],
    )


# --------------------------------------------------------------------------- §4 the ladder


@dataclass(frozen=True)
class DueStep:
    """An escalation step that comes due at `at`; `key` makes it fire once."""

    key: str
    at: datetime
    step: EscalationStep
    order: int
    milestone_id: str | None = None

    def later(self, n: int) -> DueStep:
        """The `n`-th repeat after this one (a `no_progress` step with `repeat_days`)."""
        if n == 0:
            return self
        stem, _, k = self.key.rpartition("#")
        every = (self.step.repeat_days or 0) * DAY
        return replace(self, key=f"{stem}#{int(k) + n}", at=self.at + n * every)


def passed_over(due: DueStep, now: datetime) -> int:
    """How many repeats of a recurring step, from `due` on, a later repeat also due by
    `now` makes stale (0: `due` itself is the latest). Catching up after a backdated
    start or a stopped worker sends only the latest repeat of a recurring message."""
    every = due.step.repeat_days
    if every is None or due.at > now:
        return 0
    return (now - due.at) // (every * DAY)


def automated_only(progress: OnboardingProgress, playbook: Playbook, deal_type: DealType) -> bool:
    """Whether the onboarding runs automated only (rules §1 (docs/rules.md)): its deal
    type's track says so (`[tracks.<deal type>].automated_only`, the free and trial
    track) and no person has overridden its tier since (a person may give a trial a
    human: from then on it runs as its tier does)."""
    overridden = any(c.kind == "override" for c in progress.tier_changes)
    return playbook.track(deal_type).automated_only and not overridden


def needs_a_person(action: Action) -> bool:
    """Whether a ladder action needs a vendor person (rules §1 (docs/rules.md)), so that
    an automated-only onboarding leaves it out: a message to anyone but the customer
    (the CSM, CS leadership, the implementation specialist; the executive sponsor's
    escalation, which a CSM follows up), a move to a tier with people in it
    (tech_touch, high_touch), a decision asked of a person, a risk flag for human
    follow-up. The customer's nudges and adopting the fallback success criteria run."""
    if action.notify is not None:
        return action.notify is not Audience.CUSTOMER
    if action.change_tier is not None:
        return action.change_tier is not Tier.SELF_SERVE
    return action.require_decision or action.flag is not None


def _open(progress: OnboardingProgress, milestone_id: str) -> bool:
    return any(m.id == milestone_id and m.is_open for m in progress.milestones)


def engagement_gate(progress: OnboardingProgress, playbook: Playbook) -> Milestone | None:
    """The plan's first-engagement gate (rules §3 (docs/rules.md)): the first milestone
    whose playbook spec carries `ttv = "first_engagement"` (the kickoff call); None when
    the plan has none (self_serve)."""
    engagement = {s.id for s in playbook.milestones if s.ttv == "first_engagement"}
    return next((m for m in progress.milestones if m.spec_id in engagement), None)


def ladder_steps(
    progress: OnboardingProgress, playbook: Playbook, calendar: Calendar | None = None
) -> list[DueStep]:
    """Every not-yet-fired step of the current tier's ladder, with when it comes due.

    Clocks count from `clock_start` (closed-won, shifted by pauses) or from the last
    milestone progress, in the step's `days_unit`: business days and hours in the
    account's `calendar` (None: the playbook's `[business_calendar]`); a paused
    onboarding has no steps coming due. A health step comes due when the health enters
    its band as the plan stands (`health_entered`), its key carrying the entry
    (`progress.health_entries`, kept by `health_entries`).
    """
    if progress.pause is not None or progress.finished_at is not None:
        return []
    fired = set(progress.fired)
    tier = progress.tier
    calendar = calendar or playbook.business_calendar.of(None, None)
    # Read once per call (the loop asks for the steps at every wake-up): the open
    # milestones, and the repeats of no_progress steps done in this stall by key stem.
    open_milestones = [m for m in progress.milestones if m.is_open]
    open_ids = {m.id for m in open_milestones}
    repeats: dict[str, list[str]] | None = None
    entered: dict[HealthBand, datetime | None] | None = None  # `health_entered`

    def after(start: datetime, step: EscalationStep) -> datetime:
        return business_days.deadline(start, step.days, step.days_unit, calendar)

    steps: list[DueStep] = []
    tier_name = tier.value
    for order, step in enumerate(playbook.ladder[tier]):
        prefix = f"{tier_name}.{step.id}"
        match step.when:
            case Trigger.MILESTONE_OVERDUE:
                for m in open_milestones:
                    # A provisional deadline is not agreed yet, and a held one does not run
                    # while its product waits (rules §6.2): nothing escalates on either.
                    if m.provisional or m.held:
                        continue
                    key = f"{prefix}:{m.id}#r{m.revision}"
                    if key not in fired:
                        steps.append(DueStep(key, m.due_at, step, order, m.id))
            case Trigger.NO_LOGIN | Trigger.ACTIVATION_MISSED:
                watched = (
                    playbook.login_milestone
                    if step.when is Trigger.NO_LOGIN
                    else playbook.value_milestone
                )
                if prefix not in fired and watched in open_ids:
                    at = after(progress.clock_start, step)
                    steps.append(DueStep(prefix, at, step, order, watched))
            case Trigger.NO_SUCCESS_CRITERIA:
                if not progress.success_criteria and prefix not in fired:
                    steps.append(DueStep(prefix, after(progress.clock_start, step), step, order))
            case Trigger.NO_HANDOFF | Trigger.NO_ENGAGEMENT:
                if prefix in fired:
                    continue
                gate = engagement_gate(progress, playbook)
                # The handoff is done once the CSM has scheduled (started) or held the
                # first engagement; the engagement, once it is held.
                waiting = gate is not None and (
                    gate.status is MilestoneStatus.NOT_STARTED
                    if step.when is Trigger.NO_HANDOFF
                    else gate.is_open
                )
                if gate is not None and waiting:
                    at = after(progress.clock_start, step)
                    steps.append(DueStep(prefix, at, step, order, gate.id))
            case Trigger.NO_PROGRESS:
                if not open_ids:
                    continue
                stem = f"{prefix}:e{progress.progress_epoch}#"
                if repeats is None:
                    repeats = _repeats_by_stem(fired, f":e{progress.progress_epoch}#")
                done = [int(k) for k in repeats.get(stem, ())]
                if done and step.repeat_days is None:
                    continue
                # The next repeat after the latest one done (a catch-up marks only the last
                # of the repeats it passed over).
                k = max(done) + 1 if done else 0
                if step.repeat_days is None:  # a repeating step counts calendar days
                    at = after(progress.last_progress_at, step)
                else:
                    at = progress.last_progress_at + (step.days + k * step.repeat_days) * DAY
                steps.append(DueStep(f"{stem}{k}", at, step, order))
            case Trigger.EVENT_WITHOUT_MILESTONE | Trigger.USAGE_DROP:
                if (due := behavior_due(progress, step, prefix)) and due.key not in fired:
                    steps.append(replace(due, order=order))
            case Trigger.HEALTH_AT_RISK | Trigger.HEALTH_CRITICAL:
                key = f"{prefix}:h{progress.health_entries.get(step.when, 0)}"
                if key in fired:
                    continue
                if entered is None:
                    # From the latest milestone reached (the plan's health is exact
                    # from then on), or the clock's start.
                    reached = [m.done_at for m in progress.milestones if m.done_at]
                    since = max([progress.clock_start, *reached])
                    entered = health_entered(progress.milestones, since, playbook.health)
                if (entry := entered[HEALTH_BANDS[step.when]]) is not None:
                    steps.append(DueStep(key, entry, step, order))
    return sorted(steps, key=lambda s: (s.at, s.order))


def _repeats_by_stem(fired: set[str], tag: str) -> dict[str, list[str]]:
    """The fired keys holding `tag` (`:e<epoch>#`) by their stem (up to and including
    the tag): `{"tech_touch.stall_status_email:e2#": ["0", "1"]}`, in one pass."""
    by_stem: dict[str, list[str]] = {}
    for key in fired:
        if (i := key.find(tag)) >= 0:
            end = i + len(tag)
            by_stem.setdefault(key[:end], []).append(key[end:])
    return by_stem


def behavior_due(progress: OnboardingProgress, step: EscalationStep, prefix: str) -> DueStep | None:
    """When a behavioral step (rules §4 (docs/rules.md)) comes due, from the latest times
    of its `events` (`progress.recent_times`), or None.

    Only events after the step last fired in this tier count, and it fires again no
    sooner than `cooldown_days` after that. `event_without_milestone`: `count` of them,
    and `milestone` still open `days` after the latest. `usage_drop`: `count` of them
    within `active_days` (an active period), then none for `days`. The key names the
    latest event, so each burst of events fires the step once."""
    latest = sorted(t for name in step.events for t in progress.recent_times.get(name, ()))
    if len(latest) < step.count:
        return None
    last = max(
        (
            e.at
            for e in progress.escalations
            if e.step_id == step.id and e.trigger is step.when and e.tier is progress.tier
        ),
        default=None,
    )
    window = latest[-step.count :]
    if len(window) < step.count or (last is not None and window[0] <= last):
        return None
    if step.when is Trigger.EVENT_WITHOUT_MILESTONE:
        assert step.milestone is not None
        if not _open(progress, step.milestone):
            return None
    elif window[-1] - window[0] > (step.active_days or 0) * DAY:
        return None
    at = window[-1] + step.days * DAY
    if last is not None:
        at = max(at, last + (step.cooldown_days or 0) * DAY)
    return DueStep(f"{prefix}@{window[-1].isoformat()}", at, step, 0, step.milestone)


def next_milestone(milestones: list[Milestone]) -> Milestone | None:
    """The open milestone due first: what the customer should do next (not one whose
    product waits at a phase gate: its deadline does not run, rules §6.2)."""
    open_ = [m for m in milestones if m.is_open and not m.held]
    return min(open_, key=lambda m: m.due_at) if open_ else None


# --------------------------------------------------------------------------- §2 success plan


def mark_provisional(
    playbook: Playbook, milestones: list[Milestone], tier: Tier, confirmed: bool
) -> list[Milestone]:
    """The plan with its provisional deadlines marked (rules §2 (docs/rules.md)): in a
    tier `[success_plan].tiers` names, until the success plan is `confirmed`, every open
    gate from `[success_plan].provisional_from` on; in any other case none."""
    rule = playbook.success_plan
    first = PHASE_ORDER.index(rule.provisional_from) if rule else 0
    hold = rule is not None and not confirmed and tier in rule.tiers
    return [
        replace(m, provisional=hold and m.is_open and PHASE_ORDER.index(m.phase) >= first)
        for m in milestones
    ]


def rebase_on_success_plan(
    milestones: list[Milestone], targets: Mapping[str, datetime], now: datetime
) -> list[Milestone]:
    """The plan once the customer confirms the success plan at `now` (rules §2
    (docs/rules.md)); `targets`: target dates by milestone id, each an open gate's, after
    `now`.

    A named gate is due on its target date. Every other open provisional gate moves by
    as much as the nearest named gate due at or before it in the proposed plan (else the
    nearest after it), so the proposed spacing holds; one that would then be due by
    `now` is due with that gate. No open deadline is provisional afterwards; one that
    moved is a new revision (a fresh overdue step). Settled gates keep what they had.
    """
    named = sorted((m for m in milestones if m.id in targets), key=lambda m: m.due_at)
    plan: list[Milestone] = []
    for m in milestones:
        if not m.is_open:
            plan.append(m)
            continue
        due, starts = m.due_at, m.starts_at
        if m.id in targets:
            due = targets[m.id]
        elif m.provisional and named:
            before = [n for n in named if n.due_at <= m.due_at]
            anchor = before[-1] if before else named[0]
            shift = targets[anchor.id] - anchor.due_at
            due, starts = m.due_at + shift, m.starts_at + shift
            if due <= now:
                due = targets[anchor.id]
        revision = m.revision + (due != m.due_at)
        # A date the customer set, or moved with one, counts in calendar days.
        unit = "days" if due != m.due_at else m.due_unit
        plan.append(
            replace(
                m,
                due_at=due,
                starts_at=min(starts, due),
                revision=revision,
                due_unit=unit,
                provisional=False,
            )
        )
    return plan

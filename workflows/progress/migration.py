"""Moving a running onboarding to another playbook version (rules §2 (docs/rules.md),
*Migrating to a new playbook version*): which milestones it renames, what it changes in
the plan, and the move itself; whether it may is `checks.playbook_migration`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from workflows import rules
from workflows.formats import day_text
from workflows.models import Milestone, Playbook, PlaybookMigration
from workflows.progress import products
from workflows.progress.changes import Changes, KeepTimes, Onboarding
from workflows.progress.ladder import supersede_passed
from workflows.progress.lifecycle import credit_observed_events


def playbook_text(playbook: Playbook) -> str:
    """`2027.1 (hash 3f2a9c1d0b7e4a55)`."""
    return f"{playbook.version} (hash {playbook.content_hash})"


def planned_ids(o: Onboarding, playbook: Playbook) -> list[str]:
    """The ids of the gates `playbook` plans for the onboarding's tier, track and products."""
    p, deal = o.progress, o.deal
    plan = rules.build_plan(
        playbook, p.tier, p.clock_start, deal.deal_type, deal.products, o.calendar
    )
    return [m.id for m in plan]


def mapped_id(m: Milestone, mapping: Mapping[str, str]) -> str:
    """The id `m` has under `mapping` (by playbook milestone id; a per-product gate keeps
    its product: `technical_setup:crm` -> `setup:crm`)."""
    to = mapping.get(m.spec_id, m.spec_id)
    return rules.product_gate_id(to, m.product) if m.product and m.template else to


def renamed_ids(o: Onboarding, migration: PlaybookMigration) -> dict[str, str]:
    """The plan's milestones the mapping renames: {id now: id in the new plan}."""
    renamed = {m.id: mapped_id(m, migration.mapping) for m in o.progress.milestones}
    return {old: new for old, new in renamed.items() if old != new}


@dataclass
class PlanDiff:
    """What a migration changes in the plan: milestones `renamed` (id now -> new id),
    `added` (planned by the new playbook only), `dropped` (no longer planned: reached or
    skipped ones keep their credit) and `redated` (open ones whose deadline moves: id,
    due now, due after)."""

    renamed: dict[str, str] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    redated: list[tuple[str, datetime, datetime]] = field(default_factory=list)

    def lines(self) -> list[str]:
        """`first_training -> training_101 (renamed)`, `first_training re-dated
        2027-01-05 -> 2027-01-01`, ...; none when nothing in the plan changes."""
        out = [f"{a} -> {b} (renamed)" for a, b in self.renamed.items()]
        out += [f"{i} added" for i in self.added]
        out += [f"{i} no longer planned" for i in self.dropped]
        out += [f"{i} re-dated {day_text(a)} -> {day_text(b)}" for i, a, b in self.redated]
        return out


def plan_diff(
    before: list[Milestone], after: list[Milestone], renamed: Mapping[str, str], planned: list[str]
) -> PlanDiff:
    """What changed from `before` to `after`, a migration's plans (`renamed` as it
    applied; `planned`: the ids the new playbook plans)."""
    now_ids = {renamed.get(m.id, m.id): m for m in before}
    diff = PlanDiff(renamed=dict(renamed))
    diff.added = [m.id for m in after if m.id not in now_ids]
    diff.dropped = [m.id for m in before if renamed.get(m.id, m.id) not in planned]
    for m in after:
        old = now_ids.get(m.id)
        if old is not None and old.is_open and m.is_open and old.due_at != m.due_at:
            diff.redated.append((m.id, old.due_at, m.due_at))
    return diff


def migrate(
    o: Onboarding, migration: PlaybookMigration, now: datetime, keep_times: KeepTimes
) -> tuple[Onboarding, Changes]:
    """Move the onboarding to `migration.playbook` at `now` (checked by `check`): the
    plan rebuilt for its tier with `migrated_plan` (earned credit kept, mapped milestones
    carried over, open deadlines per the new plan from closed-won shifted by pauses;
    provisional until a success plan is confirmed, a confirmed one's target dates kept);
    ladder steps already done stay done, and the new ladder's steps already due are
    recorded, not fired (as a tier change's are, rules §4); product events seen count
    towards the new plan's milestones. Returns the onboarding on the new playbook and
    the changes, audited `playbook_migrated`."""
    p, deal, new = o.progress, o.deal, migration.playbook
    moved = Onboarding(deal, new, p)
    renamed = renamed_ids(o, migration)
    before = [replace(m) for m in p.milestones]
    plan = rules.migrated_plan(
        new, p.milestones, p.tier, p.clock_start, renamed, deal.deal_type, deal.products,
        moved.calendar,
    )  # fmt: skip
    confirmed = p.success_plan
    plan = rules.mark_provisional(new, plan, p.tier, confirmed is not None)
    if confirmed is not None and confirmed.target_dates:
        targets = {renamed.get(i, i): at for i, at in confirmed.target_dates.items()}
        open_ids = {m.id for m in plan if m.is_open}
        kept = {i: at for i, at in targets.items() if i in open_ids and at > now}
        unconfirmed = rules.mark_provisional(new, plan, p.tier, False)
        plan = rules.rebase_on_success_plan(unconfirmed, kept, now) if kept else plan
        confirmed.target_dates = targets
    p.milestones = plan
    for check_ in p.skip_checks:
        check_.milestone_id = renamed.get(check_.milestone_id, check_.milestone_id)
    products.hold_again(p)
    out = Changes()
    credit_observed_events(moved, out, now, keep_times)
    supersede_passed(moved, now)
    diff = plan_diff(before, p.milestones, renamed, planned_ids(moved, new))
    what = "; ".join(diff.lines()) or "the plan is unchanged"
    out.log(
        now,
        "playbook_migrated",
        f"{playbook_text(o.playbook)} -> {playbook_text(new)}: {what}; {migration.reason}",
        migration.by,
    )
    return moved, out

"""A multi-product deal's staggered rollout (rules §6.2 (docs/rules.md)): one master
plan, each product's own copy of the playbook's per-product gates, and at each of a
product's phase gates the decision whether it may go on or waits for its predecessors'
adoption (active users over licensed seats) to reach `[products].adoption_threshold`.
A waiting product's deadlines do not run; when it is released they are re-based on that
moment. The CSM is told once when a product starts waiting and once when it goes on
(`[products].waiting_template`, `.released_template`). A deal without products has no
gate: none of this applies to it."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Literal

from workflows import event_mapping
from workflows.formats import day_text
from workflows.models import (
    PHASE_ORDER,
    Audience,
    ClosedWonDeal,
    DealProduct,
    Milestone,
    OnboardingProgress,
    Phase,
    ProductEvent,
    ProductFacts,
    ProductGate,
    product_dependencies,
)
from workflows.progress import facts
from workflows.progress.changes import Changes, Onboarding, notify

# --------------------------------------------------------------------------- facts


def count(
    p: OnboardingProgress,
    deal: ClosedWonDeal,
    event: ProductEvent,
    now: datetime,
    keep: dict[str, int],
) -> None:
    """An event naming one of the deal's products counts for that product too: its name
    and time (as `facts.count` keeps them), and its user as an active user, kept up to
    the product's licensed seats (so the state stays bounded). Other events: nothing."""
    product = next((x for x in deal.products if x.id == event.product), None)
    if product is None:
        return
    f = p.products.setdefault(product.id, ProductFacts())
    facts.count(f, event, now, keep)
    if event.user_id and len(f.users) < product.licensed_seats:
        user = user_key(event.user_id)
        if user not in f.users:
            f.users.append(user)


def unknown_product(deal: ClosedWonDeal, event: ProductEvent) -> str | None:
    """Why `event` counts for no product although it names one: the deal sells no such
    product (a typo, or a product bought elsewhere). None when it names none or one of
    the deal's. The event still counts for the account."""
    if event.product is None or not deal.products:
        return None
    if any(x.id == event.product for x in deal.products):
        return None
    sold = ", ".join(x.id for x in deal.products)
    return (
        f"product {event.product!r} is not one of the deal's products ({sold}): "
        "counted for the account, not for a product"
    )


def user_key(user_id: str) -> str:
    """A user as a product's facts keep it: 16 hex digits of its SHA-256, whatever its
    length (64 bits: two of a product's at most `MAX_PRODUCT_SEATS` users share one with
    odds under 1e-13), so the users of every product stay small at continue-as-new."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:16]


def of_product(
    p: OnboardingProgress, product_id: str
) -> tuple[dict[str, int], dict[str, list[datetime]]]:
    """The event counts and times one product's own events made (empty before any)."""
    f = p.products.get(product_id, ProductFacts())
    return f.event_counts, f.event_times


def adoption(product: DealProduct, active_users: int) -> float:
    """Active users over licensed seats, 0..1 (rules §6.2)."""
    return min(active_users / product.licensed_seats, 1.0)


def adoptions(deal: ClosedWonDeal, p: OnboardingProgress) -> dict[str, float]:
    """Each product's adoption now, by id, in the deal's order."""
    return {
        x.id: adoption(x, len(p.products.get(x.id, ProductFacts()).users)) for x in deal.products
    }


def may_go_on(predecessors: Mapping[str, float], threshold: float) -> bool:
    """A product passes a phase gate when every predecessor's adoption (id -> 0..1) has
    reached `threshold`; one without predecessors always does."""
    return all(a >= threshold for a in predecessors.values())


def hold(milestones: list[Milestone], product: str, phase: Phase) -> list[Milestone]:
    """The plan with `product`'s open gates from `phase` on held: their deadlines do not
    run (no overdue step, no health debit) until the product is released."""
    first = PHASE_ORDER.index(phase)
    return [
        replace(m, held=True)
        if m.product == product and m.is_open and PHASE_ORDER.index(m.phase) >= first
        else m
        for m in milestones
    ]


def release(milestones: list[Milestone], product: str, now: datetime) -> list[Milestone]:
    """The plan once `product` is released at `now`: its held phase starts now, so each
    held open gate moves by (now - the planned start of the earliest held phase), at
    least zero, keeping the plan's spacing; a moved deadline is a new revision (a fresh
    overdue step). Gates done while held keep their flag (they count as on time)."""
    held = [m for m in milestones if m.product == product and m.held and m.is_open]
    if not held:
        return milestones
    shift = max(now - min(m.starts_at for m in held), timedelta(0))
    moved = {m.id for m in held}
    return [
        replace(
            m,
            held=False,
            starts_at=m.starts_at + shift,
            due_at=m.due_at + shift,
            revision=m.revision + bool(shift),
        )
        if m.id in moved
        else m
        for m in milestones
    ]


# --------------------------------------------------------------------------- the gates


def _percent(share: float) -> str:
    return f"{share * 100:.0f}%"


def adoption_text(predecessors: Mapping[str, float], threshold: float) -> str:
    """`crm adoption 50% (threshold 60%)`; several predecessors joined by commas."""
    shares = ", ".join(f"{pid} adoption {_percent(a)}" for pid, a in predecessors.items())
    return f"{shares} (threshold {_percent(threshold)})"


def next_gate(o: Onboarding) -> tuple[datetime, str, Phase] | None:
    """The earliest phase gate not decided yet: (when, product id, phase). A product
    with predecessors has a gate at the planned start of each phase holding an open gate
    of its own; one that waits has no later gate until it is released."""
    p, found = o.progress, None
    deps = product_dependencies(o.deal.products)
    for product in o.deal.products:
        gates = [g for g in p.product_gates if g.product == product.id]
        if not deps[product.id] or any(g.waiting for g in gates):
            continue
        decided = {g.phase for g in gates}
        mine = [m for m in p.milestones if m.product == product.id and m.is_open]
        phases = sorted({m.phase for m in mine} - decided, key=PHASE_ORDER.index)
        if not phases:
            continue
        at = min(m.starts_at for m in mine if m.phase is phases[0])
        if found is None or at < found[0]:
            found = (at, product.id, phases[0])
    return found


def check_gates(o: Onboarding, out: Changes, now: datetime) -> None:
    """Release every waiting product whose predecessors' adoption has reached the
    threshold, then decide every phase gate due by `now`, in the order they came due.
    Nothing while paused (its clocks stand still). The CSM is told once when a product
    starts waiting and once when it goes on (`tell_csm`)."""
    p = o.progress
    if not o.deal.products or p.pause is not None:
        return
    deps = product_dependencies(o.deal.products)
    threshold = o.playbook.products.adoption_threshold
    names = {x.id: x.name for x in o.deal.products}
    for g in p.product_gates:
        now_adopted = {d: a for d, a in adoptions(o.deal, p).items() if d in deps[g.product]}
        if g.waiting and may_go_on(now_adopted, threshold):
            g.released_at = now
            p.milestones = release(p.milestones, g.product, now)
            waited = (now - g.decided_at).days
            detail = f"{names[g.product]} goes on after {waited} days at the {g.phase.value} gate"
            why = adoption_text(now_adopted, threshold)
            out.log(now, "product_released", f"{detail}: {why}")
            tell_csm(o, out, g, "released", {"reason": why, "days": str(waited)})
    while (gate := next_gate(o)) is not None and gate[0] <= now:
        at, product, phase = gate
        adopted = {d: a for d, a in adoptions(o.deal, p).items() if d in deps[product]}
        passes = may_go_on(adopted, threshold)
        p.product_gates.append(
            ProductGate(
                product=product,
                phase=phase,
                gate_at=at,
                decided_at=now,
                adoption=adopted,
                threshold=threshold,
                outcome="passed" if passes else "held",
            )
        )
        why = adoption_text(adopted, threshold)
        if passes:
            out.log(now, "product_gate_passed", f"{names[product]} {phase.value}: {why}")
        else:
            p.milestones = hold(p.milestones, product, phase)
            out.log(now, "product_held", f"{names[product]} waits at {phase.value}: {why}")
            tell_csm(o, out, p.product_gates[-1], "waiting", {"reason": why})


def tell_csm(
    o: Onboarding,
    out: Changes,
    gate: ProductGate,
    what: Literal["waiting", "released"],
    variables: dict[str, str],
) -> None:
    """The CSM (the owner) is told that `gate`'s product starts waiting, or goes on, with
    `[products].waiting_template` / `.released_template`; nothing without the template
    (playbooks pinned before them). `$product` and `$gate` name the product and the phase;
    `$milestone` and `$due` are its first open gate. Each gate is decided once and
    released once, so the trigger `product-<id>-<phase>-<what>` is sent once."""
    rollout = o.playbook.products
    template = rollout.waiting_template if what == "waiting" else rollout.released_template
    if template is None:
        return
    name = next(x.name for x in o.deal.products if x.id == gate.product)
    mine = [m for m in o.progress.milestones if m.product == gate.product and m.is_open]
    about = min(mine, key=lambda m: m.due_at, default=None)
    trigger = f"product-{gate.product}-{gate.phase.value}-{what}"
    extra = {"product": name, "gate": gate.phase.value}
    notify(o, out, trigger, Audience.CSM, template, variables | extra, about=about)


def hold_again(p: OnboardingProgress) -> None:
    """After a re-plan (a tier change), the products still waiting are held again."""
    for g in p.product_gates:
        if g.waiting:
            p.milestones = hold(p.milestones, g.product, g.phase)


def adoption_events(o: Onboarding) -> frozenset[str]:
    """The event names the ingress must let through for adoption: while a product waits
    or has a phase gate ahead, every name the playbook knows (its predecessors' users
    count in any of them, after the gates they complete are done); otherwise none."""
    p = o.progress
    if any(g.waiting for g in p.product_gates) or next_gate(o) is not None:
        return event_mapping.event_names(o.playbook)
    return frozenset()


def next_gate_wake(o: Onboarding) -> tuple[datetime, str] | None:
    """When the loop must wake for the next phase gate, and why (the timer's summary)."""
    gate = next_gate(o)
    if gate is None:
        return None
    at, product, phase = gate
    name = next(x.name for x in o.deal.products if x.id == product)
    return at, f"Product gate: {name} {phase.value} on {day_text(at)}"

"""An expansion of an account whose earlier onboarding ran here, and a trial converted to
paid (rules §2 (docs/rules.md), *Tracks besides new business*): when a deal starts the
account's next onboarding, what the running onboarding keeps of an expansion deal until
it finishes, and how a running trial ends when the customer converts.

The account has one workflow id (`onboarding-<account_id>`); its onboardings are that
id's runs, one after another, each counted (`onboarding_number`) and each knowing the
CRM deals of the earlier ones (`earlier_deals`). A deal is told from another by its CRM
deal key, `source:deal_id`: a deal without a deal id cannot be told from a redelivery.
"""

from __future__ import annotations

from datetime import datetime

from workflows import rules
from workflows.formats import day_text
from workflows.models import (
    CancelRequest,
    ClosedWonDeal,
    DealDelivery,
    DealType,
    OnboardingInput,
    OnboardingProgress,
    OnboardingStatus,
    QueuedDeal,
    QueuedDealView,
)
from workflows.progress.changes import Changes, Onboarding
from workflows.progress.lifecycle import cancel


def deal_key(deal: ClosedWonDeal) -> str | None:
    """The deal's CRM key, `source:deal_id` (`hubspot:9100000007`); None without a deal id."""
    return f"{deal.crm.source}:{deal.crm.deal_id}" if deal.crm.deal_id else None


def deals_onboarded(p: OnboardingProgress, deal: ClosedWonDeal) -> list[str]:
    """The CRM deal keys of the account's onboardings here: the earlier ones', then this
    one's (when its deal has a deal id)."""
    key = deal_key(deal)
    return [*p.earlier_deals, key] if key else list(p.earlier_deals)


def follows(deal: ClosedWonDeal, finished: DealType) -> bool:
    """Whether a deal of `deal`'s type may start the account's next onboarding after one
    of type `finished`: an expansion after any, and a paid deal (any type but trial)
    after a trial, its conversion. Any other deal never starts another onboarding."""
    if deal.deal_type is DealType.EXPANSION:
        return True
    return finished is DealType.TRIAL and deal.deal_type is not DealType.TRIAL


def why_not_again(deal: ClosedWonDeal, finished: OnboardingStatus) -> str | None:
    """None when `deal`, one that `follows` the account's last onboarding `finished`
    (completed or cancelled: that run's result), starts the account's next onboarding;
    else why it does not.

    Only a deal with a deal id that no onboarding of the account had starts one. A result
    from before deal keys were kept (`deals_onboarded` empty) names no deal: its deal
    could only be this one if it was an expansion too, so an expansion after an
    expansion onboarded then is refused rather than onboarded twice."""
    key = deal_key(deal)
    if key is None:
        kind = "a paid" if finished.deal_type is DealType.TRIAL else "an expansion"
        return (
            f"{kind} deal without a CRM deal id (crm.deal_id) cannot be told from "
            "the deal already onboarded"
        )
    if key in finished.deals_onboarded:
        return f"deal {key} was onboarded already"
    if not finished.deals_onboarded and finished.deal_type is DealType.EXPANSION:
        return (
            "the earlier onboarding was an expansion whose deal id was not kept, so "
            f"deal {key} may be that one"
        )
    return None


def started_text(after: DealType, number: int, ended: str, decision: str) -> str:
    """The answer to a deal that started the account's `number`-th onboarding after one
    of type `after`, which `ended` (completed, cancelled, converted to paid); `decision`
    is the tier and why."""
    if after is DealType.TRIAL:
        return (
            f"paid onboarding started after the trial, the account's onboarding {number} "
            f"here; the trial {ended} ({decision})"
        )
    return (
        f"expansion onboarding started, the account's onboarding {number} here; the "
        f"earlier one {ended} ({decision})"
    )


def next_number(finished: OnboardingStatus) -> tuple[int, list[str]]:
    """The number and the earlier deals of the onboarding that follows `finished`."""
    return finished.onboarding_number + 1, finished.deals_onboarded


def another_expansion(o: Onboarding, deal: ClosedWonDeal) -> bool:
    """Whether `deal`, delivered to the running onboarding `o`, is an expansion deal of
    its own: an expansion with a deal id that is neither `o`'s deal nor an earlier
    onboarding's. Such a deal waits for `o` to finish (`queue`); any other deal leaves
    `o` as it is."""
    key = deal_key(deal)
    return (
        deal.deal_type is DealType.EXPANSION
        and key is not None
        and key not in deals_onboarded(o.progress, o.deal)
    )


def converts(o: Onboarding, deal: ClosedWonDeal) -> bool:
    """Whether `deal`, delivered to the running onboarding `o`, converts its trial to
    paid: `o` is a trial's and `deal` a paid deal (any type but trial) with a deal id no
    onboarding of the account had, the one `o` converted to if it did already (a
    redelivery: `convert` changes nothing then). Such a deal ends the trial at once
    (`convert`); any other deal is answered as for any running onboarding."""
    key, p = deal_key(deal), o.progress
    return (
        o.deal.deal_type is DealType.TRIAL
        and deal.deal_type is not DealType.TRIAL
        and key is not None
        and key not in deals_onboarded(p, o.deal)
        and p.converted_to in (None, key)
    )


def convert(o: Onboarding, delivery: DealDelivery, now: datetime) -> tuple[str, Changes]:
    """The customer of the trial `o` converted to paid with `delivery`'s deal (`converts`):
    the trial, still running, ends at once, cancelled with the reason `converted to
    paid: deal <key>` (audit `cancelled`, then `trial_converted`), and keeps the key
    (`converted_to`); the deal goes first in the queue, so the finished trial continues
    as the paid deal's onboarding right away (`next_onboarding`), on its own closed-won
    date. A trial that finished already (its run ending) only queues it. Returns the
    answer's detail; a redelivery gets the same detail and changes nothing."""
    deal, p, out = delivery.deal, o.progress, Changes()
    key = deal_key(deal)
    if p.converted_to is None and all(deal_key(q.deal) != key for q in p.queued_deals):
        by = f"{deal.crm.source} deal {deal.crm.deal_id}"
        if p.finished_at is None:
            out = cancel(p, CancelRequest(by=by, reason=f"converted to paid: deal {key}"), now)
            p.converted_to = key
            out.log(now, "trial_converted", f"deal {key}: its paid onboarding starts now", by)
        queued = QueuedDeal(
            deal=deal, playbook=delivery.playbook, delivery_id=delivery.delivery_id, queued_at=now
        )
        p.queued_deals.insert(0, queued)
    decision = rules.decide_tier(deal, delivery.playbook)
    if p.converted_to == key:
        ended = "converted to paid"
    else:
        ended = "cancelled" if p.cancelled is not None else "completed"
    detail = started_text(
        DealType.TRIAL,
        p.onboarding_number + 1,
        ended,
        f"{decision.tier.value}: {decision.reason}",
    )
    return detail, out


def queue(o: Onboarding, delivery: DealDelivery, now: datetime) -> tuple[str, Changes]:
    """Keep `delivery`'s expansion deal (`another_expansion`) until `o` finishes, with
    the audit entry `expansion_queued`; the answer's detail. A deal already queued (a
    redelivery) is not queued again: the same detail, no change."""
    deal, p, out = delivery.deal, o.progress, Changes()
    key = deal_key(deal)
    queued = next((q for q in p.queued_deals if deal_key(q.deal) == key), None)
    if queued is None:
        queued = QueuedDeal(
            deal=deal, playbook=delivery.playbook, delivery_id=delivery.delivery_id, queued_at=now
        )
        p.queued_deals.append(queued)
        out.log(
            now,
            "expansion_queued",
            f"expansion deal {key}: its onboarding starts when this one finishes",
            f"{deal.crm.source} deal {deal.crm.deal_id}",
        )
    detail = (
        f"expansion deal {key} queued on {day_text(queued.queued_at)}: its onboarding "
        "starts when the running one finishes"
    )
    return detail, out


def queued_views(p: OnboardingProgress) -> list[QueuedDealView]:
    """The queued expansion deals, as the status shows them."""
    return [
        QueuedDealView(
            deal=deal_key(q.deal) or "", account_name=q.deal.account_name, queued_at=q.queued_at
        )
        for q in p.queued_deals
    ]


def follow(
    p: OnboardingProgress,
    number: int,
    earlier: list[str],
    queued: list[QueuedDeal],
    now: datetime,
) -> Changes:
    """A begun onboarding takes its place among the account's: its number, the earlier
    onboardings' deals and the expansion deals still queued behind it; the account's
    second and later onboardings say so in the audit (`earlier_onboardings`)."""
    p.onboarding_number, p.earlier_deals, p.queued_deals = number, list(earlier), list(queued)
    out = Changes()
    if number > 1:
        deals = ", ".join(earlier) or "not kept"
        out.log(
            now,
            "earlier_onboardings",
            f"onboarding {number} of the account; earlier deals: {deals}",
        )
    return out


def next_onboarding(
    o: Onboarding, deal_wait_days: int, max_history_events: int
) -> OnboardingInput | None:
    """The input of the onboarding of the first queued deal (an expansion, or the paid
    deal a trial converted to), which the finished onboarding `o` continues as (the rest
    stay queued behind it); None when none waits."""
    p = o.progress
    if not p.queued_deals:
        return None
    first, *rest = p.queued_deals
    return OnboardingInput(
        deal=first.deal,
        playbook=first.playbook,
        delivery_id=first.delivery_id,
        deal_wait_days=deal_wait_days,
        max_history_events=max_history_events,
        onboarding_number=p.onboarding_number + 1,
        earlier_deals=deals_onboarded(p, o.deal),
        queued_deals=rest,
    )

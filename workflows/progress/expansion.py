"""An expansion of an account whose earlier onboarding ran here (rules §2 (docs/rules.md),
*Tracks besides new business*): when a deal starts the account's next onboarding, and
what the running onboarding keeps of an expansion deal until it finishes.

The account has one workflow id (`onboarding-<account_id>`); its onboardings are that
id's runs, one after another, each counted (`onboarding_number`) and each knowing the
CRM deals of the earlier ones (`earlier_deals`). A deal is told from another by its CRM
deal key, `source:deal_id`: a deal without a deal id cannot be told from a redelivery.
"""

from __future__ import annotations

from datetime import datetime

from workflows.formats import day_text
from workflows.models import (
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


def deal_key(deal: ClosedWonDeal) -> str | None:
    """The deal's CRM key, `source:deal_id` (`hubspot:9100000007`); None without a deal id."""
    return f"{deal.crm.source}:{deal.crm.deal_id}" if deal.crm.deal_id else None


def deals_onboarded(p: OnboardingProgress, deal: ClosedWonDeal) -> list[str]:
    """The CRM deal keys of the account's onboardings here: the earlier ones', then this
    one's (when its deal has a deal id)."""
    key = deal_key(deal)
    return [*p.earlier_deals, key] if key else list(p.earlier_deals)


def why_not_again(deal: ClosedWonDeal, finished: OnboardingStatus) -> str | None:
    """None when the expansion deal `deal` starts the account's next onboarding after its
    last one, `finished` (completed or cancelled: that run's result); else why it does
    not. Any other deal type never starts another onboarding.

    Only a deal with a deal id that no onboarding of the account had starts one. A result
    from before deal keys were kept (`deals_onboarded` empty) names no deal: its deal
    could only be this one if it was an expansion too, so an expansion after an
    expansion onboarded then is refused rather than onboarded twice."""
    key = deal_key(deal)
    if key is None:
        return (
            "an expansion deal without a CRM deal id (crm.deal_id) cannot be told from "
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
    """The input of the onboarding of the first queued expansion deal, which the finished
    onboarding `o` continues as (the rest stay queued behind it); None when none waits."""
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

"""The Prometheus counters of the HTTP ingress."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics

disable_created_metrics()  # `*_created` series only add noise to counters scraped here


class Metrics:
    """The ingress's own Prometheus metrics (the SDK's are appended on /metrics)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "onboarding_ingress_requests",
            "HTTP requests by route and status code",
            ["route", "status"],
            registry=registry,
        )
        self.rejections = Counter(
            "onboarding_ingress_rejections",
            "Requests refused, by route and reason",
            ["route", "reason"],
            registry=registry,
        )
        self.starts = Counter(
            "onboarding_ingress_onboardings_started",
            "Onboardings started by a delivered deal, by CRM",
            ["source"],
            registry=registry,
        )
        self.deliveries = Counter(
            "onboarding_ingress_deals",
            "Closed-won deals delivered, by CRM and outcome",
            ["source", "outcome"],
            registry=registry,
        )
        self.lost = Counter(
            "onboarding_ingress_deals_lost",
            "Closed-lost deals received, by CRM and outcome (applied / no_onboarding)",
            ["source", "outcome"],
            registry=registry,
        )
        self.signals = Counter(
            "onboarding_ingress_signals",
            "product_events signals sent to onboardings",
            registry=registry,
        )
        self.events = Counter(
            "onboarding_ingress_events",
            "Product events received, by outcome",
            ["outcome"],
            registry=registry,
        )
        self.champions = Counter(
            "onboarding_ingress_champion_changes",
            "New champions reported by a CRM, by CRM and outcome (applied / not_applied)",
            ["source", "outcome"],
            registry=registry,
        )

"""rules §1 (docs/rules.md): tier assignment at closed-won, clause by clause, with the
default thresholds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from workflows.models import ClosedWonDeal, Tier, TierRule
from workflows.playbook import load_playbook
from workflows.rules import assign_tier

RULE = load_playbook().tier_rule
HIGH, TECH, SELF = Tier.HIGH_TOUCH, Tier.TECH_TOUCH, Tier.SELF_SERVE


def deal(**overrides: Any) -> ClosedWonDeal:
    """A plain mid-market deal (tech_touch by default) with the given facts changed."""
    fields: dict[str, Any] = {
        "account_id": "acme",
        "account_name": "Acme",
        "acv_usd": 20_000,
        "close_date": datetime(2026, 1, 1, tzinfo=UTC),
        **overrides,
    }
    return ClosedWonDeal(**fields)


@pytest.mark.parametrize(
    ("facts", "tier", "clause", "reason_has"),
    [
        # high_touch: ANY clause
        ({"acv_usd": 50_000}, HIGH, "high_touch.acv", "$50,000"),
        ({"acv_usd": 250_000}, HIGH, "high_touch.acv", "$250,000"),
        ({"acv_usd": 49_999.99}, TECH, "tech_touch.all", "no custom integration"),
        ({"needs_api_integration": True}, HIGH, "high_touch.api_integration", "API integration"),
        (
            {"acv_usd": 1_000, "needs_api_integration": True},
            HIGH,
            "high_touch.api_integration",
            "API",
        ),
        ({"custom_data_migration": True}, HIGH, "high_touch.data_migration", "data migration"),
        ({"stakeholder_count": 3}, HIGH, "high_touch.stakeholders", "3 stakeholders"),
        ({"stakeholder_count": 2}, TECH, "tech_touch.all", "$20,000"),
        ({"configuration_hours": 2.5}, HIGH, "high_touch.configuration_hours", "2.5 h"),
        # 2 h is not "> 2 h", but it is not "< 2 h" either: tech_touch band -> next tier up
        ({"configuration_hours": 2}, HIGH, "next_tier_up", "setup 2 h is not under 2 h"),
        ({"configuration_hours": 1.5}, TECH, "tech_touch.all", "setup 1.5 h"),
        # tech_touch band: SMB floor <= ACV < enterprise threshold
        ({"acv_usd": 5_000}, TECH, "tech_touch.all", "$5,000"),
        ({"acv_usd": 5_000, "integrations": ["slack"]}, TECH, "tech_touch.all", "$5,000"),
        # self_serve: ALL of ACV < floor, no configuration, no integrations
        ({"acv_usd": 4_000}, SELF, "self_serve.all", "$4,000 < $5,000"),
        ({"acv_usd": 0}, SELF, "self_serve.all", "no integrations"),
        # self_serve band, but does not fit: next tier up is tech_touch
        ({"acv_usd": 4_000, "integrations": ["slack"]}, TECH, "next_tier_up", "slack"),
        ({"acv_usd": 4_000, "configuration_hours": 1}, TECH, "next_tier_up", "1 h of config"),
        # ... unless a high_touch clause fires first
        (
            {"acv_usd": 4_000, "configuration_hours": 3},
            HIGH,
            "high_touch.configuration_hours",
            "3 h",
        ),
    ],
)
def test_tier_rule_table(facts: dict[str, Any], tier: Tier, clause: str, reason_has: str) -> None:
    decision = assign_tier(deal(**facts), RULE)
    assert (decision.tier, decision.clause) == (tier, clause)
    assert reason_has in decision.reason


def test_next_tier_up_reason_names_band_and_result() -> None:
    decision = assign_tier(deal(acv_usd=4_000, integrations=["slack", "gmail"]), RULE)
    assert "self_serve band" in decision.reason
    assert "slack, gmail" in decision.reason
    assert decision.reason.endswith("next tier up, tech_touch")


def test_reason_does_not_round_acv_onto_the_threshold() -> None:
    decision = assign_tier(deal(acv_usd=49_999.99), RULE)
    assert decision.tier is TECH
    assert "$49,999.99" in decision.reason


def test_thresholds_come_from_the_playbook() -> None:
    strict = TierRule(
        enterprise_acv_usd=30_000,
        smb_floor_acv_usd=10_000,
        high_touch_min_stakeholders=5,
        high_touch_config_hours_over=4,
        tech_touch_setup_hours_under=4,
    )
    cases = [  # facts, tier under the default rule, tier under `strict`
        ({"acv_usd": 30_000}, TECH, HIGH),
        ({"acv_usd": 8_000}, TECH, SELF),
        ({"stakeholder_count": 4}, HIGH, TECH),
        ({"configuration_hours": 3}, HIGH, TECH),
    ]
    for facts, default_tier, strict_tier in cases:
        assert assign_tier(deal(**facts), RULE).tier is default_tier, facts
        assert assign_tier(deal(**facts), strict).tier is strict_tier, facts
    assert "$30,000" in assign_tier(deal(acv_usd=30_000), strict).reason

"""The cohort a simulation runs: closed-won deals from a file, read as `onboarding import`
reads it (`starter.bulk`: our columns or a CRM export's), or a sample made from the seed.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

from starter import bulk
from workflows.models import ClosedWonDeal, Playbook

DAY = timedelta(days=1)
# A sample's deals close over this many days from its start.
SAMPLE_SPREAD_DAYS = 28


class CohortError(ValueError):
    """A cohort file that cannot be simulated: the file, or its bad rows by line."""


def read_cohort(path: Path, playbook: Playbook) -> list[ClosedWonDeal]:
    """The closed-won deals of a `.csv` or `.jsonl` file (rows that are not closed-won
    are left out). `CohortError` names the file's problem, or every bad row's line,
    column and reason, as `onboarding import --dry-run` would."""
    try:
        rows = bulk.read_file(path, playbook).rows
    except bulk.ImportFileError as exc:
        raise CohortError(str(exc)) from None
    bad = [f"line {r.line}: {r.deal}" for r in rows if isinstance(r.deal, bulk.RowError)]
    if bad:
        raise CohortError(f"{path}: " + "; ".join(bad))
    deals = [r.deal for r in rows if isinstance(r.deal, ClosedWonDeal)]
    if not deals:
        raise CohortError(f"{path}: no closed-won deal in it")
    return deals


def sample_cohort(n: int, seed: int, start: datetime, playbook: Playbook) -> list[ClosedWonDeal]:
    """`n` deals made from `seed`, closing over `SAMPLE_SPREAD_DAYS` days from `start`:
    ACVs spread across the tier rule's thresholds (about 35% under the SMB floor, 45%
    between, 20% at or over the enterprise threshold), some API integrations, custom
    migrations, stakeholders and configuration hours; 70% with success criteria, half
    with an executive sponsor. The same `n`, `seed`, `start` and playbook give the same
    deals."""
    rng = random.Random(f"sample:{seed}")
    rule = playbook.tier_rule
    deals = []
    for i in range(n):
        band = rng.random()
        if band < 0.35:
            acv = rng.uniform(0.2, 1.0) * rule.smb_floor_acv_usd
        elif band < 0.8:
            acv = rng.uniform(rule.smb_floor_acv_usd, rule.enterprise_acv_usd)
        else:
            acv = rng.uniform(1.0, 3.0) * rule.enterprise_acv_usd
        contacts = [{"name": "Cara Champion", "email": f"cara@a{i}.test", "role": "champion"}]
        if rng.random() < 0.5:
            contacts.append(
                {"name": "Sam Sponsor", "email": f"sam@a{i}.test", "role": "executive_sponsor"}
            )
        deal = {
            "account_id": f"sim-{seed}-{i:05d}",
            "account_name": f"Sample account {i + 1}",
            "acv_usd": round(acv, -2),
            "close_date": start + rng.uniform(0, SAMPLE_SPREAD_DAYS) * DAY,
            "needs_api_integration": rng.random() < 0.08,
            "custom_data_migration": rng.random() < 0.05,
            "stakeholder_count": rng.choice((1, 1, 1, 1, 2, 2, 2, 3)),
            "configuration_hours": rng.choice((0, 0, 0, 0, 0, 1, 1.5, 3)),
            "integrations": ["slack"] if rng.random() < 0.15 else [],
            "contacts": contacts,
            "success_criteria": ["10 invoices processed weekly"] if rng.random() < 0.7 else [],
        }
        deals.append(ClosedWonDeal.model_validate(deal))
    return deals

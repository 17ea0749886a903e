"""Every recorded history replays against the current workflow code.

`tests/histories/<version>/` holds real histories of the workflow-test scenarios (each
tier to handoff, escalations, tier changes, pause/resume, events before the deal,
continue-as-new), recorded with `make histories` when that version of the workflow code
was current. A change that would break an onboarding already in flight fails here with
the SDK's non-determinism error: guard it with `workflow.patched()` (see the README).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from activities.converter import CONVERTER
from tests.support.histories import HISTORIES
from workflows.intake import HubSpotDealIntake
from workflows.onboarding import AccountOnboarding

RECORDED = sorted(HISTORIES.glob("*/*.json.gz"))


def test_histories_are_recorded_for_every_kind_of_scenario() -> None:
    names = " ".join(p.name for p in RECORDED)
    for scenario in (
        "happy_path_reaches_handoff",  # each tier to handoff
        "every_ladder_step_fires",  # escalations
        "upgrades",  # automatic tier change
        "override",  # tier override
        "pause",  # pause / resume
        "wait_for_the_deal",  # events before the deal
        "continues_as_new",  # several runs
        "credited_on_time",  # product events dated when they happened (v2 and v3)
        "deal_lost",  # a lost deal cancels or flags
        "window_lapses",  # a champion's re-alignment window (v4 on)
        "re_opens_the_skip",  # the skip safety net
        "waits_at_the_pilot_gate",  # a product held by its predecessor's adoption
        "wait_for_the_success_plan",  # provisional high-touch deadlines
        "win_back",  # tracks
        "usage_drop",  # behavioral triggers
        "celebrations_and_news",  # a pause holds nudges only
        "running_onboarding_waits",  # an expansion queued, then continued as new (v5 on)
        "weekend_and_a_holiday",  # business calendars and the handoff SLAs
        "first_value_by_roles",  # activation by role
        "7th_day_after_the_first",  # first-week retention
        "converted_to_paid",  # a running trial converted, then continued as new (v6 on)
        "runs_automated_only",  # the trial track
        "moves_to_the_new_version",  # a playbook migration
        "health_alerts_at_the_deadlines",  # health-band alerts (v7 on)
    ):
        assert scenario in names, f"no recorded history for {scenario}"


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.name, gzip.decompress(path.read_bytes()).decode())


@pytest.mark.parametrize(
    "path", RECORDED, ids=[f"{p.parent.name}/{p.name.removesuffix('.json.gz')}" for p in RECORDED]
)
async def test_history_replays_against_current_code(path: Path) -> None:
    replayer = Replayer(workflows=[AccountOnboarding, HubSpotDealIntake], data_converter=CONVERTER)
    await replayer.replay_workflow(load(path))

"""HubSpot's deal pipelines say which stages are closed-won and closed-lost: read from the
pipelines API (the fake CRM API here), cached, and read again when old or missing a stage.
"""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError

from activities.crm import PIPELINES_PATH, PIPELINES_TTL_S, HubSpotStages
from activities.hubspot_records import hubspot_pipeline_stages
from activities.settings import SharedSettings
from tests.support.fake_crm import (
    ENTERPRISE,
    HUBSPOT_DEFAULT_PIPELINE,
    FakeCrmApi,
)
from workflows.models import DealStage


def test_pipelines_say_which_stages_are_won_and_lost() -> None:
    stages = hubspot_pipeline_stages({"results": [HUBSPOT_DEFAULT_PIPELINE, ENTERPRISE]})
    meaning = {stage: m.meaning for stage, m in stages.items()}
    assert meaning["closedwon"] is meaning["1187654321"] is DealStage.CLOSED_WON
    assert meaning["closedlost"] is meaning["1187654322"] is DealStage.CLOSED_LOST
    assert meaning["contractsent"] is meaning["1187654320"] is DealStage.OPEN


# --------------------------------------------------------------------------- the pipelines cache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_pipelines_are_cached_and_read_again_when_old_or_missing_a_stage() -> None:
    api = FakeCrmApi()
    clock = Clock()
    settings = SharedSettings(hubspot_api_url=api.url, hubspot_token="t")
    stages = HubSpotStages(settings, clock)
    reads = lambda: sum(r["path"] == PIPELINES_PATH for r in api.requests)  # noqa: E731
    try:
        assert (await stages.meanings(["closedwon"]))["closedwon"].meaning is DealStage.CLOSED_WON
        assert reads() == 0  # listed: nothing asked

        assert (await stages.meanings(["closedlost"]))["closedlost"].meaning is (
            DealStage.CLOSED_LOST
        )
        await stages.meanings(["contractsent"])
        assert reads() == 1  # cached

        api.hubspot_pipelines(ENTERPRISE)  # a pipeline added since
        assert (await stages.meanings(["1187654321"]))["1187654321"].meaning is (
            DealStage.CLOSED_WON
        )
        assert reads() == 2

        clock.now += PIPELINES_TTL_S + 1
        api.routes[PIPELINES_PATH] = (503, {})
        # HubSpot down: the stale read still answers for stages it knows...
        assert (await stages.meanings(["1187654322"]))["1187654322"].meaning is (
            DealStage.CLOSED_LOST
        )
        # ...and a stage it does not know cannot be told: retryable, never "ignored".
        with pytest.raises(ApplicationError) as err:
            await stages.meanings(["2000000001"])
        assert not err.value.non_retryable
    finally:
        api.close()


async def test_without_a_token_an_unlisted_stage_cannot_be_told() -> None:
    stages = HubSpotStages(SharedSettings(hubspot_token=None))
    assert (await stages.meanings(["closedwon"]))["closedwon"].meaning is DealStage.CLOSED_WON
    with pytest.raises(ApplicationError) as err:
        await stages.meanings(["1187654321"])
    assert "ONBOARDING_HUBSPOT_TOKEN" in err.value.message

"""`onboarding report` reads the records store only: with Temporal unreachable it prints the
portfolio report as tables, CSV or JSON, and the JSON holds the very numbers the report
computes from the store. A bad option is named; so is a store that is not there."""

from __future__ import annotations

import csv
import io
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from activities.records.store import RecordStore
from starter.cli import app
from starter.reports.flat import cells
from starter.reports.model import PortfolioReport
from starter.reports.portfolio import portfolio_report
from tests.support.records import DAY, make_record, milestone_view
from tests.support.temporal import BIN
from workflows.models import HealthBand, OnboardingState, Playbook, Tier


@pytest.fixture
def records_url(tmp_path: Path) -> str:
    """A store with a few onboardings, dated from today (the command's clock)."""
    url = f"sqlite:///{tmp_path / 'records.db'}"
    now = datetime.now(UTC)
    won, older = now - 20 * DAY, now - 75 * DAY
    store = RecordStore.open(url)
    for record in [
        make_record("301A", older, state=OnboardingState.COMPLETED, ttv_days=12),
        make_record(
            "301B",
            won,
            state=OnboardingState.AT_RISK,
            health_band=HealthBand.CRITICAL,
            risk_flags=["champion left"],
            milestones=[milestone_view("kickoff_call", won, 7)],
        ),
        make_record("301C", won, tier=Tier.HIGH_TOUCH, acv_usd=80_000),
    ]:
        store.save(record)
    store.close()
    return url


def report(url: str, *args: str) -> Result:
    # Nothing listens on port 1: the report must not need Temporal.
    env = {"ONBOARDING_RECORDS_URL": url, "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    return CliRunner().invoke(app, ["report", *args], env=env)


def test_json_is_the_report_the_store_gives(records_url: str, playbook: Playbook) -> None:
    result = report(records_url, "--format", "json")

    assert result.exit_code == 0, result.output
    printed = PortfolioReport.model_validate_json(result.stdout)
    store = RecordStore.open(records_url)
    try:
        assert printed == portfolio_report(store, playbook, printed.as_of)
    finally:
        store.close()
    assert printed.overall.onboardings == 3
    assert [a.account_id for a in printed.at_risk] == ["301B"]


def test_table_shows_each_figure_with_its_target_and_the_sections(records_url: str) -> None:
    result = report(records_url)

    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("Portfolio as of ")
    for line in ("By tier", "By cohort (closed-won month)", "Milestone drop-off", "At risk"):
        assert f"\n{line}" in text
    completion = next(x for x in text.splitlines() if x.strip().startswith("target"))
    assert "85-100%" in completion and "65-80%" in completion  # high_touch, tech_touch
    assert "champion left; overdue since" in text


def test_csv_is_one_line_per_group_with_the_json_numbers(records_url: str) -> None:
    result = report(records_url, "--format", "csv", "--tier", "tech_touch")
    same = report(records_url, "--format", "json", "--tier", "tech_touch")

    assert result.exit_code == 0, result.output
    lines = list(csv.DictReader(io.StringIO(result.stdout)))
    parsed = PortfolioReport.model_validate_json(same.stdout)
    # The two tech_touch onboardings closed 55 days apart: two cohorts, maybe one between.
    groups = ["all", "tier", *["cohort"] * len(parsed.by_cohort), "tier_cohort", "tier_cohort"]
    assert [line["group"] for line in lines] == groups
    assert {line["tier"] for line in lines} == {"tech_touch"}
    first = {k: v for k, v in lines[0].items() if k not in ("as_of", "playbook_version", "group")}
    assert first == {name: "" if v is None else str(v) for name, v in cells(parsed.overall)}
    assert first["onboardings"] == "2"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--cohort", "2031-13"], "'--cohort': '2031-13' is not a month (YYYY-MM)"),
        (["--tier", "gold"], "'--tier': 'gold' is not a tier (high_touch, tech_touch, self_serve)"),
        (["--format", "xml"], "'--format': 'xml' is not a format (table, csv, json)"),
    ],
)
def test_a_bad_option_is_named_and_exits_2(records_url: str, args: list[str], named: str) -> None:
    result = report(records_url, *args)

    assert result.exit_code == 2
    # (typer draws a box around the message; the console script prints one line)
    assert named in " ".join(re.sub("[│╭╮╰╯─]", " ", result.stderr).split())


def test_the_console_script_names_the_option_and_a_missing_store(tmp_path: Path) -> None:
    """As a user runs it: one error line and the exit code."""
    env = {"ONBOARDING_RECORDS_URL": f"sqlite:///{tmp_path / 'nowhere.db'}", "PATH": ""}

    def onboarding(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(BIN / "onboarding"), "report", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    bad = onboarding("--cohort", "May")
    assert bad.returncode == 2
    assert bad.stderr == (
        "error: onboarding report: Invalid value for '--cohort': 'May' is not a month (YYYY-MM)\n"
    )
    missing = onboarding()
    assert missing.returncode == 1
    assert f"no records store at {tmp_path / 'nowhere.db'}" in missing.stderr
    assert not (tmp_path / "nowhere.db").exists()  # not made up on the spot

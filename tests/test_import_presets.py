"""`onboarding import` takes CRM exports as they are downloaded: a HubSpot deals export, a
Salesforce opportunity report, or any file with `--column` mappings.

Reading is pure; the case export is also imported for real, through the CLI, against
the session's dev server and worker. Dates move with the clock, ids are fresh per run.
"""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from activities import Settings
from starter.bulk import (
    CsvOptions,
    ImportFileError,
    Row,
    Skipped,
    read_deals,
    read_file,
)
from starter.cli import app
from tests.support.fx import YEN
from workflows.models import ClosedWonDeal, DealType, Playbook

DATA = Path(__file__).parent / "data" / "real_world"
TODAY = datetime.now(UTC).date()


def us(day: date) -> str:
    return f"{day.month:02d}/{day.day:02d}/{day.year}"


def hubspot_export(tmp_path: Path) -> tuple[Path, list[str]]:
    """The case export as downloaded (BOM, CRLF), closed today and two days ago, for two
    companies no other test uses."""
    companies = [str(random.randrange(10**10, 10**11)) for _ in range(2)]
    data = (
        (DATA / "hubspot-deals-export.csv")
        .read_bytes()
        .replace(b"11/30/2026", us(TODAY).encode())
        .replace(b"11/28/2026", us(TODAY - timedelta(days=2)).encode())
        .replace(b"31000000101", companies[0].encode())
        .replace(b"31000000102", companies[1].encode())
    )
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data
    path = tmp_path / "hubspot-crm-exports-all-deals.csv"
    path.write_bytes(data)
    return path, companies


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / f"export-{random.randrange(10**6)}.csv"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8-sig")
    return path


def outcomes(rows: list[Row]) -> dict[int, str | ClosedWonDeal]:
    return {line: d if isinstance(d, ClosedWonDeal) else str(d) for line, d, _ in rows}


# --------------------------------------------------------------------------- presets


def test_the_hubspot_export_reads_as_downloaded(tmp_path: Path, playbook: Playbook) -> None:
    path, (larkspur, tidewater) = hubspot_export(tmp_path)

    read = read_file(path, playbook)

    assert read.layout == "a HubSpot deals export"
    first, second = (row.deal for row in read.rows)
    assert isinstance(first, ClosedWonDeal) and isinstance(second, ClosedWonDeal)
    assert (first.account_id, first.account_name, first.acv_usd) == (
        larkspur,
        "Larkspur Bio, Inc.",
        50_000,
    )
    assert first.close_date.date() == TODAY
    assert (first.crm.source, first.crm.deal_id) == ("hubspot", "9100000101")
    assert (second.account_id, second.acv_usd) == (tidewater, 18_500)
    assert second.close_date.date() == TODAY - timedelta(days=2)


async def test_the_hubspot_export_imports_through_the_cli(
    dev_env: WorkflowEnvironment, dev_worker: Settings, tmp_path: Path
) -> None:
    path, companies = hubspot_export(tmp_path)
    env = {
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": dev_env.client.namespace,
        "TEMPORAL_CONFIG_FILE": str(tmp_path / "no-such-temporal.toml"),
    }

    # In a thread: the command runs its own event loop while this one runs the worker.
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["import", str(path), "--json"], env=env
    )

    assert result.exit_code == 0, result.output
    assert f"reading {path.name} as a HubSpot deals export" in result.stderr
    summary = json.loads(next(x for x in result.stdout.splitlines() if x.startswith("{")))
    assert summary["counts"] == {
        "started": 2,
        "already_running": 0,
        "already_finished": 0,
        "rejected": 0,
    }
    assert [r["workflow_id"] for r in summary["results"]] == [f"onboarding-{c}" for c in companies]


def test_a_salesforce_report_reads_with_its_own_headers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Opportunity Owner,Opportunity ID,Opportunity Name,Account ID,Account Name,Amount,"
        "Amount Currency,Close Date,Stage,Won",
        f"Dana Cole,0065g00000Q1bXy,Sakura - Annual,0015g00000Zy1Ab,Sakura Robotics K.K.,"
        f'"7,200,000",JPY,{us(TODAY)},Closed Won,1',
        f"Dana Cole,0065g00000Q1aBd,Quillfeather - Pilot,0015g00000Zx9Yx,Quillfeather Press,"
        f"18000,USD,{us(TODAY)},Negotiation/Review,0",
        f"Dana Cole,0065g00000Q1aBe,Harbor - Annual,0015g00000Zx9Yw,Harbor Freight Labs,"
        f"50000,USD,{TODAY.isoformat()},Closed Won - Signed,true",
    )

    read = read_file(path, rates=YEN)

    assert read.layout == "a Salesforce opportunity report"
    got = outcomes(read.rows)
    sakura, harbor = got[2], got[4]
    assert isinstance(sakura, ClosedWonDeal) and isinstance(harbor, ClosedWonDeal)
    assert (sakura.account_id, sakura.acv_usd, sakura.acv, sakura.currency) == (
        "0015g00000Zy1AbAAJ",
        48_000,
        7_200_000,
        "JPY",
    )
    assert (sakura.crm.source, sakura.crm.deal_id) == ("salesforce", "0065g00000Q1bXyAAJ")
    assert got[3] == "Won is '0': not won"
    # Won decides over a renamed stage.
    assert (harbor.account_id, harbor.acv_usd) == ("0015g00000Zx9YwAAJ", 50_000)


def test_rows_not_closed_won_are_skipped_with_the_reason(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Record ID,Deal Stage,Close Date,Amount,Associated Company,Associated Company IDs",
        f"1,Appointment Scheduled,{us(TODAY)},$5,A,11",
        f"2,,{us(TODAY)},$5,B,12",
        f"3,closedwon,{us(TODAY)},$5,C,13",
        f"4,Won (Annual),{us(TODAY)},$5,D,14",
    )

    got = outcomes(read_deals(path))

    assert (
        got[2] == "Deal Stage is 'Appointment Scheduled', not closed-won (Closed Won or closedwon)"
    )
    assert got[3] == "Deal Stage is '', not closed-won (Closed Won or closedwon)"
    assert isinstance(got[4], ClosedWonDeal)
    assert isinstance(got[5], str)
    won_annual = read_deals(path, options=CsvOptions(won_stages=("Won (Annual)",)))
    assert [type(row.deal) for row in won_annual] == [Skipped, Skipped, Skipped, ClosedWonDeal]


# --------------------------------------------------------------------------- other headers


def test_any_headers_read_with_column_mappings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Customer ID,Customer,ARR,Signed on,Notes",
        f'c-1,Acme,"€45,000",{TODAY.isoformat()},renewal',
    )
    mapping = (
        ("customer id", "account_id"),  # any letter case
        ("Customer", "account_name"),
        ("ARR", "acv"),
        ("Signed on", "close_date"),
        ("Notes", ""),  # left out
    )

    [row] = read_deals(path, options=CsvOptions(columns=mapping), rates=YEN)

    assert isinstance(row.deal, ClosedWonDeal)
    assert (row.deal.account_id, row.deal.acv_usd, row.deal.currency) == ("c-1", 50_000, "EUR")


def test_a_report_column_of_products_reads_with_a_column_mapping(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Opportunity ID,Account ID,Account Name,Amount,Close Date,Stage,Onboarded Products",
        f'0065g00000Q1bXy,0015g00000Zy1Ab,Sakura,50000,{us(TODAY)},Closed Won,"crm:40;bi:x"',
    )

    [row] = read_deals(path, options=CsvOptions(columns=(("Onboarded Products", "products"),)))

    # The error names the column as the file's header does.
    assert str(row.deal) == (
        "Onboarded Products: item 2 'bi:x': seats 'x' is not a whole number like 40"
    )


def test_every_problem_with_the_header_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Record ID,Deal Stage,Close Date,Amount,Associated Company IDs,Seats,Region",
        f"1,Closed Won,{us(TODAY)},$5,11,3,EU",
    )

    with pytest.raises(ImportFileError) as caught:
        read_deals(path, options=CsvOptions(columns=(("Seat", "seats"), ("Region", "area"))))

    message = str(caught.value)
    assert message.startswith(f"{path}: line 1: ")
    assert "--column 'Region=area': 'area' is not a column" in message
    assert "unknown column 'Seats' (known: account_id, account_name, acv_usd, acv," in message
    assert "--column 'Their Header=column'" in message
    assert "--column 'Seat=seats': the file has no column 'Seat'" in message
    assert "missing column(s) account_name" in message


def test_rejected_values_name_the_row_the_column_and_the_format(tmp_path: Path) -> None:
    header = (
        "Record ID,Deal Stage,Close Date,Amount,Currency,Associated Company,Associated Company IDs"
    )
    path = write(
        tmp_path,
        header,
        f"0,Closed Won,{us(TODAY)},$5,,Z,10",
        "1,Closed Won,13/30/2026,$5,,A,11",
        f'2,Closed Won,{us(TODAY)},"50.000,00 €",,B,12',
        f"3,Closed Won,{us(TODAY)},$5,EUR,C,13",
        f"4,Closed Won,{us(TODAY)},5,XYZ,D,14",
        f"5,Closed Won,{us(TODAY)},5,CHF,E,15",
        f'6,Closed Won,{us(TODAY)},5,,F,"16;17"',
        f"7,Closed Won,{us(TODAY)},5,,G,10",
        f"8,Closed Won,{us(TODAY)},-5,,H,18",
    )

    got = outcomes(read_deals(path, rates=YEN))

    assert isinstance(got.pop(2), ClosedWonDeal)
    assert got == {
        3: "Close Date: '13/30/2026' is not a date like 11/30/2026 (month first; "
        "--day-first reads 30/11/2026) or 2026-11-30",
        4: "Amount: '50.000,00 €' is not an amount like 50000, 50,000.00 or $50,000.00 "
        "(--decimal-comma reads 50.000,00)",
        5: "Amount: '$5' is in USD, but Currency is 'EUR'",
        6: "Currency: 'XYZ' is not an ISO 4217 currency code (like USD, EUR, JPY)",
        7: f"Currency: cannot count CHF in US dollars on {TODAY}: no rate is configured for "
        "it (currencies with rates: EUR, JPY)",
        8: "Associated Company IDs: '16;17' names several accounts; a row onboards one: keep "
        "the one to onboard",
        9: "Associated Company IDs: '10' is already on line 2 (one onboarding per account; "
        "this row is not imported)",
        10: "Amount: Input should be greater than or equal to 0",
    }


def test_day_first_dates_and_decimal_comma_amounts_are_options(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "account_id,account_name,acv,close_date",
        f'eu-1,Eu One,"45.000,00 €",{TODAY.day:02d}.{TODAY.month:02d}.{TODAY.year}',
        f"eu-2,Eu Two,45 000 EUR,{TODAY.isoformat()}",
    )

    rows = read_deals(path, options=CsvOptions(day_first=True, decimal_comma=True), rates=YEN)

    for row in rows:
        assert isinstance(row.deal, ClosedWonDeal), row.deal
        assert (row.deal.acv_usd, row.deal.close_date.date()) == (50_000, TODAY)


def test_the_15_character_report_row_imports_under_the_18_character_id() -> None:
    [row] = read_deals(DATA / "salesforce-report-15char-id.csv")

    assert isinstance(row.deal, ClosedWonDeal)
    assert row.deal.account_id == "0015g00000Zx9YwAAJ"
    assert row.account_id == "0015g00000Zx9Yw"  # as given, for the report


def test_the_cli_lists_skipped_and_rejected_rows_and_exits_1_only_for_rejected(
    tmp_path: Path,
) -> None:
    header = "Record ID,Deal Stage,Close Date,Amount,Associated Company,Associated Company IDs"
    skipped_only = write(
        tmp_path, header, f"1,Closed Lost,{us(TODAY)},$5,A,11", f"2,Closed Won,{us(TODAY)},$5,B,12"
    )
    with_bad = write(tmp_path, header, f"1,Closed Won,11/31/{TODAY.year},$5,A,11")

    fine = CliRunner().invoke(app, ["import", str(skipped_only), "--dry-run"])
    bad = CliRunner().invoke(app, ["import", str(with_bad), "--dry-run", "--preset", "hubspot"])

    assert fine.exit_code == 0, fine.output
    assert fine.stdout.splitlines() == [
        "dry run: valid 1 · skipped 1 · rejected 0 (nothing started)",
        "  line 2: skipped: Deal Stage is 'Closed Lost', not closed-won (Closed Won or closedwon)",
    ]
    assert bad.exit_code == 1
    assert bad.stdout.splitlines()[1] == (
        f"  line 2: Close Date: '11/31/{TODAY.year}' is not a date like 11/30/2026 (month "
        "first; --day-first reads 30/11/2026) or 2026-11-30"
    )
    bad_option = CliRunner().invoke(app, ["import", str(with_bad), "--column", "no-equals"])
    assert bad_option.exit_code == 1
    assert "--column 'no-equals': expected 'Their Header=column'" in bad_option.stderr


def test_the_exports_deal_type_columns_pick_the_track(tmp_path: Path) -> None:
    hubspot = write(
        tmp_path,
        "Record ID,Deal Stage,Close Date,Deal Type,Amount,Associated Company,"
        "Associated Company IDs",
        f"1,Closed Won,{us(TODAY)},Free Trial,$80000,Trial Co,11",
        f"2,Closed Won,{us(TODAY)},New Business,$5000,New Co,12",
        f"3,Closed Won,{us(TODAY)},Renewal,$5000,Renewal Co,13",
    )
    salesforce = write(
        tmp_path,
        "Opportunity ID,Account ID,Account Name,Amount,Close Date,Stage,Type",
        f"0065g00000Q1bXy,0015g00000Zy1Ab,Sakura,48000,{us(TODAY)},Closed Won,POC",
    )

    got = outcomes(read_file(hubspot).rows)
    trial, new = got[2], got[3]
    assert isinstance(trial, ClosedWonDeal) and isinstance(new, ClosedWonDeal)
    assert (trial.deal_type, new.deal_type) == (DealType.TRIAL, DealType.NEW_BUSINESS)
    assert str(got[4]).startswith("Deal Type: deal type 'Renewal' is not one we know")
    [row] = read_file(salesforce).rows
    assert isinstance(row.deal, ClosedWonDeal) and row.deal.deal_type is DealType.TRIAL

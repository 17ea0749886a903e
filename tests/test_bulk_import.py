"""`onboarding import` (`onboarding send-event` is in `test_send_event.py`).

Reading deal files is pure. Importing runs against a REAL dev server of this module's own
(the SDK's `start_local` with the `temporal` binary) and a real worker on the `onboarding`
task queue, since `deliver_deal` always uses that queue.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from typer.testing import CliRunner, Result

from starter.bulk import (
    CSV_COLUMNS,
    ImportFileError,
    Outcome,
    Row,
    RowError,
    RowResult,
    import_deals,
    read_deals,
)
from starter.cli import app
from tests.support.ingress import today_iso
from tests.support.temporal import dev_server, log_worker
from workflows.models import CancelRequest, ClosedWonDeal, ContactRole, Playbook

HEADER = (
    "account_id,account_name,acv_usd,seats,integrations,close_date,"
    "champion_name,champion_email,sponsor_name,sponsor_email,crm_source,crm_deal_id"
)


def csv_file(tmp_path: Path, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / f"deals-{uuid.uuid4().hex[:6]}.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def errors(rows: list[Row]) -> dict[int, str]:
    return {line: str(deal) for line, deal, _ in rows if isinstance(deal, RowError)}


def deals(rows: list[Row]) -> dict[int, ClosedWonDeal]:
    return {line: deal for line, deal, _ in rows if isinstance(deal, ClosedWonDeal)}


# --------------------------------------------------------------------------- reading


def test_csv_rows_become_deals_or_errors_naming_line_and_column(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        "acme,Acme Corp,60000,80,slack; salesforce,2031-01-05,Casey,Casey@Acme.example,"
        "Sam,sam@acme.example,hubspot,D-1",
        "globex,Globex,1200,,,2031-02-01,,,,,,",
        "badnum,Bad Number,lots,,,2031-01-05,,,,,,",
        "badmail,Bad Mail,500,,,2031-01-05,Pat,pat-at-example,,,,",
        "acme,Acme Again,100,,,2031-01-05,,,,,,",
        "halfcontact,Half,500,,,2031-01-05,,,Sam,,,",
    )

    rows = read_deals(path)

    assert [line for line, _, _ in rows] == [2, 3, 4, 5, 6, 7]
    good = deals(rows)
    assert sorted(good) == [2, 3]
    acme = good[2]
    assert acme.acv_usd == 60000
    assert acme.seats == 80
    assert acme.integrations == ["slack", "salesforce"]
    assert acme.close_date == datetime(2031, 1, 5, tzinfo=UTC)
    champion = acme.contact(ContactRole.CHAMPION)
    assert champion is not None
    assert champion.email == "casey@acme.example"
    sponsor = acme.contact(ContactRole.EXECUTIVE_SPONSOR)
    assert sponsor is not None
    assert sponsor.name == "Sam"
    assert (acme.crm.source, acme.crm.deal_id) == ("hubspot", "D-1")
    globex = good[3]  # empty cells take the defaults
    assert (globex.seats, globex.contacts, globex.integrations) == (0, [], [])
    assert globex.crm.source == "manual"

    bad = errors(rows)
    assert bad[4].startswith("acv_usd: 'lots' is not an amount like 50000, 50,000.00")
    assert bad[5] == "champion_email: 'pat-at-example' is not an email address"
    assert bad[6].startswith("account_id: 'acme' is already on line 2")
    assert bad[7] == "sponsor_email: required when sponsor_name is given"
    # A rejected row still names its account, for the report.
    assert {line: account for line, _, account in rows}[5] == "badmail"


def test_csv_negative_number_names_the_field_and_the_bound(tmp_path: Path) -> None:
    rows = read_deals(csv_file(tmp_path, "neg,Negative,-1,,,2031-01-05,,,,,,"))

    assert errors(rows) == {2: "acv_usd: Input should be greater than or equal to 0"}


def test_csv_unknown_column_fails_the_whole_file(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "acme,Acme,100,2031-01-05", header="account_id,account_name,acvv")

    with pytest.raises(ImportFileError) as caught:
        read_deals(path)

    message = str(caught.value)
    assert "unknown column 'acvv'" in message
    assert f"(known: {', '.join(CSV_COLUMNS)})" in message


def test_csv_without_a_required_column_fails_the_whole_file(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "acme,Acme,100", header="account_id,account_name,acv_usd")

    with pytest.raises(ImportFileError, match="missing column\\(s\\) close_date"):
        read_deals(path)


def test_a_products_column_lists_a_deals_products_and_names_the_bad_item(
    tmp_path: Path,
) -> None:
    header = "account_id,account_name,acv_usd,close_date,products"
    path = csv_file(
        tmp_path,
        '"two",Two,9000,2031-01-05,"CRM:40; Analytics:25>crm"',
        '"three",Three,9000,2031-01-05,"crm:40; erp:10>; bi:5>crm&erp"',
        '"none",None,9000,2031-01-05,',
        '"seats",Seats,9000,2031-01-05,"crm:40; analytics:lots"',
        '"unknown",Unknown,9000,2031-01-05,"crm:40; bi:5>erp"',
        '"cycle",Cycle,9000,2031-01-05,"crm:40>bi; bi:5"',
        '"syntax",Syntax,9000,2031-01-05,"crm=40"',
        '"many",Many,9000,2031-01-05,"a:1;b:1;c:1;d:1;e:1;f:1"',
        header=header,
    )

    rows = read_deals(path)

    good = deals(rows)
    two, three = good[2], good[3]
    assert [(p.id, p.name, p.licensed_seats, p.depends_on) for p in two.products] == [
        ("crm", "crm", 40, None),
        ("analytics", "analytics", 25, ["crm"]),
    ]
    # `>` alone: waits for nothing; `&` joins several.
    assert [(p.id, p.depends_on) for p in three.products] == [
        ("crm", None),
        ("erp", []),
        ("bi", ["crm", "erp"]),
    ]
    assert good[4].products == []  # an empty cell: one product, as before
    assert errors(rows) == {
        5: "products: item 2 'analytics:lots': seats 'lots' is not a whole number like 40",
        6: "products: item 2 (bi): 'erp' is not a listed product",
        7: "products: item 1 (crm): cycle crm -> bi -> crm",
        8: "products: item 1 'crm=40': expected id:seats, like analytics:40, or "
        "warehouse:25>analytics to wait for analytics",
        9: "products: 6 products; a deal has at most 5",
    }


def test_jsonl_lines_become_deals_or_errors_and_blank_lines_are_skipped(
    tmp_path: Path, playbook: Playbook
) -> None:
    def line(**fields: object) -> str:
        deal = {"account_name": "Co", "acv_usd": 5000, "close_date": "2031-01-02"} | fields
        return json.dumps(deal)

    path = tmp_path / "deals.jsonl"
    path.write_text(
        "\n".join(
            [
                line(
                    account_id="j-1",
                    contacts=[{"name": "A", "email": "a@j.example", "role": "champion"}],
                ),
                "",
                line(account_id="j-2", acv_usd="a lot"),
                line(
                    account_id="j-3", contacts=[{"name": "B", "email": "nope", "role": "champion"}]
                ),
                line(account_id="j-1"),
                "{not json",
                line(account_id="j-4", acvv=1),
                line(
                    account_id="j-5",
                    completed_milestones=[{"milestone_id": "no_such", "at": "2031-01-03"}],
                ),
                "   ",
            ]
        )
    )

    rows = read_deals(path, playbook)

    assert list(deals(rows)) == [1]
    bad = errors(rows)
    assert sorted(bad) == [3, 4, 5, 6, 7, 8]  # physical lines: the blank line 2 counts
    assert bad[3] == "acv_usd: 'a lot' is not a number like 1.5"
    assert bad[4] == "contacts[0].email: 'nope' is not an email address"
    assert bad[5].startswith("account_id: 'j-1' is already on line 1")
    assert bad[6].startswith("(row): Invalid JSON")
    assert bad[7] == "acvv: Extra inputs are not permitted"
    assert bad[8].startswith("completed_milestones[0].milestone_id: 'no_such' is not a milestone")


def test_a_deal_type_column_picks_the_track_as_the_crms_do(tmp_path: Path) -> None:
    header = "account_id,account_name,acv_usd,close_date,deal_type"
    path = csv_file(
        tmp_path,
        "t-1,Trial Co,80000,2031-01-05,trial",
        "t-2,Free Co,0,2031-01-05,Free Trial",  # the CRM's own label
        "t-3,Freemium Co,0,2031-01-05,freemium",
        "t-4,Back Co,9000,2031-01-05,win_back",
        "t-5,New Co,9000,2031-01-05,",  # empty: new business
        "t-6,Renewal Co,9000,2031-01-05,Renewal",
        header=header,
    )

    rows = read_deals(path)

    assert {line: d.deal_type.value for line, d in deals(rows).items()} == {
        2: "trial",
        3: "trial",
        4: "trial",
        5: "win_back",
        6: "new_business",
    }
    assert errors(rows)[7].startswith("deal_type: deal type 'Renewal' is not one we know")


def test_other_file_types_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "deals.xlsx"
    path.write_bytes(b"PK")

    with pytest.raises(ImportFileError, match=r"expected a \.csv or \.jsonl file"):
        read_deals(path)


# --------------------------------------------------------------------------- importing


@pytest.fixture(scope="module")
async def temporal() -> AsyncIterator[Client]:
    """A private dev server with the search attributes, and a worker on `onboarding`."""
    env = await dev_server()
    try:
        worker = log_worker(env.client)
        async with worker:
            yield env.client
    finally:
        await env.shutdown()


async def test_import_starts_good_rows_once_and_nothing_for_a_bad_row(
    temporal: Client, playbook: Playbook, tmp_path: Path
) -> None:
    run, closed = uuid.uuid4().hex[:6], today_iso()
    good = [f"imp-{run}-{i}" for i in range(4)]
    path = csv_file(
        tmp_path,
        *(
            f"{a},Account {a},{20000 + i},,,{closed},Casey,casey@{a}.example,,,,"
            for i, a in enumerate(good[:2])
        ),
        f"imp-{run}-bad,Bad,-5,,,{closed},,,,,,",
        *(f"{a},Account {a},3000,,,{closed},,,,,," for a in good[2:]),
    )
    rows = read_deals(path, playbook)
    heard: list[RowResult] = []

    first = await import_deals(temporal, rows, playbook, concurrency=2, on_result=heard.append)

    assert first.counts == {
        "started": 4,
        "already_running": 0,
        "already_finished": 0,
        "rejected": 1,
    }
    assert [r.account_id for r in first.of(Outcome.STARTED)] == good
    [rejected] = first.of(Outcome.REJECTED)
    assert rejected.line == 4
    assert rejected.account_id == f"imp-{run}-bad"
    assert rejected.reason == "acv_usd: Input should be greater than or equal to 0"
    assert sorted(r.line for r in heard) == [2, 3, 4, 5, 6]
    assert first.headline() == "started 4 · already running 0 · already finished 0 · rejected 1"

    again = await import_deals(temporal, read_deals(path, playbook), playbook, concurrency=8)

    assert again.counts == {
        "started": 0,
        "already_running": 4,
        "already_finished": 0,
        "rejected": 1,
    }
    assert again.import_id != first.import_id
    for account in good:
        desc = await temporal.get_workflow_handle(f"onboarding-{account}").describe()
        assert desc.status is WorkflowExecutionStatus.RUNNING
        assert desc.workflow_type == "AccountOnboarding"
    with pytest.raises(RPCError) as missing:
        await temporal.get_workflow_handle(f"onboarding-imp-{run}-bad").describe()
    assert missing.value.status is RPCStatusCode.NOT_FOUND


# --------------------------------------------------------------------------- the CLI


def test_cli_import_dry_run_reports_and_exits_1_on_a_rejected_row(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        "dry-1,Dry One,1000,,,2031-01-05,,,,,,",
        "dry-2,Dry Two,-3,,,2031-01-05,,,,,,",
        "dry-3,Dry Three,1000,,,2031-01-05,,,,,,",
    )

    result = CliRunner().invoke(app, ["import", str(path), "--dry-run"])

    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == [
        "dry run: valid 2 · rejected 1 (nothing started)",
        "  line 3: acv_usd: Input should be greater than or equal to 0",
    ]


def test_cli_import_dry_run_json_and_exit_0_when_all_valid(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "ok-1,Ok One,1000,,,2031-01-05,,,,,,")

    result = CliRunner().invoke(app, ["import", str(path), "--dry-run", "--json"])

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["counts"] == {"valid": 1, "rejected": 0}
    assert summary["results"][0]["account_id"] == "ok-1"


def test_cli_import_unknown_column_is_one_error_line(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "a,A,1", header="account_id,account_name,acvv")

    result = CliRunner().invoke(app, ["import", str(path), "--dry-run"])

    assert result.exit_code == 1
    assert "unknown column 'acvv'" in result.stderr
    assert result.stdout == ""


async def test_cli_import_reports_started_running_and_finished_accounts(
    temporal: Client, tmp_path: Path
) -> None:
    run, closed = uuid.uuid4().hex[:6], today_iso()
    running, ended, fresh = (f"cli-{run}-{name}" for name in ("running", "ended", "fresh"))
    first = csv_file(
        tmp_path, *(f"{a},Account {a},20000,,,{closed},,,,,," for a in (running, ended))
    )
    second = csv_file(
        tmp_path, *(f"{a},Account {a},20000,,,{closed},,,,,," for a in (running, ended, fresh))
    )
    env = {
        "TEMPORAL_ADDRESS": temporal.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": temporal.namespace,
        "TEMPORAL_CONFIG_FILE": str(tmp_path / "no-such-temporal.toml"),
    }

    def onboarding(*args: str) -> Result:
        return CliRunner().invoke(app, list(args), env=env)

    # In a thread: the command runs its own event loop while this one keeps the worker going.
    started = await asyncio.to_thread(onboarding, "import", str(first))
    assert started.exit_code == 0, started.output
    # (stdout also carries the in-process worker's log lines: CliRunner captures sys.stdout)
    assert "started 2 · already running 0 · already finished 0 · rejected 0" in (
        started.stdout.splitlines()
    )
    assert f"importing {first.name}" in started.stderr  # the progress bar
    cancelled = temporal.get_workflow_handle(f"onboarding-{ended}")
    await cancelled.execute_update("cancel", CancelRequest(by="test", reason="deal cancelled"))
    await cancelled.result()  # the run ends after its final record is written

    again = await asyncio.to_thread(onboarding, "import", str(second), "--json")

    assert again.exit_code == 0, again.output
    summary = json.loads(next(x for x in again.stdout.splitlines() if x.startswith("{")))
    assert summary["counts"] == {
        "started": 1,
        "already_running": 1,
        "already_finished": 1,
        "rejected": 0,
    }
    outcomes = {r["account_id"]: (r["outcome"], r["reason"]) for r in summary["results"]}
    assert outcomes == {
        running: ("already_running", ""),
        ended: ("already_finished", "cancelled"),
        fresh: ("started", ""),
    }

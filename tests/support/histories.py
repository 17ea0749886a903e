"""Recording workflow histories for the replay test (`make histories`): every run of a
workflow, following continue-as-new, one gzipped JSON file per run."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowHistory

# Set to a folder name under HISTORIES, the workflow tests record what they ran there.
RECORD_HISTORIES = "RECORD_HISTORIES"
HISTORIES = Path(__file__).parents[1] / "histories"


async def run_histories(client: Client, handle: WorkflowHandle[Any, Any]) -> list[WorkflowHistory]:
    """The history of every run of this workflow, following continue-as-new."""
    histories = []
    run_id: str | None = handle.first_execution_run_id or handle.result_run_id
    while run_id:
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        histories.append(history)
        attrs = history.events[-1].workflow_execution_continued_as_new_event_attributes
        run_id = attrs.new_execution_run_id or None
    return histories


async def record_histories(
    client: Client, handles: list[WorkflowHandle[Any, Any]], folder: Path, test_name: str
) -> None:
    """Save every run of these workflows' histories for the replay test (`make histories`),
    one file per run."""
    name = test_name.replace("[", "-").rstrip("]")
    files: dict[str, str] = {}
    for i, handle in enumerate(handles):
        for run, history in enumerate(await run_histories(client, handle)):
            files[f"{name}-{i}-run{run}.json.gz"] = history.to_json()
    _write(folder, files)


def _write(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        # mtime=0: the same history gives the same bytes, so re-recording makes no diff.
        (folder / name).write_bytes(gzip.compress(text.encode(), mtime=0))

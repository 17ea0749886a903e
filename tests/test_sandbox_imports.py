"""What the workflow sandbox executes again for every workflow it creates: only the
workflow's own module (and its package), never the rules, models or contract it passes
through. A passthrough that silently stopped working (`from workflows import rules` does:
Python fetches the submodule from the sandbox's fresh copy of the package) costs every
new or re-cached onboarding tens of milliseconds of the worker's event loop (`make soak`
found a quarter of its busy time there)."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

import pytest
from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.workflow import _Definition

from activities import Settings
from worker import workflow_runner
from workflows.intake import HubSpotDealIntake, HubSpotDealLostIntake
from workflows.onboarding import AccountOnboarding

ROOT = Path(__file__).resolve().parents[1]


class _Loads(importlib.abc.MetaPathFinder):
    """Notes every `workflows` module the import system is asked to load (finds nothing:
    the usual finders load it)."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".")[0] == "workflows":
            self.names.add(fullname)
        return None


@pytest.fixture
def loads() -> Iterator[_Loads]:
    finder = _Loads()
    sys.meta_path.insert(0, finder)
    try:
        yield finder
    finally:
        sys.meta_path.remove(finder)


@pytest.mark.parametrize(
    "workflow_class",
    [AccountOnboarding, HubSpotDealIntake, HubSpotDealLostIntake],
    ids=lambda c: c.__name__,
)
async def test_a_new_workflow_in_the_sandbox_reloads_only_its_own_module(
    loads: _Loads, workflow_class: type
) -> None:
    # prepare_workflow builds one instance in a fresh sandbox, as the worker does per run.
    SandboxedWorkflowRunner().prepare_workflow(_Definition.must_from_class(workflow_class))
    assert loads.names == {"workflows", workflow_class.__module__}


def test_the_worker_writes_the_workflow_modules_bytecode_even_when_python_would_not(
    tmp_path: Path,
) -> None:
    # PYTHONDONTWRITEBYTECODE=1 (common in container images) would make the sandbox
    # compile the workflow module's source for every new workflow.
    probe = "import worker; worker.compile_workflow_modules()"
    env = os.environ | {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(tmp_path)}
    subprocess.run([sys.executable, "-c", probe], env=env, check=True, cwd=ROOT)
    written = {p.name.split(".")[0] for p in tmp_path.rglob("*.pyc")}
    assert {"onboarding", "intake"} <= written


@pytest.mark.parametrize(
    ("variable", "runner"),
    [(None, UnsandboxedWorkflowRunner), ("true", SandboxedWorkflowRunner)],
)
def test_the_worker_sandboxes_workflows_only_when_its_settings_say(
    monkeypatch: pytest.MonkeyPatch, variable: str | None, runner: type
) -> None:
    # Production runs without the sandbox (its per-workflow copy is most of what an
    # onboarding costs the worker); ONBOARDING_WORKFLOW_SANDBOX=true brings it back.
    monkeypatch.delenv("ONBOARDING_WORKFLOW_SANDBOX")
    if variable is not None:
        monkeypatch.setenv("ONBOARDING_WORKFLOW_SANDBOX", variable)
    assert type(workflow_runner(Settings().workflow_sandbox)) is runner

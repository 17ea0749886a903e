"""The worker process runs workflows and activities only: it never loads the ways in (the
`starter` package: ingress, CLI) or their web framework. The import layers themselves are
checked by `lint-imports` (`make lint`, contracts in pyproject.toml)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_worker_loads_neither_the_ingress_nor_fastapi() -> None:
    probe = (
        "import sys, worker\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('starter', 'fastapi', 'starlette', 'uvicorn', 'typer'))\n"
        "print(loaded)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"

"""`python -m starter.cli`: the same as the `onboarding` console script."""

from starter.cli import app

app()

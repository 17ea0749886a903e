"""What one onboarding may carry, and the bounded types (names, texts, plan dates) that hold
models to it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from workflows.models.vocabulary import UtcDatetime


def _nonblank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


# What one onboarding may carry. Its deal, playbook and state travel in one payload at
# continue-as-new, which Temporal refuses above 2 MB; these bounds keep the worst case
# about 1.1 MB (README "Limits"; tests/test_limits.py runs the largest case to handoff).
NAME_CHARS = 200  # names, titles, who did something
TEXT_CHARS = 1_000  # reasons, success criteria, one-line notes
MAX_CONTACTS = 50
MAX_INTEGRATIONS = 50
MAX_SUCCESS_CRITERIA = 50
MAX_COMPLETED_MILESTONES = 50
MAX_MILESTONES = 50
MAX_LADDER_STEPS = 30  # per tier
MAX_TEMPLATES = 50
SUBJECT_CHARS = 200
TEMPLATE_CHARS = 10_000  # one message body
MAX_EVENT_NAMES = 10  # names that complete one milestone
MAX_PLAYBOOK_EVENT_NAMES = 50
MAX_EVENT_COUNT = 100  # events one milestone may need
PLAYBOOK_BYTES = 256_000  # the whole playbook as each onboarding carries it (JSON)
MAX_PRODUCTS = 5  # products of one multi-product deal (rules §6.2)
MAX_PRODUCT_SEATS = 1_000  # licensed seats of one product: active users are kept up to it
MAX_PLAN_DAYS = 3_650  # any day count of a playbook: deadlines stay inside the calendar
EARLIEST_DATE = datetime(2000, 1, 1, tzinfo=UTC)  # dates a plan may be built on
LATEST_DATE = datetime(2999, 12, 31, tzinfo=UTC)
MAX_SIGNAL_EVENTS = 1_000  # product events in one signal (and in one POST /events)


def _plannable(value: datetime) -> datetime:
    # Deadlines are counted from these dates: one at the calendar's edge would fail the
    # onboarding's date arithmetic after it was accepted.
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValueError(
            f"must be between {EARLIEST_DATE.date().isoformat()} and "
            f"{LATEST_DATE.date().isoformat()}"
        )
    return value


PlanDatetime = Annotated[UtcDatetime, AfterValidator(_plannable)]
Name = Annotated[str, Field(max_length=NAME_CHARS), AfterValidator(_nonblank)]
Text = Annotated[str, Field(max_length=TEXT_CHARS), AfterValidator(_nonblank)]

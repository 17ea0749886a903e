"""Loading a playbook file into a validated, version-pinned `Playbook`.

Runs in starters and tests, never in workflow code: the loaded playbook travels in the
workflow's input, so a running onboarding keeps the version it started with.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from workflows.models import PLAYBOOK_BYTES, Playbook, Tier, Trigger
from workflows.validation import message

PLAYBOOK_DIR = Path(__file__).resolve().parent.parent / "playbooks"
DEFAULT_PLAYBOOK = PLAYBOOK_DIR / "default.toml"


class PlaybookError(ValueError):
    """A playbook that cannot be used, with every problem named by its key."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def toml_key(loc: tuple[int | str, ...], raw: dict[str, Any]) -> str:
    """`('milestones', 3, 'weight')` -> `milestones[3](data_import).weight`."""
    parts: list[str] = []
    node: Any = raw
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            try:
                node = node[item]
                if isinstance(node, dict) and "id" in node:
                    label += f"({node['id']})"
            except (IndexError, KeyError, TypeError):
                node = None
            parts.append(label)
        else:
            parts.append(("." if parts else "") + item)
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


def parse_playbook(text: str, source: str = "<playbook>") -> Playbook:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlaybookError(source, [f"not valid TOML: {exc}"]) from exc
    except RecursionError as exc:
        raise PlaybookError(source, ["not valid TOML: nested too deeply"]) from exc
    raw["content_hash"] = hashlib.sha256(text.encode()).hexdigest()[:16]
    try:
        playbook = Playbook.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(x for x in err["loc"] if x not in ("function-after",))
            problems.append(f"{toml_key(loc, raw)}: {message(err)}")
        raise PlaybookError(source, problems) from exc
    if gaps := _ladder_gaps(playbook):
        raise PlaybookError(source, gaps)
    size = len(playbook.model_dump_json())
    if size > PLAYBOOK_BYTES:
        raise PlaybookError(
            source,
            [
                f"(top level): {size:,} bytes as each onboarding carries it; at most "
                f"{PLAYBOOK_BYTES:,} (shorten the templates)"
            ],
        )
    return playbook


def _ladder_gaps(playbook: Playbook) -> list[str]:
    """What a tier's ladder lacks of the rules that hold in every tier, one problem per
    tier and rule, `ladder.<tier>: <reason>`: a `no_success_criteria` step (rules §6.1
    (docs/rules.md)) and a stall decision, a `no_progress` step that requires a decision
    (rules §4). Checked here, on load, and not by `Playbook` itself: the playbook pinned
    in a running onboarding's input is validated again on every replay, and one pinned
    before this rule must still load."""
    problems = []
    for tier in Tier:
        steps = playbook.ladder[tier]
        if not any(s.when is Trigger.NO_SUCCESS_CRITERIA for s in steps):
            problems.append(
                f'ladder.{tier.value}: no step with when = "no_success_criteria"; every '
                "tier escalates an onboarding without success criteria and adopts the "
                "fallback criterion"
            )
        if not any(
            s.when is Trigger.NO_PROGRESS and any(a.require_decision for a in s.actions)
            for s in steps
        ):
            problems.append(
                f"ladder.{tier.value}: no stall decision (a no_progress step with "
                "{ require_decision = true }); every tier asks for a decision when an "
                "onboarding stalls"
            )
    return problems


def load_playbook(path: str | Path = DEFAULT_PLAYBOOK) -> Playbook:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlaybookError(str(path), [f"cannot read: {exc.strerror}"]) from exc
    except UnicodeDecodeError as exc:
        reason = f"not UTF-8 text: {exc.reason} at byte {exc.start}"
        raise PlaybookError(str(path), [reason]) from exc
    return parse_playbook(text, str(path))

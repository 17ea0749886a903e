"""Playbook loading: the shipped default, and broken playbooks named by key and reason."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from workflows.models import Tier
from workflows.playbook import DEFAULT_PLAYBOOK, PlaybookError, load_playbook, parse_playbook

TEXT = DEFAULT_PLAYBOOK.read_text(encoding="utf-8")


def edited(old: str, new: str, count: int = 1) -> str:
    """The default playbook's text with `old` replaced by `new` (which must be there)."""
    assert TEXT.count(old) >= count, old
    return TEXT.replace(old, new, count)


def problems(text: str) -> list[str]:
    with pytest.raises(PlaybookError) as info:
        parse_playbook(text, "broken.toml")
    assert str(info.value).startswith("broken.toml: ")
    assert info.value.source == "broken.toml"
    return info.value.problems


def test_default_playbook_loads() -> None:
    pb = load_playbook()
    assert pb.version == "2026.12.1"
    assert re.fullmatch(r"[0-9a-f]{16}", pb.content_hash)
    assert pb.content_hash == hashlib.sha256(TEXT.encode()).hexdigest()[:16]
    assert pb.tier_rule.enterprise_acv_usd == 50_000
    assert pb.ttv_target_days[Tier.HIGH_TOUCH] == (14, 21)
    assert {len(pb.milestones_for(t)) for t in Tier} == {5, 8}
    assert set(pb.ladder) == set(Tier)


def test_content_hash_pins_the_exact_text() -> None:
    same = parse_playbook(TEXT)
    assert same.content_hash == load_playbook().content_hash
    changed = parse_playbook(edited("pause_reminder_days = 14", "pause_reminder_days = 7"))
    assert changed.content_hash != same.content_hash
    assert changed.pause_reminder_days == 7
    # Even a comment-only change is a different file, hence a different hash.
    assert parse_playbook(TEXT + "\n# tweak\n").content_hash != same.content_hash


TIMELINE_SELF_SERVE = """[timeline.self_serve]             # 30 days
kickoff = 3
pilot = 7
go_live = 14
validation = 28
handoff = 30
"""


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        pytest.param(
            edited(
                'id = "team_adoption"\ntitle = "Team adoption (3+ active users)"\n'
                'phase = "validation"\nweight = 3',
                'id = "team_adoption"\ntitle = "Team adoption (3+ active users)"\n'
                'phase = "validation"\nweight = 5',
            ),
            "milestones[6](team_adoption).weight",
            "less than or equal to 3",
            id="weight-5",
        ),
        pytest.param(
            edited('phase = "go_live"', 'phase = "launch"'),
            "milestones[4](first_training).phase",
            "'kickoff'",
            id="unknown-phase",
        ),
        pytest.param(
            edited("due_days = { high_touch = 5,", "due_days = { high_touch = 15,"),
            "milestones.first_login.due_days.high_touch",
            "day 15 is after phase kickoff ends (day 14)",
            id="due-after-phase-end",
        ),
        pytest.param(
            edited(TIMELINE_SELF_SERVE, ""),
            "timeline.self_serve",
            "must give the end day of every phase",
            id="tier-missing-in-timeline",
        ),
        pytest.param(
            edited('template = "how_to_video"', 'template = "how_to_vid"'),
            "ladder.tech_touch.stuck_how_to",
            "no template 'how_to_vid'",
            id="unknown-ladder-template",
        ),
        pytest.param(
            edited('id = "data_import"', 'id = "first_training"'),
            "milestones",
            "duplicate id(s) first_training",
            id="duplicate-milestone-id",
        ),
        pytest.param(
            edited('name = "Default', 'colour = "blue"\nname = "Default'),
            "colour",
            "Extra inputs are not permitted",
            id="unknown-top-level-key",
        ),
        pytest.param(
            edited("[ttv_target_days]", "[ttv_target_days]\nfree = [0, 1]"),
            "ttv_target_days.free",
            "Input should be 'high_touch'",
            id="unknown-tier",
        ),
        pytest.param(
            edited('on_done = "all_set"', 'on_done = "all_done"'),
            "milestones.first_value.on_done",
            "no template 'all_done'",
            id="unknown-on-done-template",
        ),
    ],
)
def test_broken_playbook_names_key_and_reason(text: str, key: str, reason: str) -> None:
    found = [p.removeprefix("(top level): ") for p in problems(text)]
    assert any(p.startswith(key) and reason in p for p in found), found


def test_all_field_problems_are_reported_together() -> None:
    text = edited("weight = 3", "weight = 0").replace("pause_reminder_days = 14", "")
    found = problems(text)
    assert any(p.startswith("milestones[5](first_value).weight: ") for p in found), found
    assert any(p.startswith("pause_reminder_days: Field required") for p in found), found


def test_invalid_toml() -> None:
    [problem] = problems(edited("[tier_rule]", "[tier_rule"))
    assert problem.startswith("not valid TOML:")


def test_unreadable_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(PlaybookError) as info:
        load_playbook(missing)
    assert info.value.source == str(missing)
    assert info.value.problems == ["cannot read: No such file or directory"]


def test_load_playbook_from_a_copied_file(tmp_path: Path) -> None:
    copy = tmp_path / "custom.toml"
    copy.write_text(edited('version = "2026.12.1"', 'version = "2027.1.0"'), encoding="utf-8")
    pb = load_playbook(copy)
    assert pb.version == "2027.1.0"
    assert pb.content_hash != load_playbook().content_hash

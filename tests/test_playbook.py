"""Playbook loading: the shipped default, and broken playbooks named by key and reason."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.support.strategies import PROPERTY
from workflows.models import Audience, Playbook, Tier
from workflows.playbook import DEFAULT_PLAYBOOK, PlaybookError, load_playbook, parse_playbook

TEXT = DEFAULT_PLAYBOOK.read_text(encoding="utf-8")

# A failing property (hypothesis) shows the example that broke it.
pytestmark = pytest.mark.usefixtures("hypothesis_shows_examples")


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
    assert pb.version == "2026.12.3"
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
        pytest.param(
            edited(
                'id = "no_success_criteria"\nwhen = "no_success_criteria"',
                'id = "x"\nwhen = "no_login"',
                3,
            ),
            "ladder.self_serve",
            'no step with when = "no_success_criteria"',
            id="no-success-criteria-step",
        ),
        pytest.param(
            edited("{ require_decision = true },", '{ flag = "stalled" },'),
            "ladder.high_touch",
            "no stall decision",
            id="no-stall-decision",
        ),
        pytest.param(
            edited('kind = "celebration"', 'kind = "party"'),
            "templates.all_set.kind",
            "Input should be 'nudge', 'escalation', 'celebration' or 'info'",
            id="unknown-template-kind",
        ),
        pytest.param(
            edited('time_zone = "UTC"', 'time_zone = "Mars/Olympus"'),
            "business_calendar.time_zone",
            "'Mars/Olympus' is not an IANA time zone",
            id="unknown-time-zone",
        ),
        pytest.param(
            edited('country = "US"', 'country = "USA"'),
            "business_calendar.country",
            "'USA' is not an ISO 3166 alpha-2 country",
            id="unknown-country",
        ),
        pytest.param(
            edited("window_business_days = 10", "window_business_days = 0"),
            "champion_change.window_business_days",
            "greater than or equal to 1",
            id="empty-champion-window",
        ),
        pytest.param(
            edited('csm_template = "champion_window_lapsed_csm"', 'csm_template = "nope"'),
            "champion_change.csm_template",
            "no template 'nope'",
            id="unknown-champion-template",
        ),
        pytest.param(
            edited(
                'milestone_plan = "Updated milestone plan agreed"',
                'milestone_plan = "Re-alignment call done"',
            ),
            "champion_change.gates",
            "two gates have the same title",
            id="champion-gates-same-title",
        ),
        pytest.param(
            edited("gates = { new_primary_contact", "gates = { New_Primary", 1),
            "champion_change.gates.New_Primary",
            "should match pattern",
            id="champion-gate-id",
        ),
        pytest.param(
            edited("after_skip_days = 7", "after_skip_days = 0"),
            "skip_net.after_skip_days",
            "greater than or equal to 1",
            id="skip-net-checks-at-the-skip",
        ),
        pytest.param(
            edited('support_events = ["support_ticket_opened"]', 'support_events = ["Signed In"]'),
            "skip_net",
            "support_events: Signed In also listed in usage_events; a support ticket is not usage",
            id="skip-net-ticket-is-usage",
        ),
        pytest.param(
            edited('template = "skip_reopened"', 'template = "skip_reopen"'),
            "skip_net.template",
            "no template 'skip_reopen'",
            id="skip-net-unknown-template",
        ),
        pytest.param(
            edited(
                'count = 2\nmilestone = "first_value"\ndays = 1\ncooldown_days = 14\n',
                'count = 2\nmilestone = "first_value"\ndays = 1\n',
            ),
            "ladder.high_touch[8](tutorial_abandoned)",
            "cooldown_days: event_without_milestone needs one, so that it never repeats",
            id="behavioral-step-without-cooldown",
        ),
        pytest.param(
            edited('milestone = "first_value"\ndays = 10', 'milestone = "first_valu"\ndays = 10'),
            "ladder.high_touch.setup_without_value.milestone",
            "'first_valu' is not a milestone id",
            id="behavioral-step-unknown-milestone",
        ),
        pytest.param(
            edited('when = "usage_drop"\nevents', 'when = "event_without_milestone"\nevents'),
            "ladder.high_touch[10](usage_drop)",
            "milestone: given for event_without_milestone, and only for it",
            id="behavioral-step-wrong-parameters",
        ),
        pytest.param(
            edited(
                'days = 14\nactions = [{ notify = "executive_sponsor"',
                'days = 14\ncooldown_days = 3\nactions = [{ notify = "executive_sponsor"',
            ),
            "ladder.high_touch[4](stall_exec_sponsor)",
            "events, count and cooldown_days are only for behavioral triggers",
            id="cooldown-on-a-deadline-step",
        ),
        pytest.param(
            edited(
                'active_events = ["user_logged_in", "Signed In", "core_workflow_completed"]',
                'active_events = ["user_logged_in", "Invite Sent"]',
            ),
            "measures",
            "active_events: Invite Sent also listed in invitation_events",
            id="measures-invitation-is-activity",
        ),
        pytest.param(
            edited('active_events = ["user_logged_in", ', 'active_events = ["Signed In", '),
            "measures",
            "active_events: an event name is listed twice",
            id="measures-event-twice",
        ),
        pytest.param(
            edited('waiting_template = "product_waiting"', 'waiting_template = "product_wait"'),
            "products",
            "waiting_template: no template 'product_wait'",
            id="unknown-waiting-template",
        ),
        pytest.param(
            edited('released_template = "product_released"', 'released_template = "gone"'),
            "products",
            "released_template: no template 'gone'",
            id="unknown-released-template",
        ),
        pytest.param(
            edited('when = "usage_drop"\nevents', 'when = "champion_window_lapsed"\nevents'),
            "ladder.high_touch[10](usage_drop)",
            "when: champion_window_lapsed is escalated by [champion_change] when its window",
            id="champion-lapse-is-no-ladder-trigger",
        ),
        pytest.param(
            edited('weekday = "tuesday"', 'weekday = "tues"'),
            "programs.onboarding_webinar.weekday",
            "Input should be 'monday', 'tuesday',",
            id="program-weekday",
        ),
        pytest.param(
            edited('time = "16:00"', 'time = "25:00"'),
            "programs.onboarding_webinar.time",
            "hour value is outside expected range of 0-23",
            id="program-time",
        ),
        pytest.param(
            edited('time = "16:00"', 'time = "16:00+02:00"'),
            "programs.onboarding_webinar.time",
            "a local time without an offset: the time_zone key gives the zone",
            id="program-time-with-offset",
        ),
        pytest.param(
            edited('time_zone = "America/New_York"', 'time_zone = "America/Gotham"'),
            "programs.onboarding_webinar.time_zone",
            "'America/Gotham' is not an IANA time zone",
            id="program-time-zone",
        ),
        pytest.param(
            edited("duration_minutes = 60", "duration_minutes = 0"),
            "programs.onboarding_webinar.duration_minutes",
            "greater than or equal to 5",
            id="program-duration",
        ),
        pytest.param(
            edited('tiers = ["tech_touch"]', 'tiers = ["tech_touch", "tech_touch"]'),
            "programs.onboarding_webinar.tiers",
            "a tier is listed twice",
            id="program-tier-twice",
        ),
        pytest.param(
            edited(
                'join_url = "https://example.com/webinars/onboarding"',
                'join_url = "example.com/webinars"',
            ),
            "programs.onboarding_webinar.join_url",
            "'example.com/webinars' is not a web address (https://...)",
            id="program-join-url",
        ),
        pytest.param(
            edited(
                'organizer = "customer-education@example.com"', 'organizer = "customer education"'
            ),
            "programs.onboarding_webinar.organizer",
            "'customer education' is not an email address",
            id="program-organizer",
        ),
        pytest.param(
            edited('attended_event = "webinar_attended"', 'attended_event = "setup_completed"'),
            "programs.onboarding_webinar.attended_event",
            "'setup_completed' completes milestone technical_setup; attendance needs an event "
            "of its own",
            id="program-attendance-is-a-milestone-event",
        ),
        pytest.param(
            edited('template = "program_invitation"', 'template = "program_invite"'),
            "programs.onboarding_webinar.template",
            "no template 'program_invite'",
            id="program-unknown-template",
        ),
        pytest.param(
            edited("invite_after_days = 1", "invite_after_days = -1"),
            "programs.onboarding_webinar.invite_after_days",
            "greater than or equal to 0",
            id="program-invite-day",
        ),
        pytest.param(
            edited("csm_high_touch_accounts = 15 ", "csm_high_touch_accounts = 0 "),
            "capacity.csm_high_touch_accounts",
            "Input should be greater than or equal to 1",
            id="capacity-zero",
        ),
        pytest.param(
            edited("csm_low_touch_accounts = 80 ", "csm_low_touch_accounts = 10 "),
            "capacity",
            "csm_low_touch_accounts: 10 is below csm_high_touch_accounts (15); a low-touch "
            "account takes less of a CSM than a high-touch one",
            id="capacity-low-touch-below-high-touch",
        ),
        pytest.param(
            edited(
                'specialist_gates = ["technical_setup", "data_import"]',
                'specialist_gates = ["setup"]',
            ),
            "capacity.specialist_gates",
            "setup is not a milestone id",
            id="capacity-unknown-gate",
        ),
        pytest.param(
            edited(
                'specialist_tiers = ["high_touch"]',
                'specialist_tiers = ["high_touch", "high_touch"]',
            ),
            "capacity",
            "specialist_tiers: high_touch listed twice",
            id="capacity-tier-twice",
        ),
        pytest.param(
            edited('leadership_template = "leadership_over_capacity"', 'leadership_template = "x"'),
            "capacity.leadership_template",
            "no template 'x'",
            id="capacity-unknown-template",
        ),
        pytest.param(
            edited('ttv = "first_engagement"', 'ttv = "first_engagement"\ndue_unit = "weeks"'),
            "milestones[1](kickoff_call).due_unit",
            "'days', 'business_days' or 'business_hours'",
            id="unknown-due-unit",
        ),
        pytest.param(
            edited(
                'ttv = "first_engagement"', 'ttv = "first_engagement"\ndue_unit = "business_days"'
            ),
            "milestones.kickoff_call.due_days.high_touch",
            "14 business days (about 19.6 days on a five-day week) is after phase kickoff "
            "ends (day 14)",
            id="business-days-past-the-phase",
        ),
        pytest.param(
            edited('workday_end = "17:00"', 'workday_end = "08:00"'),
            "business_calendar",
            "workday_end: 08:00 is not after workday_start 09:00",
            id="workday-ends-before-it-starts",
        ),
        pytest.param(
            edited('workday_start = "09:00"', 'workday_start = "9am"'),
            "business_calendar.workday_start",
            "String should match pattern",
            id="workday-not-hh-mm",
        ),
        pytest.param(
            edited("repeat_days = 7\n", 'repeat_days = 7\ndays_unit = "business_days"\n'),
            "ladder.high_touch[5](stall_status_email)",
            "days_unit: a repeating step counts calendar days, not business_days",
            id="business-days-on-a-repeating-step",
        ),
        pytest.param(
            edited(
                "active_days = 7\ndays = 7\n",
                'active_days = 7\ndays = 7\ndays_unit = "business_hours"\n',
            ),
            "ladder.high_touch[10](usage_drop)",
            "days_unit: usage_drop counts calendar days; business_hours is for steps counted "
            "from closed-won or the last progress",
            id="business-hours-on-a-behavioral-step",
        ),
        pytest.param(
            edited(
                '[[ladder.self_serve]]\nid = "stall_decision"',
                '[[ladder.self_serve]]\nid = "handoff_late"\nwhen = "no_handoff"\ndays = 1\n'
                'actions = [{ flag = "late" }]\n\n[[ladder.self_serve]]\nid = "stall_decision"',
            ),
            "ladder.self_serve.handoff_late",
            "tier self_serve plans no first-engagement gate (a milestone with ttv = "
            '"first_engagement") for no_handoff to watch',
            id="handoff-step-without-an-engagement-gate",
        ),
        pytest.param(
            edited('first_value_when = ["admin", "end_user"]', 'first_value_when = ["end_users"]'),
            "activation",
            "first_value_when: end_users is not a role of activation.roles",
            id="activation-rule-unknown-role",
        ),
        pytest.param(
            edited('first_value_when = ["admin", "end_user"]', "first_value_when = []"),
            "activation.first_value_when",
            "at least 1 item",
            id="activation-rule-empty",
        ),
        pytest.param(
            edited("users = 3", "users = 0"),
            "activation.roles.end_user.users",
            "greater than or equal to 1",
            id="activation-no-users",
        ),
        pytest.param(
            edited('events = ["core_workflow_completed"]', "events = []"),
            "activation.roles.end_user.events",
            "at least 1 item",
            id="activation-no-events",
        ),
        pytest.param(
            edited('values = ["end_user", "user", "member"]', 'values = ["end_user", "IT-Admin"]'),
            "activation",
            "roles.end_user.values: 'it_admin' already means role admin",
            id="activation-value-of-two-roles",
        ),
        pytest.param(
            edited('events = ["report_viewed", "dashboard_viewed"]', 'events = ["identify"]'),
            "activation.roles.executive_sponsor.events",
            "'identify': an identify call says who a user is, not what they did",
            id="activation-identify-is-no-path",
        ),
        pytest.param(
            edited(
                'events = ["report_viewed", "dashboard_viewed"]', 'events = ["webinar_attended"]'
            ),
            "activation.roles.executive_sponsor.events",
            "'webinar_attended': it is a group program's attendance",
            id="activation-attendance-is-no-path",
        ),
        pytest.param(
            edited(
                'completed_by = { event = "setup_completed" }',
                'completed_by = { event = "setup_completed", where = { ok = true } }',
            ),
            "activation.roles.admin.events",
            "'setup_completed': milestone technical_setup counts it only under conditions",
            id="activation-path-event-with-conditions",
        ),
        pytest.param(
            edited("[activation.roles.admin]", "[activation.roles.Admin]"),
            "activation.roles.Admin",
            "String should match pattern",
            id="activation-role-id",
        ),
        pytest.param(
            edited("automated_only = true", "automated_only = true\ntier_bump = 1"),
            "tracks.trial",
            "automated_only: an automated-only track runs self_serve, so tier_bump 1 cannot "
            "move it up",
            id="trial-automated-only-with-a-bump",
        ),
        pytest.param(
            edited("automated_only = true", 'automated_only = "always"'),
            "tracks.trial.automated_only",
            "Input should be a valid boolean",
            id="trial-automated-only-not-a-boolean",
        ),
        pytest.param(
            edited('skip = ["kickoff_call", "first_training"]', 'skip = ["kickoff"]'),
            "tracks.trial.skip",
            "kickoff is not a milestone id",
            id="trial-skips-an-unknown-milestone",
        ),
        pytest.param(
            edited('when = "health_at_risk"\n', 'when = "health_at_risk"\ndays = 2\n'),
            "ladder.high_touch[13](health_at_risk)",
            "days: health_at_risk fires when the health enters its band, not days after",
            id="health-step-with-days",
        ),
        pytest.param(
            edited('when = "health_critical"\n', 'when = "health_critical"\nrepeat_days = 7\n'),
            "ladder.high_touch[14](health_critical)",
            "repeat_days is only for no_progress",
            id="health-step-repeating",
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
    copy.write_text(edited('version = "2026.12.3"', 'version = "2027.1.0"'), encoding="utf-8")
    pb = load_playbook(copy)
    assert pb.version == "2027.1.0"
    assert pb.content_hash != load_playbook().content_hash


# --------------------------------------------------------------------------- properties

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # inf, nan and 1e+20 are TOML too
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def to_toml(document: dict[str, Any]) -> str:
    """A document as TOML (inline tables), for mutations of the default playbook."""
    return "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in document.items())


DEFAULT_DOC = tomllib.loads(TEXT)
assert tomllib.loads(to_toml(DEFAULT_DOC)) == DEFAULT_DOC


def key_paths(node: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every key and list element of a document, parents before children."""
    children: list[tuple[str | int, object]] = []
    if isinstance(node, dict):
        children = list(node.items())
    elif isinstance(node, list):
        children = list(enumerate(node))
    out = []
    for key, child in children:
        out += [(*path, key), *key_paths(child, (*path, key))]
    return out


DEFAULT_PATHS = key_paths(DEFAULT_DOC)
wrong_types = st.sampled_from(["x", "", 7, 1.5, True, [], {}, [1, "a"], {"x": 1}])


def mutated(document: dict[str, Any], path: tuple[str | int, ...], how: str, new: object) -> str:
    doc = copy.deepcopy(document)
    *parents, last = path
    node: Any = doc
    for part in parents:
        node = node[part]
    if how == "drop":
        del node[last]
    elif how == "negate" and type(node[last]) in (int, float):
        node[last] = -node[last] if node[last] else -1
    else:
        node[last] = new
    return to_toml(doc)


PLAYBOOK_KEYS = set(Playbook.model_fields)


def assert_refused_naming_keys(error: PlaybookError, text: str) -> None:
    """Every problem starts with the key at fault (`tier_rule.smb_floor_acv_usd: ...`):
    a playbook key, or a key of the file the playbook does not know. A whole-playbook
    check says "(top level)" and then names the key."""
    try:
        keys = PLAYBOOK_KEYS | set(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, RecursionError):
        keys = PLAYBOOK_KEYS
    assert error.problems, str(error)
    for problem in error.problems:
        if problem.startswith("not valid TOML: "):
            continue
        key, _, reason = problem.removeprefix("(top level): ").partition(": ")
        assert reason, problem
        assert any(key == k or key.startswith((f"{k}.", f"{k}[")) for k in keys), problem


@settings(PROPERTY, max_examples=100)
@given(
    path=st.sampled_from(DEFAULT_PATHS),
    how=st.sampled_from(["drop", "negate", "retype"]),
    new=wrong_types,
)
def test_a_damaged_playbook_loads_or_is_refused_naming_the_key(
    path: tuple[str | int, ...], how: str, new: object
) -> None:
    text = mutated(DEFAULT_DOC, path, how, new)
    try:
        parse_playbook(text)
    except PlaybookError as error:
        assert_refused_naming_keys(error, text)


@settings(PROPERTY, max_examples=200)
@given(text=st.text(max_size=200) | st.sampled_from(TEXT.splitlines(keepends=True)))
@example(text="a = " + "[" * 5_000 + "]" * 5_000)  # deep nesting: RecursionError in tomllib
@example(text="a = " + "{b = " * 3_000 + "1" + "}" * 3_000)
def test_any_text_loads_or_is_refused_as_a_playbook_error(text: str) -> None:
    try:
        parse_playbook(text)
    except PlaybookError as error:
        assert_refused_naming_keys(error, text)


@settings(PROPERTY, max_examples=100)
@given(data=st.binary(max_size=200) | st.just(TEXT.encode("utf-16")))
@example(data=b"\xff\xfeversion = 1")  # not UTF-8: UnicodeDecodeError escapes load_playbook
def test_any_file_loads_or_is_refused_as_a_playbook_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "playbook.toml"
        path.write_bytes(data)
        try:
            load_playbook(path)
        except PlaybookError as error:
            assert str(path) in str(error)


def test_the_playbook_mutations_start_from_the_default_playbook() -> None:
    """Re-emitted as TOML, the default playbook loads the same (else every refusal of a
    mutation could be the emitter's fault)."""
    loaded = parse_playbook(to_toml(DEFAULT_DOC))
    assert loaded.model_dump(exclude={"content_hash"}) == load_playbook().model_dump(
        exclude={"content_hash"}
    )


def test_each_tier_needs_criteria_and_decision_steps_yet_a_pinned_one_loads() -> None:
    """rules §4, §6.1 (docs/rules.md): the loader refuses a ladder without them, one
    problem per tier and rule; a playbook pinned in a running onboarding before this
    rule is not refused when its input is read again."""
    without = edited(
        'id = "no_success_criteria"\nwhen = "no_success_criteria"', 'id = "x"\nwhen = "no_login"', 3
    )
    without = without.replace("{ require_decision = true },", '{ flag = "stalled" },')
    found = problems(without)
    assert [p.partition(":")[0] for p in found] == [f"ladder.{t.value}" for t in Tier for _ in "ab"]
    assert Playbook.model_validate(tomllib.loads(without)).ladder.keys() == set(Tier)


def test_a_template_is_a_nudge_unless_it_says_otherwise() -> None:
    pb = parse_playbook(
        edited('[templates.all_set]\nkind = "celebration"\n', "[templates.all_set]\n")
    )
    assert pb.templates["all_set"].kind == "nudge"
    assert load_playbook().templates["all_set"].kind == "celebration"


def test_no_message_to_the_customer_names_the_internal_tier() -> None:
    """Tiers are the vendor's words (high_touch, tech_touch): the customer's messages say
    what changes for them, never `$tier`."""
    pb = load_playbook()
    customer = {"welcome", "tier_changed", "handoff_complete"}
    customer |= {m.on_done for m in pb.milestones if m.on_done}
    customer |= {p.template for p in pb.programs.values()}
    customer |= {
        a.template
        for steps in pb.ladder.values()
        for s in steps
        for a in s.actions
        if a.template and a.notify in (Audience.CUSTOMER, Audience.EXECUTIVE_SPONSOR)
    }
    named = sorted(t for t in customer if "$tier" in pb.templates[t].subject + pb.templates[t].body)
    assert named == []

"""Soak: a fleet of onboardings under load, the worker killed mid-run, every effect counted.

    .venv/bin/python bench/soak.py            # or: make soak   (--quick: 100 onboardings, 1 kill)

On a throwaway dev server (SQLite on /dev/shm), with a `python worker.py` and a uvicorn
ingress, each its own process:

1. `--onboardings` deals arrive as signed `/webhooks/deals` posts (16 in flight), across
   the tiers, closed-won in the past: most so that ladder steps are already due when the
   onboarding starts (catch-up), a tenth so that steps come due during the run (durable
   timers).
2. A storm of Segment batches to `/events` (milestone events, noise, resent messageIds)
   while a fifth of the fleet is paused, paused then resumed, or has its tier overridden
   (SDK updates), and 3% of the deals are delivered again (a CRM retrying); then
   `milestone_reached` signals complete some onboardings.
3. Throughout, the worker is killed with SIGKILL `--kills` times, at evenly spaced points
   of the run's requests, and restarted at once.

Once the worker has caught up, every onboarding's status and the notifier's sent log
(`ONBOARDING_SENT_LOG`) are compared with what should have happened ("expected"):

- milestones: those of the plan whose completing events (count met by distinct
  messageIds) or `milestone_reached` signal were sent;
- escalations: the ladder replayed on the project's pure rules (`rules.ladder_steps`,
  `rules.replan`) over what was sent to the account (start, pause, resume, override,
  progress) and when, up to the check (`Replay`);
- notifications: the idempotency keys of the effects above (welcome, owner assigned,
  ladder notifies, tier changed, milestone reached, handoff; none to a paused customer),
  each exactly once in the sent log; and every notify action of a fired escalation in the
  statuses has its line in the sent log.

`lost` counts expected effects missing, `duplicated` effects seen more than once (sent-log
lines, escalations, onboardings), `unexpected` effects the rules do not explain. The last
line printed is one JSON object; the exit status is 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

# bench/ingress.py: `python bench/soak.py` puts bench/ first on sys.path.
from ingress import (
    ROOT,
    BenchError,
    Sender,
    Stack,
    _memory_dir,
    _running,
    _tail,
    _until_ready,
    settle,
    timed,
)
from temporalio.client import WorkflowExecutionStatus

from activities.client import connect
from starter.client import worker_catching_up
from starter.devserver import free_port, start_dev_server
from starter.signatures import SEGMENT_SIGNATURE, sign_segment, standard_webhook_headers
from workflows import rules
from workflows.event_mapping import awaited_events
from workflows.models import (
    Audience,
    ClosedWonDeal,
    Milestone,
    MilestoneReport,
    MilestoneStatus,
    OnboardingProgress,
    OnboardingState,
    OnboardingStatus,
    Pause,
    PauseRequest,
    Playbook,
    ResumeRequest,
    Tier,
    TierChange,
    TierOverride,
    Trigger,
    workflow_id_for,
)
from workflows.playbook import load_playbook
from workflows.progress import shift_for_pause

T = TypeVar("T")
DAY = timedelta(days=1)
SEGMENT_BATCH = 100
NOISE = ("page_viewed", "feature_used", "button_clicked", "report_exported", "search_run")
# How far each account gets: the events sent for it, and at the end its manual milestones.
LEVELS = ("none", "login", "setup", "value", "invites_resent", "adoption", "complete")
# Days since closed-won at the start, per tier: each half a day off the whole days the
# ladder counts in, so no catch-up step comes due within 12 hours of the run. A
# self_serve account 16.5 days in is upgraded to tech_touch by its ladder at start.
CATCH_UP_DAYS = {
    Tier.HIGH_TOUCH: (0.5, 5.5, 8.5, 15.5, 22.5),
    Tier.TECH_TOUCH: (0.5, 3.5, 8.5, 15.5, 22.5),
    Tier.SELF_SERVE: (0.5, 3.5, 8.5, 16.5),
}
# Who overrides to what: an upgrade that assigns a CSM, one that keeps it, a downgrade.
OVERRIDES = {
    Tier.SELF_SERVE: Tier.HIGH_TOUCH,
    Tier.TECH_TOUCH: Tier.HIGH_TOUCH,
    Tier.HIGH_TOUCH: Tier.TECH_TOUCH,
}
Group = Literal["plain", "pause", "pause_resume", "override"]
GROUPS: tuple[Group, ...] = ("plain", "pause", "pause_resume", "override")


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Options:
    onboardings: int
    kills: int
    concurrency: int
    seed: int


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 onboardings, 1 kill")
    parser.add_argument("--onboardings", type=int, help="onboardings started (1000; quick 100)")
    parser.add_argument("--kills", type=int, help="worker SIGKILLs during the run (2; quick 1)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--seed", type=int, default=11, help="seed of the fleet and its traffic")
    args = parser.parse_args(argv)
    onboardings = args.onboardings or (100 if args.quick else 1000)
    kills = args.kills if args.kills is not None else (1 if args.quick else 2)
    if onboardings < 20 or kills < 0:
        parser.error("--onboardings must be >= 20 and --kills >= 0")
    return Options(onboardings, kills, args.concurrency, args.seed)


# --------------------------------------------------------------------------- the rules' answer

# An escalation: tier, step id, milestone id, superseded. Not its due time: one counted
# from an override or a resume depends on when the worker took it.
Escalated = tuple[str, str, str | None, bool]


class Replay:
    """What the rules say one onboarding does, given what was sent to it and when.

    What is not under test comes from the project (`rules.ladder_steps`, `rules.replan`,
    `progress.shift_for_pause`); what is, the workflow's effects, is formulated here
    independently of `workflows/progress.py`, by effect keys only: run every ladder step
    due by `now` (a recurring step whose next repeat is due too is only recorded,
    superseded), re-plan on a tier change (recording the new ladder's passed steps as
    superseded), credit milestones, and collect the notification keys. The soak sends
    each account's messages in a fixed order (start; then pause, resume or override;
    then progress), no catch-up step comes due within 12 hours of the run, and the
    accounts whose steps do come due during it are sent nothing: so the answer does not
    depend on when exactly the worker took each message. Pauses last seconds: their
    14-day owner reminder never comes due.
    """

    def __init__(self, playbook: Playbook, deal: ClosedWonDeal, now: datetime) -> None:
        self.playbook = playbook
        self.workflow_id = workflow_id_for(deal.account_id)
        decision = rules.assign_tier(deal, playbook.tier_rule)
        self.progress = OnboardingProgress(
            tier=decision.tier,
            tier_decision=decision,
            milestones=rules.build_plan(playbook, decision.tier, deal.close_date),
            contacts=deal.contacts,
            success_criteria=deal.success_criteria,
            started_at=now,
            clock_start=deal.close_date,
            last_progress_at=deal.close_date,
        )
        self.escalations: Counter[Escalated] = Counter()
        self.notifications: set[str] = set()
        self.owner = False
        self.owner_wanted = decision.tier is not Tier.SELF_SERVE
        self.counts: Counter[str] = Counter()
        self.seen: set[str] = set()
        self._notify("welcome", Audience.CUSTOMER)
        self._loop(now)

    # ------------------------------------------------------------------ what is sent

    def pause(self, now: datetime) -> None:
        self.progress.pause = Pause(by="soak", reason="soak", since=now)
        self.progress.decision_required = False
        self._loop(now)

    def resume(self, now: datetime) -> None:
        """Open deadlines and clocks shift by the time paused (the project's own
        `progress.shift_for_pause`: the arithmetic is not what the soak checks)."""
        shift_for_pause(self.progress, now)
        self._loop(now)

    def override(self, tier: Tier, now: datetime) -> None:
        self._change_tier(tier, now, "override")
        self._loop(now)

    def product_event(self, name: str, event_id: str, now: datetime) -> None:
        """Counted once per messageId, and only while an open milestone awaits it (the
        ingress drops the rest before they reach the workflow)."""
        awaited = awaited_events(self.playbook, self.progress.milestones)
        if self.progress.finished_at or name not in awaited or event_id in self.seen:
            return
        self.seen.add(event_id)
        self.counts[name] += 1
        self._credit(now)
        self._loop(now)

    def milestone_reached(self, milestone_id: str, event_id: str, now: datetime) -> None:
        if event_id in self.seen:
            return
        self.seen.add(event_id)
        if (m := self._milestone(milestone_id)) is not None:
            self._reach(m, now)
        self._loop(now)

    def check(self, now: datetime) -> None:
        """Everything due by `now` (the end of the run)."""
        self._loop(now)

    @property
    def done(self) -> set[str]:
        return {m.id for m in self.progress.milestones if m.status is MilestoneStatus.DONE}

    def manual_milestones(self) -> list[str]:
        """Open milestones of the plan no product event completes (reported by people)."""
        return [
            m.id
            for m in self.progress.milestones
            if m.is_open and (s := self.playbook.milestone(m.id)) and s.completed_by is None
        ]

    # ------------------------------------------------------------------ the rules

    def _loop(self, now: datetime) -> None:
        """One turn of the workflow's loop: what came due, then the owner assignment."""
        self._advance(now)
        if self.owner_wanted and not self.owner:
            self.owner = True
            self._notify(f"owner-{len(self.progress.tier_changes)}", Audience.CSM)

    def _advance(self, now: datetime) -> None:
        p = self.progress
        if p.finished_at is not None:
            return
        while due := [s for s in rules.ladder_steps(p, self.playbook) if s.at <= now]:
            step = due[0]
            repeat = step.step.repeat_days
            if repeat and step.at + repeat * DAY <= now:
                self._record(step, superseded=True)
            else:
                self._escalate(step, now)
        if rules.current_phase(p.milestones) is None:
            p.finished_at = now
            self._notify("handoff", Audience.CUSTOMER)
            if self.owner:
                self._notify("handoff", Audience.CSM)

    def _escalate(self, due: rules.DueStep, now: datetime) -> None:
        p = self.progress
        self._record(due, superseded=False)
        for action in due.step.actions:
            if action.notify is not None:
                self._notify(due.key, action.notify)
            elif action.change_tier is not None and action.change_tier is not p.tier:
                self._change_tier(action.change_tier, now, "automatic")
            elif action.adopt_fallback_criteria:
                p.success_criteria = [self.playbook.fallback_success_criterion]

    def _change_tier(
        self, tier: Tier, now: datetime, kind: Literal["automatic", "override"]
    ) -> None:
        p = self.progress
        old = p.tier
        p.tier_changes.append(
            TierChange(at=now, from_tier=old, to_tier=tier, kind=kind, by="soak", reason="soak")
        )
        p.tier = tier
        p.milestones = rules.replan(self.playbook, p.milestones, tier, now)
        self._credit(now)
        p.last_progress_at = now
        p.progress_epoch += 1
        while passed := [s for s in rules.ladder_steps(p, self.playbook) if s.at <= now]:
            for due in passed:
                self._record(due, superseded=True)
        if tier.rank > old.rank and not self.owner:
            self.owner_wanted = True
        self._notify(f"tier-change-{len(p.tier_changes)}", Audience.CUSTOMER)

    def _record(self, due: rules.DueStep, superseded: bool) -> None:
        self.progress.fired.append(due.key)
        self.escalations[(self.progress.tier.value, due.step.id, due.milestone_id, superseded)] += 1

    def _milestone(self, milestone_id: str) -> Milestone | None:
        return next((m for m in self.progress.milestones if m.id == milestone_id), None)

    def _credit(self, now: datetime) -> None:
        for m in self.progress.milestones:
            spec = self.playbook.milestone(m.id)
            rule = spec.completed_by if spec else None
            if m.is_open and rule and sum(self.counts[e] for e in rule.events) >= rule.count:
                self._reach(m, now)

    def _reach(self, m: Milestone, now: datetime) -> None:
        p = self.progress
        if not m.is_open:
            return
        m.status, m.done_at, m.started_at = MilestoneStatus.DONE, now, m.started_at or now
        spec = self.playbook.milestone(m.id)
        if spec is not None and spec.on_done:
            self._notify(f"reached-{m.id}", Audience.CUSTOMER)
        p.last_progress_at = max(p.last_progress_at, now)
        p.progress_epoch += 1
        p.decision_required = False

    def _notify(self, trigger: str, audience: Audience) -> None:
        if self.progress.pause is not None and audience is Audience.CUSTOMER:
            return  # a formal pause sends the customer nothing
        self.notifications.add(f"{self.workflow_id}:{trigger}:{audience.value}")


# --------------------------------------------------------------------------- the fleet


@dataclass
class Account:
    id: str
    deal: ClosedWonDeal
    timer: bool  # closed-won so that ladder steps come due during the run; nothing sent
    level: str
    group: Group
    expected: Replay  # what the rules say it does, given what the run sends it
    calls: list[dict[str, Any]] = field(default_factory=list)  # its Segment calls


def _deal(rng: random.Random, account_id: str, close_date: datetime, tier: Tier) -> ClosedWonDeal:
    """A deal the tier rule puts in `tier`, by a spread of ACVs and clauses."""
    fields: dict[str, Any]
    if tier is Tier.HIGH_TOUCH:
        fields = rng.choice(
            [
                {"acv_usd": rng.randrange(50_000, 250_000)},
                {"acv_usd": rng.randrange(8_000, 49_000), "stakeholder_count": 4},
                {"acv_usd": rng.randrange(8_000, 49_000), "needs_api_integration": True},
            ]
        )
    elif tier is Tier.TECH_TOUCH:
        fields = rng.choice(
            [
                {"acv_usd": rng.randrange(5_000, 50_000), "configuration_hours": 1},
                {"acv_usd": rng.randrange(500, 5_000), "integrations": ["slack"]},  # next up
            ]
        )
    else:
        fields = {"acv_usd": rng.randrange(300, 5_000)}
    contacts = [{"name": "Casey", "email": f"casey@{account_id}.example", "role": "champion"}]
    if tier is Tier.HIGH_TOUCH:
        contacts.append(
            {"name": "Sam", "email": f"sam@{account_id}.example", "role": "executive_sponsor"}
        )
    return ClosedWonDeal.model_validate(
        {
            "account_id": account_id,
            "account_name": f"Soak {account_id}",
            "seats": rng.randrange(5, 500),
            "close_date": close_date,
            "contacts": contacts,
            "success_criteria": ["weekly active use by the team"] if rng.random() < 0.5 else [],
            "crm": {"source": "generic", "deal_id": f"D-{account_id}"},
            **fields,
        }
    )


def _call(account: str, n: int, event: str, user: int, now: str) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": f"{account}-m{n}",
        "event": event,
        "groupId": account,
        "userId": f"{account}-user-{user}",
        "timestamp": now,
        "properties": {"path": "/app"},
    }


def _progress_calls(rng: random.Random, account: str, level: str) -> list[dict[str, Any]]:
    """The account's milestone events for its level, with noise around them."""
    rank = LEVELS.index(level)
    now = datetime.now(UTC).isoformat()
    events: list[tuple[str, int]] = []
    if rank >= LEVELS.index("login"):
        events += [("user_logged_in", u) for u in range(rng.randint(1, 3))]
    if rank >= LEVELS.index("setup"):
        events += [("setup_completed", 0), ("data_import_validated", 0)]
    if rank >= LEVELS.index("value"):
        events.append(("core_workflow_completed", 0))
    if level == "invites_resent":
        events += [("user_invited", 1), ("user_invited", 2)]
    elif rank >= LEVELS.index("adoption"):
        events += [("user_invited", 1), ("user_invited", 2), ("user_invited", 3)]
    calls = [_call(account, n, name, user, now) for n, (name, user) in enumerate(events)]
    if level == "invites_resent":  # two invites, each resent: team adoption needs 3 users
        calls += [dict(c) for c in calls if c["event"] == "user_invited"]
    noise = [
        _call(account, 100 + n, rng.choice(NOISE), rng.randrange(9), now)
        for n in range(2 + 3 * len(events))
    ]
    return calls + noise


def plan_fleet(options: Options, playbook: Playbook, t0: datetime) -> list[Account]:
    rng = random.Random(options.seed)
    login = playbook.milestone(playbook.login_milestone)
    assert login is not None
    timer_spread = 10 + options.onboardings * 0.15  # seconds after t0
    fleet: list[Account] = []
    for i in range(options.onboardings):
        account_id = f"soak-{i:05d}"
        tier = rng.choice(list(Tier))
        timer = i % 10 == 9
        group: Group = "plain"
        level = "none"
        if timer:  # the login deadline and the no-login step come due during the run
            offset = timedelta(seconds=rng.uniform(10, timer_spread))
            close = t0 - login.due_days[tier] * DAY + offset
        else:
            close = t0 - rng.choice(CATCH_UP_DAYS[tier]) * DAY
            level = rng.choice(LEVELS)
            group = rng.choices(GROUPS, weights=(80, 5, 5, 10))[0]
        deal = _deal(rng, account_id, close, tier)
        account = Account(account_id, deal, timer, level, group, Replay(playbook, deal, t0))
        account.calls = _progress_calls(rng, account_id, level)
        fleet.append(account)
    return fleet


def event_batches(rng: random.Random, accounts: Sequence[Account]) -> list[list[dict[str, Any]]]:
    """The accounts' calls shuffled together in batches of 100; 3% are resent later (a
    retrying sender), some of them in the same batch."""
    calls = [c for a in accounts for c in a.calls]
    rng.shuffle(calls)
    for _ in range(len(calls) * 3 // 100):
        at = rng.randrange(len(calls))
        calls.insert(rng.randrange(at, len(calls) + 1), dict(calls[at]))
    return [calls[i : i + SEGMENT_BATCH] for i in range(0, len(calls), SEGMENT_BATCH)]


# --------------------------------------------------------------------------- the stack


def peak_rss_kb(pid: int) -> int:
    """The process's peak resident set (VmHWM) so far; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class Workers:
    """`python worker.py`, one at a time: killed with SIGKILL and restarted on demand."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir = env, log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0
        self.kills = 0
        self.peaks_kb: list[int] = []  # of each process that has stopped

    def log(self) -> Path:
        return self.log_dir / f"worker-{self.started}.log"

    def start(self) -> None:
        self.started += 1
        with open(self.log(), "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "worker.py"],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> subprocess.Popen[bytes]:
        if self.process is None or self.process.poll() is not None:
            code = self.process.returncode if self.process else None
            raise BenchError(f"the worker exited by itself (code {code}):\n{_tail(self.log())}")
        return self.process

    def kill_and_restart(self) -> None:
        process = self.alive()
        self.peaks_kb.append(peak_rss_kb(process.pid))
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        self.kills += 1
        self.start()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.peaks_kb.append(peak_rss_kb(self.process.pid))
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


@dataclass
class Soak:
    stack: Stack
    workers: Workers
    sent_log: Path


@asynccontextmanager
async def soak_stack() -> AsyncIterator[Soak]:
    """Dev server, a killable `python worker.py` and a uvicorn ingress."""
    with tempfile.TemporaryDirectory(prefix="bench-soak-", dir=_memory_dir()) as tmp_dir:
        tmp = Path(tmp_dir)
        server = await start_dev_server(
            port=free_port(), ui_port=free_port(), db_path=tmp / "temporal.db", headless=True
        )
        webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        segment_secret = secrets.token_hex(16)
        sent_log = tmp / "sent.jsonl"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")} | {
            "TEMPORAL_ADDRESS": server.address,
            "TEMPORAL_NAMESPACE": server.namespace,
            "TEMPORAL_CONFIG_FILE": str(tmp / "no-such-temporal.toml"),
            "ONBOARDING_NOTIFY_CHANNELS": "log",
            "ONBOARDING_SENT_LOG": str(sent_log),
            "ONBOARDING_WEBHOOK_SECRETS": webhook_secret,
            "ONBOARDING_SEGMENT_SECRETS": segment_secret,
        }
        port = free_port()
        uvicorn = [sys.executable, "-m", "uvicorn", "--factory", "starter.app:create_app"]
        uvicorn += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
        uvicorn += ["--timeout-keep-alive", "600"]
        workers = Workers(env, tmp)
        try:
            with _running(uvicorn, env, tmp / "ingress.log") as ingress:
                workers.start()
                http = Sender(port)
                try:
                    await _until_ready(http, ingress, tmp / "ingress.log")
                    stack = Stack(
                        server=server,
                        client=await connect(address=server.address),
                        http=http,
                        playbook=load_playbook(),
                        webhook_secret=webhook_secret,
                        segment_secret=segment_secret,
                    )
                    yield Soak(stack, workers, sent_log)
                finally:
                    http.close()
                    workers.stop()
        finally:
            await server.stop()


# --------------------------------------------------------------------------- the run


class Chaos:
    """Kills the worker at evenly spaced points of the run's requests."""

    def __init__(self, workers: Workers, requests: int, kills: int) -> None:
        self.workers = workers
        self.requests = requests
        self.points = [requests * (k + 1) // (kills + 1) for k in range(kills)]
        self.done = 0

    def tick(self) -> None:
        self.done += 1
        self.workers.alive()
        while self.points and self.done >= self.points[0]:
            self.points.pop(0)
            self.workers.kill_and_restart()
            print(
                f"  worker killed (SIGKILL) after {self.done} of {self.requests} requests; "
                "restarted",
                flush=True,
            )

    def counted(self, call: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await call()
            self.tick()

        return run


@dataclass
class Traffic:
    """What the run sent, and what the ingress answered."""

    retries: int = 0  # 503s answered while Temporal was busy; the sender retried
    catching_up: int = 0  # updates, signals, queries refused while a worker caught up
    webhooks: int = 0
    events: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    signals: int = 0
    updates: int = 0
    start_seconds: float = 0
    caught_up_seconds: float = 0
    event_seconds: float = 0


async def post(
    soak: Soak, traffic: Traffic, path: str, body: bytes, headers: Callable[[], dict[str, str]]
) -> Any:
    """POST, retried on 503 (Temporal did not answer in time) as a CRM or Segment would;
    any other refusal stops the run."""
    for _ in range(120):
        status, answer = await soak.stack.http.request(
            "POST", path, body, {"content-type": "application/json", **headers()}
        )
        if status != 503:
            break
        traffic.retries += 1
        await asyncio.sleep(1)
    if not 200 <= status < 300:
        raise BenchError(f"POST {path} answered {status}: {answer.decode(errors='replace')}")
    return json.loads(answer)


async def patiently(traffic: Traffic, call: Callable[[], Awaitable[T]]) -> T:
    """`call()` (an update, signal or query), retried while the onboarding's worker catches
    up: right after a kill its workflow task is being retried, and Temporal refuses
    updates and queries meanwhile, recording nothing. Backoff 0.5 s doubling to 5 s, for
    at most 3 minutes; then the run is not valid."""
    delay, deadline = 0.5, time.monotonic() + 180
    while True:
        try:
            return await call()
        except Exception as exc:
            if not worker_catching_up(exc):
                raise
            if time.monotonic() > deadline:
                raise BenchError(f"the worker did not catch up within 3 minutes: {exc}") from exc
        traffic.catching_up += 1
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)


def webhook(soak: Soak, traffic: Traffic, account: Account) -> Callable[[], Awaitable[object]]:
    """The deal, signed at each attempt (a retry is signed afresh, same webhook id)."""
    stack = soak.stack
    body = account.deal.model_dump_json().encode()

    async def send() -> None:
        headers = lambda: standard_webhook_headers(  # noqa: E731
            stack.webhook_secret, body, f"msg_{account.id}"
        )
        await post(soak, traffic, "/webhooks/deals", body, headers)
        traffic.webhooks += 1

    return send


def events_post(
    soak: Soak, traffic: Traffic, calls: list[dict[str, Any]]
) -> Callable[[], Awaitable[object]]:
    stack = soak.stack

    async def send() -> None:
        body = json.dumps({"batch": calls, "sentAt": datetime.now(UTC).isoformat()}).encode()
        headers = lambda: {SEGMENT_SIGNATURE: sign_segment(stack.segment_secret, body)}  # noqa: E731
        answer = await post(soak, traffic, "/events", body, headers)
        traffic.events += len(calls)
        traffic.outcomes.update({k: answer[k] for k in ("accepted", "duplicate", "ignored")})
        if answer["rejected"]:
            raise BenchError(f"/events rejected {answer['rejected']} calls: {answer['events']}")

    return send


def expect_events(by_id: dict[str, Account], batches: list[list[dict[str, Any]]]) -> None:
    """The rules' side of a wave of events: the same calls in the same order, worked out
    before the wave, off the clock (when exactly does not matter: see `Replay`)."""
    now = datetime.now(UTC)
    for batch in batches:
        for c in batch:
            by_id[c["groupId"]].expected.product_event(c["event"], c["messageId"], now)


def updates(soak: Soak, traffic: Traffic, account: Account) -> Callable[[], Awaitable[object]]:
    """Pause (and resume) or override the tier, as a CSM or manager would."""
    handle = soak.stack.client.get_workflow_handle(workflow_id_for(account.id))
    expected = account.expected

    async def send() -> None:
        if account.group in ("pause", "pause_resume"):
            request = PauseRequest(by="csm@soak.example", reason="customer reorganising")
            await patiently(traffic, partial(handle.execute_update, "pause", request))
            expected.pause(datetime.now(UTC))
            traffic.updates += 1
        if account.group == "pause_resume":
            resume = ResumeRequest(by="csm@soak.example", reason="back on track")
            await patiently(traffic, partial(handle.execute_update, "resume", resume))
            expected.resume(datetime.now(UTC))
            traffic.updates += 1
        if account.group == "override":
            tier = OVERRIDES[expected.progress.tier]
            override = TierOverride(tier=tier, approver="vp-cs@soak.example", reason="soak")
            await patiently(traffic, partial(handle.execute_update, "override_tier", override))
            expected.override(tier, datetime.now(UTC))
            traffic.updates += 1

    return send


def reports(soak: Soak, traffic: Traffic, account: Account) -> Callable[[], Awaitable[object]]:
    """`milestone_reached` for each manual milestone, the first one sent twice."""
    handle = soak.stack.client.get_workflow_handle(workflow_id_for(account.id))
    expected = account.expected

    async def send() -> None:
        manual = expected.manual_milestones()
        sends = [(m, f"{account.id}-report-{m}") for m in manual]
        if len(sends) > 1:  # resent while more are to come: the workflow is still running
            sends.insert(1, sends[0])
        for milestone_id, event_id in sends:
            report = MilestoneReport(
                milestone_id=milestone_id, event_id=event_id, reported_by="csm@soak.example"
            )
            await patiently(traffic, partial(handle.signal, "milestone_reached", report))
            expected.milestone_reached(milestone_id, event_id, datetime.now(UTC))
            traffic.signals += 1

    return send


async def run_fleet(soak: Soak, options: Options, fleet: list[Account], t0: datetime) -> Traffic:
    stack, rng = soak.stack, random.Random(options.seed + 1)
    by_id = {a.id: a for a in fleet}
    traffic = Traffic()
    # A resent deal waits for the worker (the `provide_deal` update): during the starts
    # it would hold a sender's slot while the worker catches up, so it comes later.
    resent = rng.sample(fleet, len(fleet) * 3 // 100)
    touched = [a for a in fleet if a.group != "plain"]
    plain = [a for a in fleet if a.group == "plain" and not a.timer]
    first_wave = event_batches(rng, plain[: len(plain) // 2])
    second_wave = event_batches(rng, plain[len(plain) // 2 :] + touched)
    completing = [a for a in fleet if a.level == "complete"]
    chaos = Chaos(
        soak.workers,
        len(fleet)
        + len(first_wave)
        + len(touched)
        + len(resent)
        + len(second_wave)
        + len(completing),
        options.kills,
    )

    print(f"starting {len(fleet)} onboardings", flush=True)
    started = time.perf_counter()
    starts = await timed(
        [chaos.counted(webhook(soak, traffic, a)) for a in fleet], options.concurrency
    )
    traffic.start_seconds = starts.seconds
    await settle(stack, [a.id for a in fleet], within=600)
    traffic.caught_up_seconds = time.perf_counter() - started
    print(f"  worker caught up after {traffic.caught_up_seconds:.0f} s", flush=True)

    print(
        f"storm: {len(first_wave)} event batches, {len(touched)} pauses/overrides, "
        f"{len(resent)} deals resent",
        flush=True,
    )
    expect_events(by_id, first_wave)
    events_1, *_ = await asyncio.gather(
        timed([chaos.counted(events_post(soak, traffic, b)) for b in first_wave], 8),
        timed([chaos.counted(updates(soak, traffic, a)) for a in touched], options.concurrency),
        timed([chaos.counted(webhook(soak, traffic, a)) for a in resent], options.concurrency),
    )
    # The workflows publish their new awaited events (memo) after an update: let them.
    await settle(stack, [a.id for a in touched], within=600)
    print(f"storm: {len(second_wave)} event batches, {len(completing)} completions", flush=True)
    expect_events(by_id, second_wave)
    events_2, _ = await asyncio.gather(
        timed([chaos.counted(events_post(soak, traffic, b)) for b in second_wave], 8),
        timed([chaos.counted(reports(soak, traffic, a)) for a in completing], options.concurrency),
    )
    traffic.event_seconds = events_1.seconds + events_2.seconds
    # The timer accounts' login deadline (and no-login step) come due at t0 + an offset;
    # wait past the last one, then for the worker to run what came due.
    last_due = max(
        a.deal.close_date + login_due_days(stack.playbook, a.expected.progress.tier_decision.tier)
        for a in fleet
        if a.timer
    )
    await asyncio.sleep(max(0.0, (last_due - datetime.now(UTC)).total_seconds() + 5))
    await settle(stack, [a.id for a in fleet], within=600)
    return traffic


def login_due_days(playbook: Playbook, tier: Tier) -> timedelta:
    login = playbook.milestone(playbook.login_milestone)
    assert login is not None
    return login.due_days[tier] * DAY


# --------------------------------------------------------------------------- the check


@dataclass
class Tally:
    """Expected vs actual of one kind of effect, and each mismatch named."""

    expected: int = 0
    actual: int = 0
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0
    cases: list[str] = field(default_factory=list)

    def miss(self, kind: Literal["lost", "duplicated", "unexpected"], n: int, case: str) -> None:
        if n > 0:
            setattr(self, kind, getattr(self, kind) + n)
            self.cases.append(f"{kind} x{n}: {case}")

    def compare(self, where: str, want: Counter[Any], got: Counter[Any]) -> None:
        self.expected += sum(want.values())
        self.actual += sum(got.values())
        for item in sorted(want.keys() | got.keys(), key=str):
            self.miss("lost", want[item] - got[item], f"{where} {item}")
            kind: Literal["duplicated", "unexpected"] = "duplicated" if want[item] else "unexpected"
            self.miss(kind, got[item] - want[item], f"{where} {item}")


async def statuses(
    soak: Soak, traffic: Traffic, fleet: Sequence[Account]
) -> dict[str, OnboardingStatus | None]:
    """Each onboarding's status: a finished one's result, a running one's `status` query."""
    client, gate = soak.stack.client, asyncio.Semaphore(32)

    async def one(account: Account) -> tuple[str, OnboardingStatus | None]:
        handle = client.get_workflow_handle(
            workflow_id_for(account.id), result_type=OnboardingStatus
        )
        async with gate:
            desc = await handle.describe()
            if desc.status == WorkflowExecutionStatus.COMPLETED:
                return account.id, await handle.result()
            if desc.status == WorkflowExecutionStatus.RUNNING:
                query = partial(handle.query, "status", result_type=OnboardingStatus)
                return account.id, await patiently(traffic, query)
            return account.id, None  # failed or terminated: its effects count as lost

    return dict(await asyncio.gather(*(one(a) for a in fleet)))


def read_sent_log(path: Path) -> tuple[Counter[str], int]:
    """Lines per idempotency key, and lines torn by a kill mid-write."""
    keys: Counter[str] = Counter()
    torn = 0
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    for line in text.splitlines():
        try:
            keys[json.loads(line)["key"]] += 1
        except (ValueError, KeyError, TypeError):
            torn += 1
    return keys, torn


def unsent(status: OnboardingStatus, sent: Counter[str]) -> list[str]:
    """The notify actions of the status's fired escalations with no line in the sent log
    (read from the statuses alone, without the replay)."""
    missing = []
    for e in status.escalations:
        key = f"{status.workflow_id}:{e.tier.value}.{e.step_id}"
        for action in e.actions:  # none when superseded
            if not action.startswith("notify "):
                continue
            audience = action.split()[1]
            if e.trigger is Trigger.MILESTONE_OVERDUE:  # + revision
                found = _any_key(sent, f"{key}:{e.milestone_id}#r", f":{audience}")
            elif e.trigger is Trigger.NO_PROGRESS:  # + progress epoch and repeat
                found = _any_key(sent, f"{key}:e", f":{audience}")
            else:
                found = f"{key}:{audience}" in sent
            if not found:
                missing.append(f"{key} ({e.milestone_id or e.trigger.value}) -> {audience}")
    return missing


def _any_key(sent: Counter[str], prefix: str, suffix: str) -> bool:
    return any(k.startswith(prefix) and k.endswith(suffix) for k in sent)


@dataclass
class Check:
    onboardings: Tally
    milestones: Tally
    escalations: Tally
    notifications: Tally
    completed: Tally
    unsent: list[str]
    torn_lines: int

    def tallies(self) -> dict[str, Tally]:
        return {
            "onboardings": self.onboardings,
            "milestones done": self.milestones,
            "escalations": self.escalations,
            "notifications": self.notifications,
            "onboardings completed": self.completed,
        }

    def total(self, kind: Literal["lost", "duplicated", "unexpected"]) -> int:
        return sum(getattr(t, kind) for t in self.tallies().values())


async def check(soak: Soak, traffic: Traffic, fleet: list[Account]) -> Check:
    now = datetime.now(UTC)
    for account in fleet:
        account.expected.check(now)
    found = await statuses(soak, traffic, fleet)
    sent, torn = read_sent_log(soak.sent_log)
    runs = (await soak.stack.client.count_workflows("WorkflowType = 'AccountOnboarding'")).count
    result = Check(Tally(), Tally(), Tally(), Tally(), Tally(), [], torn)
    result.onboardings.expected, result.onboardings.actual = len(fleet), runs
    result.onboardings.miss("duplicated", runs - len(fleet), "onboarding runs beyond one each")
    expected_keys: set[str] = set()
    for account in fleet:
        want = account.expected
        expected_keys |= want.notifications
        status = found[account.id]
        if status is None:
            result.onboardings.miss("lost", 1, f"{account.id}: no running or completed run")
            continue
        done = {m.id for m in status.milestones if m.status is MilestoneStatus.DONE}
        result.milestones.compare(account.id, Counter(want.done), Counter(done))
        got: Counter[Escalated] = Counter()
        for e in status.escalations:  # a catch-up records the repeats it passed over as one
            got[(e.tier.value, e.step_id, e.milestone_id, e.superseded)] += e.repeats
        result.escalations.compare(account.id, want.escalations, got)
        finished = want.progress.finished_at is not None
        completed = status.state is OnboardingState.COMPLETED
        result.completed.compare(
            account.id,
            Counter({"completed": int(finished)}),
            Counter({"completed": int(completed)}),
        )
        result.unsent += unsent(status, sent)
    result.notifications.compare("sent log", Counter(expected_keys), sent)
    return result


# --------------------------------------------------------------------------- report


def figures(
    options: Options, traffic: Traffic, result: Check, workers: Workers, seconds: float
) -> dict[str, Any]:
    lost = result.total("lost") + len(result.unsent)
    return {
        "onboardings": options.onboardings,
        "lost": lost,
        "duplicated": result.total("duplicated"),
        "unexpected": result.total("unexpected"),
        "worker_kills": workers.kills,
        "peak_rss_mb": round(max(workers.peaks_kb) / 1024, 1),
        "starts_per_s": round(options.onboardings / traffic.start_seconds, 1),
        "onboardings_per_s": round(options.onboardings / traffic.caught_up_seconds, 1),
        "events_per_s": round(traffic.events / traffic.event_seconds, 1),
        "milestones_expected": result.milestones.expected,
        "milestones_actual": result.milestones.actual,
        "escalations_expected": result.escalations.expected,
        "escalations_actual": result.escalations.actual,
        "notifications_expected": result.notifications.expected,
        "notifications_actual": result.notifications.actual,
        "completed_expected": result.completed.expected,
        "completed_actual": result.completed.actual,
        "unsent_escalation_notifications": len(result.unsent),
        "torn_sent_log_lines": result.torn_lines,
        "webhooks": traffic.webhooks,
        "events": traffic.events,
        "events_accepted": traffic.outcomes["accepted"],
        "events_duplicate": traffic.outcomes["duplicate"],
        "events_ignored": traffic.outcomes["ignored"],
        "updates": traffic.updates,
        "signals": traffic.signals,
        "retried_503": traffic.retries,
        "retried_catching_up": traffic.catching_up,
        "worker_peaks_mb": [round(kb / 1024) for kb in workers.peaks_kb],
        "seconds": round(seconds),
    }


def table(f: dict[str, Any], result: Check) -> str:
    rows = [("effect", "expected", "actual", "lost", "duplicated", "unexpected")]
    for name, t in result.tallies().items():
        rows.append(
            (
                name,
                str(t.expected),
                str(t.actual),
                str(t.lost),
                str(t.duplicated),
                str(t.unexpected),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines += [
        "",
        f"fired escalations' notify actions missing from the sent log: {len(result.unsent)}",
        f"sent-log lines torn by a kill: {f['torn_sent_log_lines']}",
        f"worker: {f['worker_kills']} SIGKILLs; peak RSS {f['peak_rss_mb']} MB (per process, "
        f"in order: {' / '.join(map(str, f['worker_peaks_mb']))} MB)",
        f"throughput: {f['starts_per_s']} webhook starts/s; fleet caught up at "
        f"{f['onboardings_per_s']} onboardings/s; {f['events_per_s']} events/s "
        f"({f['events']} events: {f['events_accepted']} accepted, {f['events_duplicate']} "
        f"duplicate, {f['events_ignored']} ignored)",
        f"also sent: {f['updates']} updates, {f['signals']} milestone signals; "
        f"{f['retried_503']} requests retried after a 503, {f['retried_catching_up']} while "
        f"a worker caught up; {f['seconds']} s in all",
    ]
    mismatches = [c for t in result.tallies().values() for c in t.cases] + [
        f"unsent: {c}" for c in result.unsent
    ]
    if mismatches:
        lines += ["", f"MISMATCHES ({len(mismatches)}, first 20):", *mismatches[:20]]
    else:
        lines += ["", "every expected effect happened exactly once: PASS"]
    return "\n".join(lines)


async def run(options: Options) -> tuple[dict[str, Any], Check]:
    started = time.perf_counter()
    async with soak_stack() as soak:
        s = soak.stack
        print(f"stack up: Temporal {s.server.address}, ingress 127.0.0.1:{s.http.port}", flush=True)
        t0 = datetime.now(UTC)
        fleet = plan_fleet(options, s.playbook, t0)
        traffic = await run_fleet(soak, options, fleet, t0)
        print("fleet settled; checking", flush=True)
        result = await check(soak, traffic, fleet)
        soak.workers.stop()  # its peak RSS, before the stack goes
    seconds = time.perf_counter() - started
    return figures(options, traffic, result, soak.workers, seconds), result


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_args(argv)
    print(
        f"soak: {options.onboardings} onboardings, {options.kills} worker kills, "
        f"concurrency {options.concurrency}, seed {options.seed}",
        flush=True,
    )
    f, result = asyncio.run(run(options))
    print(table(f, result))
    print(json.dumps(f))
    sys.exit(1 if f["lost"] or f["duplicated"] or f["unexpected"] else 0)


if __name__ == "__main__":
    main()

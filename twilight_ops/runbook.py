"""The runbook's vocabulary, in one place: its phases, the journal's step names and fact keys,
the fact records other modules read, and the ids and titles of its checks.

    PHASES, phase(name) -> Phase, CUTOVER_PHASES, TERMINAL, tplus(minutes)
    Steps          every journal step name: constants, and builders for the numbered ones
                   (Steps.deploy(n, part), Steps.rollback(n, part), Steps.smoke(expect), Steps.cutover(phase) …)
    Fact           every journal fact key
    Snapshot, RolledBack, Closeout, ForwardBaseline, LockTakeover, DecisionRecord, CutoverState
                   the facts' value shapes (TypedDicts: the journal holds plain JSON objects),
                   read with snapshot(facts), rolled_back(facts), cutover_state(facts) …
    PREFLIGHT_TITLES, HERMES_TITLES, AGENT_TITLES, AGENT_MEANINGS   what each check is called
    invocation(runtime_file, environ) -> str   how this run was invoked (`inv -f F`, its INVOKE_TWILIGHT_* env)
    next_step(prefix, task, *args, …) -> str   every next-step line the tool prints, aimed at the same target

These names *are* the journal's file format: changing a string here changes the files (and old
journals keep the old one).  Pure, and it imports no other module of the package: phases,
decide, guard, diagnose, render and tasks all read it, so it sits below every one of them.
"""
from __future__ import annotations

import dataclasses
import shlex
from typing import Any, Mapping, TypedDict

# ---------------------------------------------------------------- the phases (runbook §0–§2)


@dataclasses.dataclass(frozen=True)
class Phase:
    name: str         # also the `cutover:<name>` step and the report's timeline row
    at: int           # the runbook's T+ start, in minutes
    budget: str       # its budget's key in twilight.budgets


class Phases:
    PREFLIGHT = "preflight"
    TAG_PUSH = "tag-push"
    DEPLOY = "deploy"
    SMOKE = "smoke"
    HERMES = "hermes-reinstall"
    AGENT = "agent-smoke"
    DECIDE = "decide"
    CLOSEOUT = "closeout"
    ROLLBACK = "rollback"


PHASES = (
    Phase(Phases.PREFLIGHT, 0, "preflight"),
    Phase(Phases.TAG_PUSH, 5, "tag_push"),
    Phase(Phases.DEPLOY, 5, "tag_push"),
    Phase(Phases.SMOKE, 15, "smoke"),
    Phase(Phases.HERMES, 25, "hermes_reinstall"),
    Phase(Phases.AGENT, 35, "agent_smoke"),
    Phase(Phases.DECIDE, 50, "closeout"),
    Phase(Phases.CLOSEOUT, 55, "closeout"),
    Phase(Phases.ROLLBACK, 50, "rollback"),
)
_BY_NAME = {p.name: p for p in PHASES}
CUTOVER_PHASES = (Phases.PREFLIGHT, Phases.TAG_PUSH, Phases.DEPLOY, Phases.SMOKE, Phases.HERMES, Phases.AGENT)
TERMINAL = (Phases.CLOSEOUT, Phases.ROLLBACK)


def phase(name: str) -> Phase | None:
    return _BY_NAME.get(name)


def tplus(minutes: float) -> str:
    """`T+HH:MM` of a number of minutes since the cutover's start (negative counts as 0)."""
    m = max(0, int(minutes))
    return f"T+{m // 60:02d}:{m % 60:02d}"


# ---------------------------------------------------------------- the next step (one shape for every line)

ENV_PREFIX = "INVOKE_TWILIGHT_"
_NOT_CARRIED = ("TOKEN", "SECRET", "PASSWORD", "PASSPHRASE", "CREDENTIAL")   # never printed, not even a path's name


def invocation(runtime_file: str | None, environ: Mapping[str, str]) -> str:
    """How this run was invoked, as the start of a printed command: the run's INVOKE_TWILIGHT_* settings
    (none whose name speaks of a token or secret), `inv`, and `-f FILE` when the run had one."""
    env = [f"{k}={shlex.quote(environ[k])}" for k in sorted(environ)
           if k.startswith(ENV_PREFIX) and not any(word in k.upper() for word in _NOT_CARRIED)]
    cfg = ["-f", shlex.quote(runtime_file)] if runtime_file else []
    return " ".join([*env, "inv", *cfg])


def next_step(prefix: str, task: str, *args: str, reason: str | None = None, first: str = "", note: str = "",
              not_needed: str = "") -> str:
    """The one next-step line: `[first, then ]<prefix> <task> <args…> [--reason '…'][  (note)]`.

    prefix      invocation(): the printed command repeats the run's `-f FILE` and env, so it aims at the
                same target (`inv` when the caller knows no better)
    args        the task's arguments, each quoted for the shell
    reason      `--reason`'s text (quoted; at most 150 characters)
    first       what to do before it ("fix the cause")
    note        a short remark after the command, in parentheses
    not_needed  a verdict this step does not serve: the line says so instead of suggesting a run
    """
    if not_needed:
        return f"not needed: the decision is {not_needed}"
    words = [prefix or "inv", task, *(shlex.quote(a) for a in args)]
    if reason is not None:
        words += ["--reason", shlex.quote(" ".join(reason.split())[:150])]
    line = " ".join(words)
    if first:
        line = f"{first}, then {line}"
    return f"{line}  ({note})" if note else line


# ---------------------------------------------------------------- journal step names


class Steps:
    PREFLIGHT = "preflight"              # §0: the seven checks, once GO (phases/preflight.py)
    SNAPSHOT = "snapshot"                # T+00:00 DuckDB snapshot (phases/snapshot.py)
    TAG_PUSH = "tag-push"                # T+00:05 Terminal A: tag, push, published digest
    DEPLOY_NOOP = "deploy-noop"          # the release already ran healthy
    SMOKE_PREFIX = "smoke-"
    SMOKE_W4 = "smoke-w4"                # T+00:15
    SMOKE_LEGACY = "smoke-legacy"        # §2.4, after a rollback
    HERMES_INSTALL = "hermes-install"    # T+00:25
    HERMES_RESTART = "hermes-restart"
    HERMES_VERIFY = "hermes-verify"
    AGENT_SMOKE = "agent-smoke"          # T+00:35
    DECIDE = "decide"                    # T+00:50
    CLOSEOUT = "closeout"                # T+00:55
    CUTOVER_PREFIX = "cutover:"          # inv cutover: one step per phase, around the phase's own steps
    GUARD_ROLLBACK = "guard-rollback"    # §2 guard: guard-rollback#<deploy attempt>

    DEPLOY_ATTEMPTS = "deploy#"          # every step of every deploy attempt starts with it
    # parts of a deploy attempt: deploy#N:<part>
    PULL = "pull"
    PERSIST_VERSION = "persist-version"
    UP = "up"
    HEALTH_GATE = "health-gate"
    # parts of a rollback attempt: rollback#N:<part> (also the rows of its timing table)
    PIN = "pin"
    DB_CHECK = "db-check"
    DB_RESTORE = "db-restore"
    DATA_PLAN = "data-plan"              # §2.3's evidence: the schema and rows since T+00:00 (issue 24)
    DB_EXPORT = "db-export"              # the rows a restore dropped, to Parquet beside the kept file
    AFTER_RESTORE = "-after-restore"     # suffix of the release path's parts run again after a restore
    HEALTH = "health"
    HERMES = "hermes"

    @staticmethod
    def deploy(attempt: int, part: str = "") -> str:
        """deploy#N (the attempt, once it passed its health gate) or deploy#N:<part>."""
        return f"{Steps.DEPLOY_ATTEMPTS}{attempt}" + (f":{part}" if part else "")

    @staticmethod
    def deploy_parts(attempt: int) -> str:
        """The prefix every part of deploy attempt N starts with."""
        return Steps.deploy(attempt) + ":"

    @staticmethod
    def is_deploy(name: str) -> bool:
        """Any deploy step: deploy-noop, deploy#N, deploy#N:<part>."""
        return name.startswith("deploy")

    @staticmethod
    def rollback(attempt: int, part: str = "") -> str:
        """rollback#N (done, verified legacy) or rollback#N:<part>."""
        return f"rollback#{attempt}" + (f":{part}" if part else "")

    @staticmethod
    def rollback_parts(attempt: int) -> str:
        return Steps.rollback(attempt) + ":"

    @staticmethod
    def is_rollback(name: str) -> bool:
        """A whole rollback attempt's step (rollback#N), not one of its parts."""
        return name.startswith("rollback#") and ":" not in name

    @staticmethod
    def smoke(expect: str) -> str:
        """smoke-w4 | smoke-legacy: `inv smoke --expect E` records smoke-E."""
        return f"{Steps.SMOKE_PREFIX}{expect}"

    @staticmethod
    def cutover(phase_name: str) -> str:
        return f"{Steps.CUTOVER_PREFIX}{phase_name}"

    @staticmethod
    def cutover_phase(name: str) -> str | None:
        """The phase of a `cutover:<phase>` step; None for any other step."""
        return name.removeprefix(Steps.CUTOVER_PREFIX) if name.startswith(Steps.CUTOVER_PREFIX) else None

    @staticmethod
    def guard_rollback(deploy_attempt: int) -> str:
        return f"{Steps.GUARD_ROLLBACK}#{deploy_attempt}"


# ---------------------------------------------------------------- journal facts


class Fact:
    CUTOVER = "cutover"                  # CutoverState (inv cutover)
    PRE_VERSION = "pre_version"          # T+00:00: the release running before (preflight)
    PRE_DIGEST = "pre_digest"            # T+00:00: its image, repo@sha256:… (the rollback's pin)
    CUTOVER_COMMIT = "cutover_commit"    # the commit preflight pinned (tag-push tags it)
    PREFLIGHT_AT = "preflight_at"
    SNAPSHOT = "snapshot"                # Snapshot
    PUBLISHED_DIGEST = "published_digest"   # T+00:05: what CI published, repo@sha256:…
    DEPLOY_ATTEMPT = "deploy_attempt"    # int: the latest deploy attempt N
    POST_DIGEST = "post_digest"          # after the health gate: the running image
    DEPLOYED_AT = "deployed_at"
    ROLLBACK_ATTEMPT = "rollback_attempt"   # int: the latest rollback attempt N
    ROLLED_BACK = "rolled_back"          # RolledBack
    LOCK_TAKEOVERS = "lock_takeovers"    # list[LockTakeover]
    CLOSEOUT = "closeout"                # Closeout
    FORWARD_BASELINE = "forward_baseline"   # ForwardBaseline
    DATA_PLAN = "data_plan"              # dataplan.DataPlan.to_json() + what the rollback did with it
    DB_RESTORE = "db_restore"            # {"rollback_attempt", "failed"}: the kept file's name, fixed before a restore


class Snapshot(TypedDict, total=False):
    host_path: str
    path: str
    sha256: str
    bytes: int
    tables: list[str]
    taken_at: str


class RolledBack(TypedDict, total=False):
    at: str
    attempt: int              # the deploy attempt it rolled back
    rollback_attempt: int
    trigger: str
    to: str                   # the pin, tag@sha256:…
    evidence: dict[str, Any]


class Closeout(TypedDict, total=False):
    commit: str
    branch: str
    line: str


class ForwardBaseline(TypedDict, total=False):
    at: str
    commit: str
    branch: str
    note: str


class LockTakeover(TypedDict, total=False):
    at: str
    from_pid: int
    from_reason: str


class DecisionRecord(TypedDict, total=False):
    verdict: str
    reason: str
    at: str
    confirmed_by: str
    how: str


class CutoverState(TypedDict, total=False):
    started_at: str
    operator: str
    options: dict[str, bool]
    resumed: list[str]
    decision: DecisionRecord
    decided_at: str
    finished_at: str
    outcome: str


def cutover_state(facts: Mapping[str, Any]) -> CutoverState:
    """The cutover's state ({} before `inv cutover` started)."""
    return facts.get(Fact.CUTOVER) or CutoverState()


def snapshot(facts: Mapping[str, Any]) -> Snapshot | None:
    return facts.get(Fact.SNAPSHOT) or None


def rolled_back(facts: Mapping[str, Any]) -> RolledBack | None:
    return facts.get(Fact.ROLLED_BACK) or None


def closeout(facts: Mapping[str, Any]) -> Closeout | None:
    return facts.get(Fact.CLOSEOUT) or None


def forward_baseline(facts: Mapping[str, Any]) -> ForwardBaseline | None:
    return facts.get(Fact.FORWARD_BASELINE) or None


def deploy_attempt(facts: Mapping[str, Any]) -> int:
    return int(facts.get(Fact.DEPLOY_ATTEMPT, 0) or 0)


def rollback_attempt(facts: Mapping[str, Any]) -> int:
    return int(facts.get(Fact.ROLLBACK_ATTEMPT, 0) or 0)


# ---------------------------------------------------------------- the checks' ids and titles

PREFLIGHT_CHECKS = ("commit_pinned", "dependency_prs", "ci_green", "tushare_token", "install_skill_latest", "clock_skew",
                    "no_traffic")
PREFLIGHT_TITLES = {
    "commit_pinned": "commit pinned in ~/twilight/source",
    "dependency_prs": "W4 dependency PRs merged",
    "ci_green": "integration tests green in CI",
    "tushare_token": "Tushare token valid",
    "install_skill_latest": "install-skill.sh is the latest",
    "clock_skew": "tvps's clock agrees with this machine's",
    "no_traffic": "no active /price traffic",
    "service": "backend running, healthy, 0 restarts",
    "snapshot": "warehouse snapshot",
}

HERMES_CHECKS = ("install", "restart", "registered", "files")
HERMES_TITLES = {
    "install": "install-skill.sh",
    "restart": "restart Hermes",
    "registered": "skill registered",
    "files": "installed files = repo",
}

AGENT_CHECKS = ("latest_quote", "historical", "cache", "unknown_code")
AGENT_TITLES = {"latest_quote": "1 latest quote", "historical": "2 historical 2024-01-02", "cache": "3 cache",
                "unknown_code": "4 unknown code 999999.SH"}
AGENT_MEANINGS: Mapping[str, str] = {
    "not_w4": "the body is not the W4 envelope (T+00:15's red flags apply: run `inv smoke`)",
    "not_fresh_open": "during OPEN freshness_seconds must be below 120 (T+00:35 check 1): the quote is not live",
    "stale_value": "a stale value: freshness_seconds > 86400 outside CLOSED_FINAL (T+00:35 check 1 red flag)",
    "market_state_mismatch": "market_state does not match reality (T+00:35 check 1); \"closing\" on every call "
                             "means the trade_cal seed is stale (§4)",
    "historical_qfq_missing": "close_qfq is null but close_raw is present: the adj_factor lookup is broken (T+00:35 check 2)",
    "cache_never_hit": "freshness_seconds stays at 0 across calls: cache not respecting TTL (T+00:35 check 3); "
                       "§4: TTL bug or always-CLOSING state (stale trade_cal seed)",
    "clock_backwards": "freshness_seconds jumps backward in time: as_of goes back (T+00:35 check 3)",
    "cache_never_expires": "the same quote after TTL + slack: cache not respecting TTL (T+00:35 check 3)",
    "freshness_gap_mismatch": "on a cache hit freshness_seconds does not advance with the clock (T+00:35 check 3)",
    "unknown_code_500": "HTTP 500 instead of 502 for an unknown code (T+00:35 check 4): the unknown-code path crashes",
    "price_unavailable": "the agent says \"price unavailable\" (T+00:35 check 1 red flag)",
    "hermes_legacy_prompt": "Hermes agent emits both value and close_raw: old prompt template still has value mention; "
                            "search Hermes prompts for hardcoded value, update SKILL.md back-compat usage (§4)",
}

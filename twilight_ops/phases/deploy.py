"""T+00:05 deploy: `inv deploy --version V` behind a health gate, on one SSH connection.

    plan(t) -> [PlanStep]          the remote commands in order (for --plan / --dry), nothing run
    run(t, say) -> DeployReport    the deploy; DeployFailed carries the evidence and the rollback line

Steps, each a journal step (a re-run skips what finished and redoes what was cut off):
  0. refuse without the T+00:00 facts (pre_digest, snapshot) — `inv preflight` makes them;
     refuse a same-day retry after a rollback (unless --force)
  1. the deploy lock (re-entrant for the same operator and version) and an audit line
  2. already running V healthy with restart count 0 and V persisted: a no-op that says so
  3. `compose pull` of V; a failed pull stops before anything restarts
  4. persist TWILIGHT_VERSION=V in the compose project's .env (the previous file kept as
     .env.before-V[-N]), so a later bare `docker compose up -d` keeps V
  5. `compose up -d --no-deps backend`
  6. the health gate: health.wait_healthy (`compose ps` every poll, ≤ 1 s, against a deadline,
     failing fast on a restart loop); then restart count 0 and the running image is V; the new
     repo digest goes into the journal
Steps 3-6 are the one release path rollback takes too (phases/rollout.apply).
On failure: the last 200 log lines and the healthcheck log, the lock released, and the exact
`inv rollback` line to run.  A part that does not answer (the Docker daemon, the registry, its
token server: docker_errors.outage over docker's own stderr) is no evidence about the release:
DeployUnreachable (exit 3), the step is journalled `unreachable` (decide: INCOMPLETE), and the
message says whether anything had changed, what tvps runs now and the one command that continues.
"""
from __future__ import annotations

import dataclasses
import shlex
import datetime as dt
import time
from typing import Any, Callable

from .. import docker_errors, envfile, facts, lock, runbook
from ..builders import compose as compose_cmd
from ..builders import files
from ..clock import iso, now_utc
from ..errors import CheckFailed, TwilightError, Unreachable
from ..health import is_healthy
from ..runbook import Fact, Steps
from ..target import Target
from . import rollout
from .rollout import DEPLOY, read_compose_env, step_name, tvps_state

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@dataclasses.dataclass(frozen=True)
class PlanStep:
    name: str
    command: str
    depends_on_live_output: str = ""     # why the real run may take another path here


@dataclasses.dataclass(frozen=True)
class DeployReport:
    version: str
    outcome: str          # deployed | already-running
    digest: str
    healthy_after_s: float
    remote_commands: int
    previous_env: str = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class DeployFailed(TwilightError):
    exit_code = 1

    def __init__(self, message: str, hint: str, *, logs: str = "", health_log: list[str] | None = None):
        super().__init__(message, hint)
        self.logs = logs
        self.health_log = health_log or []


class DeployUnreachable(Unreachable):
    """A part did not answer during the deploy (exit 3): retry when it is back, never a rollback."""


def _cfg(t: Target) -> str:
    return f"-f {shlex.quote(t.runtime_file)} " if t.runtime_file else ""


def rollback_line(t: Target, reason: str) -> str:
    safe = reason.replace("'", "")[:150]
    return f"inv {_cfg(t)}rollback --version {t.version} --reason '{safe}'"


def continue_line(t: Target) -> str:
    """The one command that continues this deploy (its attempt is resumed: finished steps are skipped).
    Inside a cutover the cutover's own resume line is printed instead (phases/cutover.resume_line)."""
    return f"inv {_cfg(t)}deploy --version {t.version} --yes"


def plan(t: Target) -> list[PlanStep]:
    from ..builders.layout import layout
    from ..executor import render

    lay = layout(t.settings, "~")
    v = t.version
    return [
        PlanStep("lock", render(files.rename_dir(f"{lay.cutover_dir}/.lock-new-<pid>-<hex>", lay.lock_dir)),
                 "the temp dir holds holder.json (host, PID, start time); a run of yours for " + v
                 + " that is gone is taken over"),
        PlanStep("facts", "compose ps + docker inspect + docker image inspect, one command (compose.service_facts: "
                 + render(["sh", "-c", "<program>", "sh", lay.compose_file]) + ")",
                 "a no-op when " + v + " already runs healthy"),
        PlanStep("pull", render(compose_cmd.compose_pull(lay, v))),
        PlanStep("persist", f"write {lay.compose_env} (TWILIGHT_VERSION={v}; previous kept as .env.before-{v})",
                 "skipped when it already says " + v),
        PlanStep("up", render(compose_cmd.compose_up_detached(lay, v))),
        PlanStep("health", "docker events for the container's health_status (compose.health_watch, rounds of at most "
                 f"2 s; `compose ps` every 0.5 s when events cannot run), deadline {t.settings.deploy_deadline_s:g} s",
                 "on failure: logs, healthcheck log, lock released, rollback line"),
        PlanStep("digest", "the service facts again (one command), the running image's repo digest"),
        PlanStep("unlock", render(files.remove_lock(lay))),
    ]


def shanghai_day(ts: str) -> str:
    return dt.datetime.fromisoformat(ts).astimezone(SHANGHAI).date().isoformat()


def check_ready(t: Target, journal, force: bool) -> None:
    missing = [k for k in (Fact.PRE_DIGEST, Fact.SNAPSHOT) if not journal.facts.get(k)]
    if missing:
        raise CheckFailed(f"the journal of {t.version} has no T+00:00 facts ({', '.join(missing)})",
                          f"run `inv preflight --version {t.version}` first")
    rolled = runbook.rolled_back(journal.facts)
    if rolled and not force:
        today = now_utc(t.settings.clock_offset_seconds).astimezone(SHANGHAI).date().isoformat()
        if shanghai_day(rolled["at"]) == today:
            raise CheckFailed(f"{t.version} was rolled back today ({rolled['at']}, Asia/Shanghai day {today}): "
                              "the runbook says do not retry the cutover the same day",
                              "file the follow-up issue and retry tomorrow, or --force if you must")


def run(t: Target, *, force: bool = False, say: Callable[[str], None] = lambda s: None) -> DeployReport:
    v, lay, ssh = t.version, t.layout, t.ssh
    journal = t.journal()
    check_ready(t, journal, force)
    started = time.monotonic()
    holder = lock.new_holder(t.settings.operator, v, "deploy")
    with lock.held_for_change(ssh, lay, holder) as taken_over:
        journal = t.journal(fresh=True)     # as it is now the lock is ours: a run without the lock writes nothing
        check_ready(t, journal, force)
        if taken_over is not None:
            t.audit("lock-takeover", "ok", f"from PID {taken_over.client_pid} since {taken_over.acquired_at}")
            say(f"took the deploy lock over from an earlier run of yours (PID {taken_over.client_pid}, {taken_over.acquired_at})")
        t.audit("deploy-start", "started", f"pre {journal.facts[Fact.PRE_DIGEST]}")
        svc = rollout.reaching(outage(t), "reading what runs", False, lambda: t.service(refresh=True))
        env_text = read_compose_env(t)
        if (svc is not None and svc.version == v and is_healthy(svc.state, svc.health) and svc.restart_count == 0
                and envfile.get(env_text, "TWILIGHT_VERSION") == v):
            with t.journals.step(journal, Steps.DEPLOY_NOOP) as step:
                step.evidence.update({"outcome": "already-running", "digest": svc.repo_digest})
                step.note = f"{v} already runs healthy; nothing to do"
            t.audit("deploy", "noop", f"{v} already running healthy")
            return DeployReport(v, "already-running", svc.repo_digest, 0.0, ssh.commands_run)
        n = rollout.attempt(journal, DEPLOY)
        t.journals.save(journal)
        try:
            return _deploy(t, journal, n, say, started, env_text)
        except TwilightError as e:
            t.audit("deploy", "unreachable" if isinstance(e, Unreachable) else "failed", e.message[:300])
            raise


def keeping_evidence(action: Callable[[Any], None]) -> Callable[[Any], None]:
    """A step whose failure keeps the backend's last 200 log lines and healthcheck log in the journal."""
    def run_step(step) -> None:
        try:
            action(step)
        except DeployFailed as e:
            step.evidence["backend_logs_tail200"] = e.logs
            step.evidence["health_log"] = e.health_log
            raise
    return run_step


def _deploy(t: Target, journal, n: int, say: Callable[[str], None], started: float, env_text: str) -> DeployReport:
    """The release path (rollout.apply) for V; the health step also records post_digest and deployed_at."""
    v, ssh = t.version, t.ssh
    way = rollout.Way(persist_step=Steps.PERSIST_VERSION, health_step=Steps.HEALTH_GATE, persist_first=False,
                      backup=f"{t.layout.compose_env}.before-{v}", red_hint="roll back",
                      fail=lambda message, hint: _fail(t, message, hint), outage=outage(t))

    def run_step(part: str, action: rollout.Action):
        def act(step) -> None:
            keeping_evidence(action)(step)
            if part == way.health_step:
                journal.facts[Fact.POST_DIGEST] = step.evidence["digest"]
                journal.facts[Fact.DEPLOYED_AT] = iso(now_utc())
        step, how = t.journals.once(journal, step_name(DEPLOY, n, part), act)
        if how == "ran" and step.note:
            say(step.note)
        return step, how

    applied = rollout.apply(t, rollout.Ref(v), way, run_step, say=say, env_text=env_text)   # read above, under the lock
    with t.journals.step(journal, step_name(DEPLOY, n)) as done:
        done.evidence.update({"outcome": "deployed", "digest": journal.facts.get(Fact.POST_DIGEST, ""),
                              "remote_commands": ssh.commands_run, "elapsed_s": round(time.monotonic() - started, 1)})
    t.audit("deploy", "ok", f"{v} healthy, {journal.facts.get(Fact.POST_DIGEST, '')}")
    return DeployReport(v, "deployed", journal.facts.get(Fact.POST_DIGEST, ""),
                        applied.health.evidence.get("healthy_after_s", 0.0), ssh.commands_run, applied.backup)


def outage(t: Target) -> rollout.Outage:
    return lambda what, out, changed: unreachable(t, what, out, changed)


def unreachable(t: Target, what: str, out: docker_errors.Outage, changed: bool) -> DeployUnreachable:
    """Exit 3 with the state of tvps and the command that continues; nothing to roll back for."""
    done = ("the change had begun (the old container may be stopped)" if changed
            else f"nothing was changed, {t.version} was not started")
    return DeployUnreachable(f"{what} of {t.version} could not reach {out.line}: {done}; tvps now: {tvps_state(t)}",
                             ("" if changed else "nothing to roll back; ") + f"when it answers again: {continue_line(t)}")


def _fail(t: Target, message: str, hint: str) -> DeployFailed:
    """The failure with its evidence: last 200 log lines and the healthcheck log."""
    logs = ""
    health: list[str] = []
    try:
        r = t.ssh.run(compose_cmd.compose_logs(t.layout, 200), check=False, timeout=60)
        from ..secret import redact

        logs = redact(r.stdout + r.stderr)
        ps = [s for s in t.fact(facts.COMPOSE_PS, t.layout) if s.service == t.layout.service and s.container_id]
        if ps:
            health = t.fact(facts.HEALTH_LOG, [ps[0].container_id])
    except TwilightError:
        pass
    return DeployFailed(message, f"{hint} — run: {rollback_line(t, message)}", logs=logs, health_log=health)

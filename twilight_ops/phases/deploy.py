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
  6. the health gate: `compose ps` every poll (≤ 1 s) until healthy against a deadline, failing
     fast on a restart loop; then restart count 0 and the running image is V; the new repo
     digest goes into the journal
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
from ..errors import CheckFailed, CommandFailed, TwilightError, Unreachable
from ..health import is_healthy
from ..runbook import Fact, Steps
from ..target import Target

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
        PlanStep("facts", render(compose_cmd.compose_ps(lay)), "a no-op when " + v + " already runs healthy"),
        PlanStep("pull", render(compose_cmd.compose_pull(lay, v))),
        PlanStep("persist", f"write {lay.compose_env} (TWILIGHT_VERSION={v}; previous kept as .env.before-{v})",
                 "skipped when it already says " + v),
        PlanStep("up", render(compose_cmd.compose_up_detached(lay, v))),
        PlanStep("health", render(compose_cmd.compose_ps(lay)) + "   # every 0.5 s until healthy, deadline "
                 f"{t.settings.deploy_deadline_s:g} s", "on failure: logs, healthcheck log, lock released, rollback line"),
        PlanStep("digest", render(compose_cmd.docker_inspect(["<container id>"])) + " ; " +
                 render(compose_cmd.docker_image_inspect(["<image id>"]))),
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
        svc = reaching(t, "reading what runs", False, lambda: t.service(refresh=True))
        env_text = read_compose_env(t)
        if (svc is not None and svc.version == v and is_healthy(svc.state, svc.health) and svc.restart_count == 0
                and envfile.get(env_text, "TWILIGHT_VERSION") == v):
            with t.journals.step(journal, Steps.DEPLOY_NOOP) as step:
                step.evidence.update({"outcome": "already-running", "digest": svc.repo_digest})
                step.note = f"{v} already runs healthy; nothing to do"
            t.audit("deploy", "noop", f"{v} already running healthy")
            return DeployReport(v, "already-running", svc.repo_digest, 0.0, ssh.commands_run)
        n = attempt(journal)
        t.journals.save(journal)
        try:
            return _deploy(t, journal, n, say, started)
        except TwilightError as e:
            t.audit("deploy", "unreachable" if isinstance(e, Unreachable) else "failed", e.message[:300])
            raise


def attempt(journal) -> int:
    """The deploy attempt this run belongs to: one that was cut off (a step left running, e.g.
    kill -9) is resumed; after one that finished, failed or was rolled back, a new one starts
    (the world may have changed since: nothing of it is skipped)."""
    n = int(journal.facts.get(Fact.DEPLOY_ATTEMPT, 0))
    rolled = (runbook.rolled_back(journal.facts) or {}).get("attempt")
    if n == 0 or journal.done(Steps.deploy(n)) or rolled == n or ended_in_failure(journal, Steps.deploy_parts(n)):
        n += 1
        journal.facts[Fact.DEPLOY_ATTEMPT] = n
    return n


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


def ended_in_failure(journal, prefix: str) -> bool:
    return any(s.name.startswith(prefix) and s.outcome == "failed" for s in journal.steps)


def _deploy(t: Target, journal, n: int, say: Callable[[str], None], started: float) -> DeployReport:
    v, lay, ssh = t.version, t.layout, t.ssh

    def pull(step) -> None:
        say(f"pulling {t.settings.image_repo}:{v} …")
        r = ssh.run(compose_cmd.compose_pull(lay, v), check=False, timeout=t.settings.pull_timeout_s)
        step.evidence["exited"] = r.exited
        if not r.ok:
            out = docker_errors.outage(r.stdout + r.stderr)
            if out is not None:
                step.evidence["unreachable"] = out.line
                raise unreachable(t, "the pull", out, changed=False)
            tail = (r.stderr.strip().splitlines() or ["no output"])[-1][:300]
            raise _fail(t, f"pull of {v} failed: {tail}", "nothing was restarted; " + v + " keeps not running")
    t.journals.once(journal, Steps.deploy(n, Steps.PULL), keeping_evidence(pull))

    previous: dict[str, str] = {}

    def persist(step) -> None:
        text = read_compose_env(t)
        before = envfile.get(text, "TWILIGHT_VERSION")
        step.evidence["previous_value"] = before
        if before == v:
            step.note = f"{lay.compose_env} already says TWILIGHT_VERSION={v}"
            return
        backup = ""
        if text:
            backup = free_name(t, f"{lay.compose_env}.before-{v}")
            ssh.write_file(backup, text.encode(), mode=0o600)
        ssh.write_file(lay.compose_env, envfile.set_var(text, "TWILIGHT_VERSION", v).encode(), mode=0o640)
        step.evidence["backup"] = backup
        previous.update(value=before or "", backup=backup)
        step.note = f"TWILIGHT_VERSION={v} (was {before or 'unset'}; previous file kept at {backup or 'none (new file)'})"
        say(step.note)
    t.journals.once(journal, Steps.deploy(n, Steps.PERSIST_VERSION), persist)

    def up(step) -> None:
        say(f"compose up -d {lay.service} ({v}) …")
        r = ssh.run(compose_cmd.compose_up_detached(lay, v), check=False, timeout=300)
        step.evidence["exited"] = r.exited
        if not r.ok:
            out = docker_errors.outage(r.stdout + r.stderr)
            if out is not None:
                step.evidence["unreachable"] = out.line
                raise unreachable(t, "`compose up`", out, changed=True)
            tail = (r.stderr.strip().splitlines() or ["no output"])[-1][:300]
            raise _fail(t, f"`compose up` of {v} failed: {tail}", "see the logs above")
    t.journals.once(journal, Steps.deploy(n, Steps.UP), keeping_evidence(up))

    def gate(step) -> None:
        t0 = time.monotonic()
        waited, noticed = health_gate(t, say)
        svc = reaching(t, "the health gate", True, lambda: t.service(refresh=True))
        if svc is None or svc.version != v:
            raise _fail(t, f"{lay.service} runs {svc.image if svc else 'nothing'}, not {v}", "see `inv status`")
        if svc.restart_count:
            raise _fail(t, f"{lay.service} {v} is healthy but restarted {svc.restart_count} time(s)",
                        "a restart loop: roll back")
        step.evidence.update({"healthy_after_s": round(waited, 2), "digest": svc.repo_digest,
                              "gate_s": round(time.monotonic() - t0, 2),
                              "noticed_healthy_at": noticed})
        journal.facts[Fact.POST_DIGEST] = svc.repo_digest
        journal.facts[Fact.DEPLOYED_AT] = iso(now_utc())
    step, _ = t.journals.once(journal, Steps.deploy(n, Steps.HEALTH_GATE), keeping_evidence(gate))
    with t.journals.step(journal, Steps.deploy(n)) as done:
        done.evidence.update({"outcome": "deployed", "digest": journal.facts.get(Fact.POST_DIGEST, ""),
                              "remote_commands": ssh.commands_run, "elapsed_s": round(time.monotonic() - started, 1)})
    t.audit("deploy", "ok", f"{v} healthy, {journal.facts.get(Fact.POST_DIGEST, '')}")
    return DeployReport(v, "deployed", journal.facts.get(Fact.POST_DIGEST, ""), step.evidence.get("healthy_after_s", 0.0),
                        ssh.commands_run, previous.get("backup", ""))


def read_compose_env(t: Target) -> str:
    """The compose project's .env on tvps ('' when there is none)."""
    try:
        return t.ssh.read_file(t.layout.compose_env).decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def free_name(t: Target, base: str) -> str:
    """base, or base-2, base-3 …: a kept file is never overwritten."""
    n, name = 1, base
    while t.ssh.run(["test", "-e", name], check=False).ok:
        n += 1
        name = f"{base}-{n}"
    return name


def health_gate(t: Target, say: Callable[[str], None]) -> tuple[float, str]:
    """Poll compose ps (≤ 1 s) until healthy; fail fast when the container restarts or exits."""
    lay, deadline_s, poll = t.layout, t.settings.deploy_deadline_s, t.settings.health_poll_s
    started = time.monotonic()
    while True:
        ps = [s for s in reaching(t, "the health gate", True, lambda: t.fact(facts.COMPOSE_PS, lay)) if s.service == lay.service]
        cur = ps[0] if ps else None
        elapsed = time.monotonic() - started
        if cur is not None and is_healthy(cur.state, cur.health):
            say(f"{lay.service} healthy after {elapsed:.1f} s")
            return elapsed, iso_ms(now_utc())        # bench/deploy_bench.py compares it with docker's own time
        state = f"{cur.state}, health {cur.health or 'none'}" if cur else "not listed"
        if cur is not None and (cur.state in ("restarting", "exited", "dead") or cur.health == "unhealthy"):
            raise _fail(t, f"{lay.service} {cur.state} (health {cur.health or 'none'}) {elapsed:.1f} s after up: "
                        f"{'a restart loop' if cur.state == 'restarting' else 'it will not turn healthy'}",
                        "roll back")
        if elapsed > deadline_s:
            raise _fail(t, f"{lay.service} not healthy within {deadline_s:g} s ({state})", "roll back")
        say(f"waiting for {lay.service}: {state} … {elapsed:.1f}s")
        time.sleep(poll)


def reaching(t: Target, what: str, changed: bool, read: Callable[[], Any]) -> Any:
    """A docker read on tvps; DeployUnreachable when docker's error says a part did not answer."""
    try:
        return read()
    except CommandFailed as e:
        out = docker_errors.outage(e.stderr)
        if out is None:
            raise
        raise unreachable(t, what, out, changed) from None


def tvps_state(t: Target) -> str:
    """What tvps runs now, in one line: each container of the service and its image, or why it is unknown."""
    lay = t.layout
    try:
        ps = [s for s in t.fact(facts.COMPOSE_PS, lay) if s.service == lay.service]
    except CommandFailed as e:
        out = docker_errors.outage(e.stderr)
        return f"unknown ({out.line if out else e.message[:150]})"
    except TwilightError as e:
        return f"unknown ({e.message[:150]})"
    if not ps:
        return f"no {lay.service} container"
    return "; ".join(f"{s.name} runs {s.image} ({s.state}{', ' + s.health if s.health else ''})" for s in ps)


def unreachable(t: Target, what: str, out: docker_errors.Outage, changed: bool) -> DeployUnreachable:
    """Exit 3 with the state of tvps and the command that continues; nothing to roll back for."""
    done = ("the change had begun (the old container may be stopped)" if changed
            else f"nothing was changed, {t.version} was not started")
    return DeployUnreachable(f"{what} of {t.version} could not reach {out.line}: {done}; tvps now: {tvps_state(t)}",
                             ("" if changed else "nothing to roll back; ") + f"when it answers again: {continue_line(t)}")


def iso_ms(ts: dt.datetime) -> str:
    return ts.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")


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

"""The one release path: put one image reference on tvps.  `inv deploy` (a tag) and `inv rollback`
(tag@digest) both take it, as Kamal's rollback is its deploy of an older version.

    attempt(journal, kind) -> int        the attempt (deploy#N, rollback#N) this run belongs to
    step_name(kind, n, part) -> str      deploy#1:pull, rollback#2:up … (the names decide/report read)
    apply(t, ref, way, run_step, say) -> Applied
        persist TWILIGHT_VERSION in the compose .env → pull → up → health.wait_healthy (the one wait)
        → the running image is the reference (and, for a deploy, restart count 0)

Each part is a journal step run by the caller's `run_step(part, action)` — deploy keeps the logs
of a failure in the step, rollback times each step against the runbook's budget — so a re-run
skips what finished and redoes what was cut off (journals.once).  `Way` holds what differs
between the two callers: step names, order (a deploy pulls before it persists, so a failed pull
leaves the .env as it was; a rollback pins first), the kept .env's name, and how a failure or an
unreachable part is reported.  A docker error that says a part did not answer
(docker_errors.outage) becomes the caller's Unreachable, never a failure about the release.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

from .. import docker_errors, envfile, facts, runbook
from ..builders import compose as compose_cmd
from ..errors import CommandFailed, TwilightError
from ..health import NotHealthy, ServiceStatus
from ..journal import Step
from ..runbook import Fact, Steps
from ..target import Target

DEPLOY, ROLLBACK = "deploy", "rollback"
_KINDS = {DEPLOY: (Steps.deploy, Fact.DEPLOY_ATTEMPT), ROLLBACK: (Steps.rollback, Fact.ROLLBACK_ATTEMPT)}   # runbook.py
VAR = "TWILIGHT_VERSION"

Action = Callable[[Step], None]
RunStep = Callable[[str, Action], "tuple[Step, str]"]       # journals.once's (step, how) under the caller's name
Outage = Callable[[str, docker_errors.Outage, bool], TwilightError]    # (what, outage, changed) -> the error


def step_name(kind: str, n: int, part: str = "") -> str:
    """`deploy#1` (the attempt's own step) or `deploy#1:pull` (one of its parts): runbook.Steps' names."""
    return _KINDS[kind][0](n, part)


def ended_in_failure(journal: Any, prefix: str) -> bool:
    return any(s.name.startswith(prefix) and s.outcome == "failed" for s in journal.steps)


def attempt(journal: Any, kind: str) -> int:
    """The attempt of `kind` this run belongs to (fact `<kind>_attempt`): one that was cut off (a
    step left running, unreachable or interrupted) is resumed; after one that finished or failed a
    new one starts (the world may have changed since: nothing of it is skipped), and so after a
    deploy attempt that a rollback ended."""
    key = _KINDS[kind][1]
    n = int(journal.facts.get(key, 0))
    over = n == 0 or journal.done(step_name(kind, n)) or ended_in_failure(journal, step_name(kind, n) + ":")
    if kind == DEPLOY:
        over = over or (runbook.rolled_back(journal.facts) or {}).get("attempt") == n
    if over:
        n += 1
        journal.facts[key] = n
    return n


@dataclasses.dataclass(frozen=True)
class Ref:
    """What compose is told to run: TWILIGHT_VERSION=value.  A pin (tag@digest) carries its digest:
    its pull is skipped while the image is still on tvps, and the running repo digest must end with it."""
    value: str
    digest: str = ""

    def runs(self, svc: ServiceStatus | None) -> bool:
        if svc is None:
            return False
        return svc.repo_digest.endswith(self.digest) if self.digest else svc.version == self.value

    def running(self, svc: ServiceStatus | None) -> str:
        return "nothing" if svc is None else (svc.repo_digest or svc.image) if self.digest else svc.image

    @property
    def wanted(self) -> str:
        return self.digest or self.value


@dataclasses.dataclass(frozen=True)
class Way:
    """What differs between deploy and rollback on the one path."""
    persist_step: str                          # Steps.PERSIST_VERSION | Steps.PIN
    health_step: str                           # Steps.HEALTH_GATE | Steps.HEALTH
    persist_first: bool                        # rollback: pin, then pull; deploy: pull, then persist
    backup: str                                # the kept .env (free_name adds -2, -3 …)
    red_hint: str                              # the next step when the image itself is at fault
    fail: Callable[[str, str], TwilightError]  # (message, hint) -> the caller's failure
    outage: Outage                             # a part did not answer -> the caller's Unreachable
    no_restarts: bool = True                   # the gate wants restart count 0 (a deploy); rollback records it


@dataclasses.dataclass(frozen=True)
class Applied:
    health: Step            # the health step: healthy_after_s, gate_s, noticed_healthy_at, digest, restart_count
    backup: str             # the .env this run kept ('' when it wrote none)


def apply(t: Target, ref: Ref, way: Way, run_step: RunStep, *, say: Callable[[str], None] = lambda s: None,
          before_up: Callable[[], None] | None = None, env_text: str | None = None) -> Applied:
    """persist → pull → (before_up: rollback's DuckDB steps) → up → the health wait → verify.  env_text:
    the compose .env as the caller read it under the lock in this run (None: persist reads it)."""
    lay, ssh, s = t.layout, t.ssh, t.settings
    kept = {"backup": ""}

    def persist(step: Step) -> None:
        text = read_compose_env(t) if env_text is None else env_text
        before = envfile.get(text, VAR)
        step.evidence["previous_value"] = before
        if before == ref.value:
            step.note = f"{lay.compose_env} already says {VAR}={ref.value}"
            return
        backup = ""
        if text:
            backup = free_name(t, way.backup)
            ssh.write_file(backup, text.encode(), mode=0o600)
        ssh.write_file(lay.compose_env, envfile.set_var(text, VAR, ref.value).encode(), mode=0o640)
        step.evidence["backup"] = kept["backup"] = backup
        kept_at = f"the previous file kept at {backup}" if backup else f"{lay.compose_env} is new"
        step.note = f"{VAR}={ref.value} (was {before or 'unset'}; {kept_at})"

    def pull(step: Step) -> None:
        if ref.digest and on_tvps(t, f"{s.image_repo}@{ref.digest}"):
            step.note = "the image is still on tvps: no pull"
            return
        say(f"pulling {s.image_repo}:{ref.value} …")
        r = ssh.run(compose_cmd.compose_pull(lay, ref.value), check=False, timeout=s.pull_timeout_s)
        step.evidence["exited"] = r.exited
        if not r.ok:
            _outage(way, step, "the pull", r.stdout + r.stderr, changed=False)
            raise way.fail(f"pull of {ref.value} failed: {_tail(r.stderr)}", "nothing was restarted; check the registry")

    def up(step: Step) -> None:
        say(f"compose up -d {lay.service} ({ref.value}) …")
        r = ssh.run(compose_cmd.compose_up_detached(lay, ref.value), check=False, timeout=300)
        step.evidence["exited"] = r.exited
        if not r.ok:
            _outage(way, step, "`compose up`", r.stdout + r.stderr, changed=True)
            raise way.fail(f"`compose up` of {ref.value} failed: {_tail(r.stderr)}",
                           f"see `docker compose logs {lay.service} --tail=200` on tvps")

    def health(step: Step) -> None:
        t0 = time.monotonic()
        try:
            waited = reaching(way.outage, "the health gate", True, lambda: t.wait_healthy(
                s.deploy_deadline_s, poll_s=s.health_poll_s, say=say))
        except NotHealthy as e:
            raise way.fail(e.message, way.red_hint) from None
        svc = reaching(way.outage, "the health gate", True, lambda: t.service(refresh=True))
        if not ref.runs(svc):
            raise way.fail(f"{lay.service} runs {ref.running(svc)}, not {ref.wanted}", "see `inv status`")
        if way.no_restarts and svc.restart_count:
            raise way.fail(f"{lay.service} {ref.value} is healthy but restarted {svc.restart_count} time(s)",
                           f"a restart loop: {way.red_hint}")
        step.evidence.update({"healthy_after_s": round(waited.seconds, 2), "digest": svc.repo_digest,
                              "restart_count": svc.restart_count, "gate_s": round(time.monotonic() - t0, 2),
                              "noticed_healthy_at": waited.noticed_at})

    order: list[tuple[str, Action]] = [(way.persist_step, persist), (Steps.PULL, pull)]
    for name, action in (order if way.persist_first else order[::-1]):
        run_step(name, action)
    if before_up is not None:
        before_up()
    run_step(Steps.UP, up)
    gate, _ = run_step(way.health_step, health)
    return Applied(gate, kept["backup"])


def _tail(stderr: str) -> str:
    return (stderr.strip().splitlines() or ["no output"])[-1][:300]


def _outage(way: Way, step: Step, what: str, output: str, *, changed: bool) -> None:
    """docker's output says a part did not answer: the caller's Unreachable (recorded in the step)."""
    out = docker_errors.outage(output)
    if out is not None:
        step.evidence["unreachable"] = out.line
        raise way.outage(what, out, changed)


def reaching(outage: Outage, what: str, changed: bool, read: Callable[[], Any]) -> Any:
    """A docker read on tvps; the caller's Unreachable when docker's error says a part did not answer."""
    try:
        return read()
    except CommandFailed as e:
        out = docker_errors.outage(e.stderr)
        if out is None:
            raise
        raise outage(what, out, changed) from None


def on_tvps(t: Target, image: str) -> bool:
    """The image (repo@sha256:…) is in tvps' image store."""
    return t.ssh.run(compose_cmd.docker_image_inspect([image]), check=False, timeout=60).ok


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

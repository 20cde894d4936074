"""§2 rollback: `inv rollback` — server revert by digest, Hermes revert, optional DuckDB revert,
post-rollback verification; one SSH connection, no fixed sleeps, every step journalled.

    resolve(t, journal, to) -> Pin                      where to go back to (refused before anything changes)
    plan(t, pin, restore_db) -> [str]                   the steps, for --dry
    run(t, pin, reason, restore_db, force, say) -> RollbackReport
    drive(t, reason=…, to=…, …) -> RollbackReport         resolve + skill check + confirm + run (`inv rollback`, the guard)

2.1 server revert: the release path deploy takes too (phases/rollout.apply): pin
    TWILIGHT_VERSION=<tag>@sha256:… in the compose project's .env (the previous file kept), pull
    unless the image is still on tvps, up -d, the health wait (health.wait_healthy, compose ps
    ≤ 1 s polls), the running digest must equal the pin.
2.3 (--restore-db, before 2.1's up): the snapshot's sha256 checked against the journal while
    the backend still runs; then stop, move the database aside as
    warehouse.duckdb.failed-<version>-<UTC> (never deleted), copy the snapshot in, verify.
2.2 Hermes revert: `git checkout <previous tag> -- skill/stock-research/` in the local repo
    (refused over uncommitted changes there unless --force, which stashes them first), then
    install-skill, restart and verify as hermes-reinstall does.
2.4 smoke --expect legacy; the journal marked rolled back (trigger, evidence), the follow-up
    issue text, and "no retry today" (deploy refuses V until the next Asia/Shanghai day).
"""
from __future__ import annotations

import dataclasses
import json
import posixpath
import re
import shlex
import time
from pathlib import Path
from typing import Any, Callable

from .. import dataplan, lock, registry, runbook, validate
from ..builders import compose as compose_cmd
from ..builders import files
from ..clock import iso, now_utc
from ..errors import BadInput, CheckFailed, LockHeld, TwilightError, Unreachable
from ..runbook import Fact, Steps
from ..screen import Waiting
from ..target import Target
from . import data, rollout
from .rollout import ROLLBACK, step_name

RESTORE_FILE = Path(__file__).resolve().parents[1] / "monitor" / "restore.py"
SKILL_PATH = "skill/stock-research/"


@dataclasses.dataclass(frozen=True)
class Pin:
    tag: str          # the release tag part (v0.2.0)
    digest: str       # sha256:…
    source: str       # "journal" | "--to"

    @property
    def value(self) -> str:
        """TWILIGHT_VERSION: a tag@digest reference compose pulls and runs by digest."""
        return f"{self.tag}@{self.digest}"

    def ref(self, image_repo: str) -> str:
        return f"{image_repo}@{self.digest}"


@dataclasses.dataclass
class StepTime:
    name: str
    seconds: float
    budget_min: int
    how: str


@dataclasses.dataclass(frozen=True)
class RollbackReport:
    version: str
    pin: str
    digest: str
    steps: tuple[StepTime, ...]
    smoke: dict
    follow_up: str
    restored_db: bool
    hermes: str
    data_plan: dict = dataclasses.field(default_factory=dict)   # §2.3: the evidence's plan and what was done
    left_behind: str = ""     # the rolled-back release's tag still on origin, and the commands that delete it

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        return out


# ---------------------------------------------------------------- where to go back to

def parse_to(value: str, image_repo: str) -> tuple[str | None, str | None]:
    """--to → (tag, digest): a version, sha256:…, or <image_repo>[:tag]@sha256:… (pure)."""
    if value.startswith("sha256:"):
        return None, validate.digest(value, "--to")
    if "@" in value:
        ref, digest = value.rsplit("@", 1)
        validate.digest(digest, "--to")
        repo, _, tag = ref.partition(":") if ref.count(":") == 1 and "/" not in ref.split(":")[-1] else (ref, "", "")
        if ref.rsplit(":", 1)[0] != image_repo and ref != image_repo:
            raise BadInput(f"--to {value!r} is not an image of {image_repo}", f"give a digest of {image_repo}, or a version")
        tag = ref.rsplit(":", 1)[1] if ref != image_repo else ""
        return (validate.version(tag, "--to's tag") if tag else None), digest
    return validate.version(value, "--to"), None


def nothing_to_do(t: Target, journal, to: str | None) -> None:
    """CheckFailed (exit 1, nothing touched) when there is nothing to undo: no --to, no deploy of this
    release attempted, and tvps runs the pre-cutover release (change_plan.nothing_to_roll_back)."""
    from ..change_plan import nothing_to_roll_back

    if to:
        return
    try:
        svc = t.service()
    except TwilightError:        # what runs cannot be read: the rollback's own steps say what is wrong
        return
    line = nothing_to_roll_back(
        version=t.version, running_version=svc.version if svc is not None else None,
        running_digest=svc.repo_digest if svc is not None else None, pre_digest=journal.facts.get(Fact.PRE_DIGEST),
        previous_version=t.settings.previous_version, to_given=bool(to),
        deployed=bool(runbook.deploy_attempt(journal.facts) or journal.facts.get(Fact.POST_DIGEST)))
    if line:
        raise CheckFailed(f"{line}; nothing was touched",
                          "`inv status` shows what runs; to go to another image anyway: "
                          + t.command("rollback --to VERSION (or --to sha256:…)"))


def left_behind(t: Target, pin: Pin) -> str:
    """The rolled-back release's tag if origin still has it (tag-push pushed it), with the commands
    that delete it there and locally; "" when origin has no such tag or it cannot be told."""
    from ..builders import git

    v = t.version
    if v == pin.tag or not (t.settings.local_repo / ".git").exists():
        return ""
    repo = t.local.child(cwd=t.settings.local_repo)
    try:
        out = repo.run(git.ls_remote_tag("origin", v), check=False, timeout=60)
    except TwilightError:
        return ""
    sha = git.parse_ls_remote(out.stdout, v) if out.ok else None
    return tag_left_line(v, sha, str(t.settings.local_repo)) if sha else ""


def tag_left_line(version: str, sha: str, repo: str) -> str:
    """The line naming a tag left on origin and how to delete it (pure)."""
    return (f"tag {version} stays on origin (at {sha[:12]}); if {version} will not be retried as it is, delete it: "
            f"git -C {shlex.quote(repo)} push origin :refs/tags/{version} && git -C {shlex.quote(repo)} tag -d {version}")


def resolve(t: Target, journal, to: str | None) -> Pin:
    """The pin, checked against the registry (or tvps's own images) before anything changes."""
    s = t.settings
    if to:
        tag, digest = parse_to(to, s.image_repo)
        source = "--to"
    else:
        pre = journal.facts.get(Fact.PRE_DIGEST)
        if not pre and t.version_from_host:     # a bare `inv rollback` where no cutover of the running release began
            raise CheckFailed(f"nothing to roll back: tvps runs {t.version} and its journal has no T+00:00 digest "
                              "(no cutover of it started here or on tvps); nothing was touched",
                              "if a cutover is under way, give its release: inv rollback --version V "
                              "(inv status lists journals), or go back to an image with --to")
        if not pre:
            raise BadInput(f"the journal of {t.version} has no T+00:00 digest (local copy and tvps mirror)",
                           "give --to VERSION or --to sha256:… (the image to go back to)")
        # read from the journal (possibly tvps's mirror): validated like --to before it becomes a pin
        ref, _, digest = str(pre).rpartition("@")
        validate.digest(digest, "the journal's T+00:00 digest")
        tag = validate.version(journal.facts.get(Fact.PRE_VERSION) or s.previous_version, "the journal's T+00:00 version")
        source = "journal"
    if digest is None:          # a version: ask the registry what it names now
        assert tag is not None  # parse_to and the journal give a tag whenever they give no digest
        digest = registry.manifest_digest(s, tag)
        if digest is None:
            raise BadInput(f"--to {to}: {s.image_repo}:{tag} is not in the registry", "give a published version or a digest")
    elif not rollout.on_tvps(t, f"{s.image_repo}@{digest}"):
        if registry.manifest_digest(s, digest) is None:
            raise BadInput(f"{s.image_repo}@{digest} is neither on tvps nor in the registry",
                           "give --to with an image that exists")
    return Pin(tag or s.previous_version, digest, source)




# ---------------------------------------------------------------- §2.3 from evidence (issue 24)

def read_data_plan(t: Target, journal: Any, pin: Pin, snap: runbook.Snapshot, since: str, timed: Callable, say: Callable[[str], None]
                   ) -> dataplan.DataPlan:
    """The warehouse next to the T+00:00 snapshot, read before anything changes; the plan's line said."""
    holder: dict[str, Any] = {}

    def action(step) -> None:
        ev = data.evidence(t, pin.value, snapshot_name(snap), since)
        holder["plan"] = p = dataplan.plan(ev, since)
        step.evidence.update({"plan": p.to_json(), "read_via": ev.get("read_via"), "storage": ev.get("storage")})
        step.note = p.line()

    step, how = timed(Steps.DATA_PLAN, "duckdb_revert", action)
    p = holder.get("plan") or dataplan.from_json(step.evidence.get("plan") or {})
    say(f"data plan: {p.line()}")
    return p


def preview_plan(t: Target) -> str:
    """The data plan's line for a question asked before a rollback (nothing changes, nothing journalled);
    what went wrong instead when the evidence cannot be read."""
    journal = t.journal()
    snap = runbook.snapshot(journal.facts) or {}
    since = str(snap.get("taken_at") or "")
    if not snap.get("sha256") or not since:
        return "no T+00:00 snapshot in the journal: the warehouse is kept"
    try:
        pin = resolve(t, journal, None)
        return dataplan.plan(data.evidence(t, pin.value, snapshot_name(snap), since), since).line()
    except TwilightError as e:
        return f"could not be read ({e.message[:200]}); the rollback reads it again before it changes anything"


def kept_name(t: Target, journal: Any, n: int) -> str:
    """Where a restore in rollback attempt n moves the warehouse (inside the container), fixed in the
    journal before it happens: a resumed attempt reuses it (never a second restore, never a second file)."""
    s = t.settings
    known = journal.facts.get(Fact.DB_RESTORE) or {}
    if known.get("rollback_attempt") == n and known.get("failed"):
        return str(known["failed"])
    stamp = now_utc().strftime("%Y%m%dT%H%M%SZ")
    failed = f"{s.container_warehouse}.failed-{t.version}-{stamp}"
    journal.facts[Fact.DB_RESTORE] = {"rollback_attempt": n, "failed": failed}
    t.journals.save(journal)
    return failed


def record_plan(journal: Any, plan: dataplan.DataPlan, done: str, t: Target) -> None:
    journal.facts[Fact.DATA_PLAN] = {**plan.to_json(), "done": done}


# ---------------------------------------------------------------- the container scripts

def restore_script(db: str, snapshot: str, sha: str, failed: str, mode: str) -> str:
    params = json.dumps({"db_path": db, "snapshot": snapshot, "sha256": sha, "failed_path": failed, "mode": mode},
                        ensure_ascii=True, sort_keys=True)
    return RESTORE_FILE.read_text(encoding="utf-8").replace(
        "RESTORE_PARAMS: str = None  # type: ignore[assignment]  # replaced by phases/rollback.restore_script()", f"RESTORE_PARAMS = {params!r}")


def _one_off(t: Target, pin: Pin, script: str) -> dict:
    lay = t.layout
    argv = compose_cmd.compose(lay, "run", "--rm", "--no-deps", "-T", "--entrypoint", "python3", lay.service, "-",
                               version=pin.value)
    r = t.ssh.run(argv, stdin=script, check=False, timeout=600)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1][:300]
        raise CheckFailed(f"the restore script did not run (exit {r.exited}: {tail})", "see the message; nothing was deleted")


# ---------------------------------------------------------------- the run

def plan(t: Target, restore_db: bool) -> list[str]:
    from ..builders.layout import layout
    from ..executor import render

    lay = layout(t.settings, "~")
    pin = "<tag>@sha256:<the journal's T+00:00 digest>"
    steps = [f"lock        {render(files.rename_dir(lay.cutover_dir + '/.lock-new-<pid>-<hex>', lay.lock_dir))}   "
             "(holder.json inside; takes over a lock your failed deploy left)",
             f"pin         write {lay.compose_env}: TWILIGHT_VERSION={pin} (previous kept)",
             f"pull        {render(compose_cmd.compose_pull(lay, pin))}   (skipped when the image is still on tvps)",
             "data-plan   compose run --rm … python3 - (the warehouse, through a consistent copy, next to the T+00:00 "
             "snapshot: tables, columns, types, indexes, storage version, rows since T+00:00) → keep, or restore"
             + (" (--restore-db: restore)" if restore_db else "")]
    if restore_db:
        steps += ["db-check    compose run --rm … python3 - (snapshot sha256 == journal) while the backend runs",
                  f"db-restore  {render(compose_cmd.compose(lay, 'stop', lay.service))}; move warehouse.duckdb aside "
                  "as .failed-<version>-<UTC>; copy the snapshot in; verify sha256"]
    steps += [f"up          {render(compose_cmd.compose_up_detached(lay, pin))}",
              f"health      {render(compose_cmd.compose_ps(lay))} every ≤1 s until healthy; running digest == pin",
              f"hermes      git checkout <previous tag> -- {SKILL_PATH} (refused over local changes unless --force); "
              "install-skill; restart; verify",
              "verify      GET /price → the legacy envelope (value, metric, code); journal marked rolled back",
              "            schema changed since T+00:00 and v0.2.0 not healthy or not green: db-check, db-restore, up, "
              "health again (--keep-db: stop red instead), then db-export (rows since T+00:00 → Parquet beside the kept file)",
              f"unlock      {render(['rm', '-rf', '--', lay.lock_dir])}"]
    return steps


def drive(t: Target, *, reason: str, to: str | None = None, restore_db: bool = False, keep_db: bool = False, force: bool = False,
          say: Callable[[str], None] = lambda s: None, confirm: Callable[[Pin], None] = lambda pin: None
          ) -> RollbackReport:
    """`inv rollback`'s path after its flags are checked (the §2 guard's --auto-rollback takes it too):
    resolve the pin, refuse over local skill changes, confirm, run with the Hermes revert."""
    if t.version == "unknown":
        raise BadInput("cannot tell which cutover to roll back (no running tag, no lock)", "give --version V")
    nothing_to_do(t, t.journal(), to)
    pin = resolve(t, t.journal(), to)
    if not force and skill_changes(t, pin.tag):
        raise BadInput(f"uncommitted changes under {SKILL_PATH} in {t.settings.local_repo}: refusing, "
                       "nothing changed", "commit or stash them, or re-run with --force (it stashes them first)")
    confirm(pin)
    return run(t, pin, reason=reason, restore_db=restore_db, force=force, say=say,
               hermes=lambda tt, tag, say_: hermes_revert(tt, tag, say_, force), keep_db=keep_db)


def run(t: Target, pin: Pin, *, reason: str, restore_db: bool, force: bool,
        say: Callable[[str], None] = lambda s: None, hermes: Callable[[Target, str, Callable], str] | None = None,
        keep_db: bool = False) -> RollbackReport:
    v, lay, ssh, s = t.version, t.layout, t.ssh, t.settings
    journal = t.journal()
    snap = runbook.snapshot(journal.facts) or {}
    if restore_db and keep_db:
        raise BadInput("--restore-db and --keep-db say opposite things", "give one of them, or neither (the data plan decides)")
    if restore_db and not snap.get("sha256"):
        raise BadInput(f"--restore-db: the journal of {v} records no snapshot", "run without --restore-db")
    if snap.get("sha256"):
        snapshot_name(snap)          # refused before anything changes
    n = 0
    times: list[StepTime] = []

    def timed(name: str, budget: str, action: Callable[[Any], None]) -> tuple[Any, str]:
        t0 = time.monotonic()
        step, how = t.journals.once(journal, step_name(ROLLBACK, n, name), action)
        took = time.monotonic() - t0
        times.append(StepTime(name, round(took, 2), s.budgets[budget], step.note or how))
        # progress only (one line in place; in a log every 10 s): the timed steps are printed once, at the end
        say(Waiting(f"rollback: {name} {step.note or how} ({took:.1f} s)"))
        return step, how

    holder = lock.new_holder(s.operator, v, f"rollback: {reason}")
    _maybe_break(t, holder, force)
    with lock.held_for_change(ssh, lay, holder) as taken_over:
        journal = t.journal(fresh=True)     # as it is now the lock is ours: a run without the lock writes nothing
        n = rollout.attempt(journal, ROLLBACK)
        t.journals.save(journal)
        if taken_over is not None:
            t.audit("lock-takeover", "ok", f"rollback took over from PID {taken_over.client_pid} ({taken_over.reason})")
            journal.facts.setdefault(Fact.LOCK_TAKEOVERS, []).append(
                runbook.LockTakeover(at=iso(now_utc()), from_pid=taken_over.client_pid, from_reason=taken_over.reason))
            say(f"took the deploy lock over from your earlier run (PID {taken_over.client_pid}: {taken_over.reason})")
        t.audit("rollback-start", "started", f"to {pin.value}: {reason}")

        since = str(snap.get("taken_at") or "")
        plan = read_data_plan(t, journal, pin, snap, since, timed, say) if snap.get("sha256") and since else None
        choice = dataplan.choose(plan, restore_db, keep_db) if plan is not None else \
            (dataplan.RESTORE if restore_db else dataplan.KEEP)
        container_dir = posixpath.dirname(s.container_warehouse)
        container_snap = posixpath.join(container_dir, snapshot_name(snap)) if snap.get("sha256") else ""
        failed = kept_name(t, journal, n)
        restored = {"done": False}

        def db_check(step) -> None:
            res = _one_off(t, pin, restore_script(s.container_warehouse, container_snap, snap["sha256"], failed, "check"))
            step.evidence.update(res)
            if not res.get("ok"):
                raise BadInput(f"the restore was refused before anything stopped: {res.get('error')}",
                               "find the right snapshot, or roll back with --keep-db")

        def db_restore(step) -> None:
            ssh.run(compose_cmd.compose(lay, "stop", lay.service), timeout=120)
            res = _one_off(t, pin, restore_script(s.container_warehouse, container_snap, snap["sha256"], failed, "restore"))
            step.evidence.update(res)
            if not res.get("ok"):
                raise CheckFailed(f"the DuckDB restore failed: {res.get('error')} (moved aside: {res.get('moved_aside')})",
                                  "nothing was deleted; see the files named, fix by hand")
            step.note = f"previous database kept as {', '.join(res.get('moved_aside') or []) or 'nothing (none existed)'}"
            say(step.note)

        def db_steps() -> None:       # 2.3, between the release path's pull and its up
            timed(Steps.DB_CHECK, "duckdb_revert", db_check)
            timed(Steps.DB_RESTORE, "duckdb_revert", db_restore)
            restored["done"] = True

        def run_step(part: str, action: rollout.Action):
            return timed(part, "server_revert", action)

        def legacy_smoke() -> Any:
            from .smoke import live

            t0 = time.monotonic()
            result = live(t, s.smoke_code, "legacy")
            times.append(StepTime("verify", round(time.monotonic() - t0, 2), s.budgets["post_rollback"],
                                  f"smoke --expect legacy: {result.verdict.verdict}"))
            return result

        verify_first = choice == dataplan.VERIFY
        try:
            rollout.apply(t, rollout.Ref(pin.value, pin.digest), way(t, pin, reason), run_step, say=say,
                          before_up=db_steps if choice == dataplan.RESTORE else None)
            smoke_result = legacy_smoke() if verify_first else None
            legacy_ok, why_not = (smoke_result is None or smoke_result.verdict.green), ""
            if smoke_result is not None and not legacy_ok:
                why_not = f"/price is not the legacy envelope ({smoke_result.verdict.verdict})"
        except CheckFailed as e:
            if not verify_first or isinstance(e, Unreachable):
                raise
            legacy_ok, why_not, smoke_result = False, e.message, None
        if verify_first and plan is not None:
            after = dataplan.after_verify(plan, legacy_ok, keep_db)
            if after == dataplan.KEEP:
                say(f"v0.2.0 is healthy and its legacy smoke green on the migrated warehouse: keeping it ({plan.line()})")
            elif after == dataplan.REFUSED:
                record_plan(journal, plan, "refused: --keep-db", t)
                t.journals.save(journal)
                raise CheckFailed(f"v0.2.0 does not work on the migrated warehouse ({why_not}) and --keep-db forbids the "
                                  f"restore; data plan: {plan.line()}",
                                  "restore it: " + t.command(f"rollback --version {shlex.quote(v)} --restore-db --reason "
                                                             f"{shlex.quote(reason)} --yes"))
            else:
                say(f"v0.2.0 does not work on the migrated warehouse ({why_not[:160]}): restoring the T+00:00 snapshot")
                db_steps()
                rollout.apply(t, rollout.Ref(pin.value, pin.digest), way(t, pin, reason),
                              lambda part, action: timed(part + Steps.AFTER_RESTORE, "server_revert", action), say=say)
                smoke_result = None
        if restored["done"] and plan is not None and plan.rows_at_risk:
            def db_export(step) -> None:
                out = data.export(t, pin.value, failed, snapshot_name(snap), since)
                step.evidence.update(out)
                step.note = (f"{dataplan.rows(int(out.get('rows') or 0))} written since T+00:00 exported beside "
                             f"{posixpath.basename(failed)}")
                say(step.note)
            timed(Steps.DB_EXPORT, "duckdb_revert", db_export)
        if plan is not None:
            record_plan(journal, plan, "restored" if restored["done"] else "kept", t)

        hermes_how = "not run"
        if hermes is not None:
            def hermes_step(step) -> None:
                nonlocal hermes_how
                hermes_how = hermes(t, pin.tag, say)
                step.note = hermes_how
            timed(Steps.HERMES, "hermes_revert", hermes_step)

        if smoke_result is None:
            smoke_result = legacy_smoke()
        verdict = smoke_result.verdict.to_json()
        if not smoke_result.verdict.green:
            raise CheckFailed(f"after the rollback /price is not the legacy envelope: {smoke_result.verdict.verdict}, "
                              f"{', '.join(f.code for f in smoke_result.verdict.red_flags)}",
                              "run `inv smoke --expect legacy` and `inv diagnose`; escalate")
        journal.facts[Fact.ROLLED_BACK] = runbook.RolledBack(
            at=iso(now_utc()), attempt=journal.facts.get(Fact.DEPLOY_ATTEMPT, 0), rollback_attempt=n, trigger=reason,
            to=pin.value, evidence={"smoke": verdict, "restored_db": restored["done"]})
        stray = left_behind(t, pin)           # the W4 tag on origin: named, never deleted for the operator
        with t.journals.step(journal, step_name(ROLLBACK, n)) as done:
            done.evidence.update({"to": pin.value, "steps": [dataclasses.asdict(x) for x in times],
                                  "remote_commands": ssh.commands_run, **({"left_behind": stray} if stray else {})})
        t.audit("rollback", "ok", f"to {pin.value}: {reason}")
        if stray:
            say(stray)
        return RollbackReport(v, pin.value, pin.digest, tuple(times), verdict, follow_up(t, journal, pin, reason, stray),
                              restored["done"], hermes_how, journal.facts.get(Fact.DATA_PLAN) or {}, stray)


def way(t: Target, pin: Pin, reason: str) -> rollout.Way:
    """The rollback's side of the release path: pin first, keep .env.before-rollback, the digest checked."""
    lay = t.layout

    def unreachable(what: str, out, changed: bool) -> TwilightError:
        done = "the change had begun (the old container may be stopped)" if changed else "nothing was restarted"
        return Unreachable(f"{what} of {pin.value} could not reach {out.line}: {done}; tvps now: {rollout.tvps_state(t)}",
                           f"when it answers again: {rollback_again(t, reason)}")

    return rollout.Way(persist_step=Steps.PIN, health_step=Steps.HEALTH, persist_first=True,
                       backup=f"{lay.compose_env}.before-rollback",
                       red_hint=f"see `docker compose logs {lay.service} --tail=200` on tvps and `inv diagnose`; escalate",
                       fail=CheckFailed, outage=unreachable, no_restarts=False)


def rollback_again(t: Target, reason: str) -> str:
    """The command that continues this rollback (its finished steps are skipped)."""
    return t.command(f"rollback --version {t.version} --yes --reason {shlex.quote(reason[:150])}")


def snapshot_name(snap: runbook.Snapshot) -> str:
    """The snapshot's file name from the journal (maybe tvps's mirror): a plain name, or refused."""
    name = posixpath.basename(str(snap.get("host_path", "")))
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,200}", name):
        raise BadInput(f"the journal's snapshot path {str(snap.get('host_path'))[:80]!r} is not a plain file name",
                       "check the journal; roll back without --restore-db")
    return name


def _maybe_break(t: Target, holder, force: bool) -> None:
    current = lock.read_holder(t.ssh, t.layout)
    if current is None or current.operator == holder.operator:
        return
    if not force:
        raise LockHeld(f"the deploy lock is held by {current.describe()}",
                       "ask them; or, if you must, re-run with --force to break it (recorded in the audit log)")
    lock.release_if_still(t.ssh, t.layout, current)
    t.audit("lock-broken", "forced", f"rollback broke the lock of {current.operator} ({current.reason})")


def follow_up(t: Target, journal, pin: Pin, reason: str, stray: str = "") -> str:
    f = journal.facts
    timeline = [f"- {s.started_at} {s.name}: {s.outcome}{(' — ' + s.note) if s.note else ''}"
                for s in journal.steps if not s.name.startswith(Steps.SMOKE_PREFIX) or s.outcome != "ok"][-25:]
    return "\n".join([
        f"Title: W4 /price cutover {t.version} rolled back — {reason}",
        "",
        f"Trigger: {reason}",
        f"Rolled back at: {f.get(Fact.ROLLED_BACK, {}).get('at', iso(now_utc()))} by {t.settings.operator}",
        f"Cutover commit: {f.get(Fact.CUTOVER_COMMIT, '?')}",
        f"Pre-cutover digest (T+00:00): {f.get(Fact.PRE_DIGEST, '?')}",
        f"Deployed digest: {f.get(Fact.POST_DIGEST, '?')}",
        f"Running now: {t.settings.image_repo}:{pin.value}",
        f"Snapshot: {(runbook.snapshot(f) or {}).get('host_path', '?')} sha256 {(runbook.snapshot(f) or {}).get('sha256', '?')}",
        "",
        "Evidence: see the journal steps below and `inv diagnose`; post-rollback smoke: legacy envelope, green.",
        "",
        "Timeline:",
        *timeline,
        "",
        "Do not retry the cutover today (runbook §2.4); `inv deploy` refuses it until the next Asia/Shanghai day.",
        *([f"Left behind: {stray}"] if stray else []),
    ])


# ---------------------------------------------------------------- 2.2 Hermes revert

def skill_changes(t: Target, previous_tag: str) -> str:
    """Local changes under skill/stock-research/ that the revert would lose ('' when none):
    the path differs from HEAD *and* from the previous tag (an earlier rollback's own
    checkout of the previous tag is not the operator's work), or holds untracked files."""
    from ..builders import git

    repo = t.local.child(cwd=t.settings.local_repo)
    status = repo.run(git.status_porcelain(SKILL_PATH), timeout=60).stdout.strip()
    if not status:
        return ""
    untracked = repo.run(git.git("ls-files", "--others", "--exclude-standard", "--", SKILL_PATH), timeout=60).stdout.strip()
    same_as_tag = repo.run(git.git("diff", "--quiet", previous_tag, "--", SKILL_PATH), check=False, timeout=60).ok
    return "" if same_as_tag and not untracked else status


def hermes_revert(t: Target, previous_tag: str, say: Callable[[str], None], force: bool) -> str:
    """git checkout <previous tag> -- skill/stock-research/, then install-skill, restart, verify."""
    from ..builders import git
    from ..results import Status
    from . import hermes as reinstall

    repo = t.local.child(cwd=t.settings.local_repo)
    saved = ""
    repo.run(git.fetch("origin"), timeout=120)
    if not repo.run(git.rev_parse(previous_tag), check=False).ok:
        raise CheckFailed(f"the local repo has no tag {previous_tag}", f"fetch it: git fetch origin tag {previous_tag}")
    if skill_changes(t, previous_tag):
        if not force:   # checked before anything changed; here only if they appeared since
            raise CheckFailed(f"uncommitted changes under {SKILL_PATH} in {t.settings.local_repo}",
                              "commit or stash them, or re-run with --force (stashes them first)")
        stamp = now_utc().strftime("%Y%m%dT%H%M%SZ")
        repo.run(git.git("stash", "push", "--include-untracked", "-m", f"twilight-ops rollback of {t.version} {stamp}",
                         "--", SKILL_PATH), timeout=60)
        saved = repo.run(git.git("rev-parse", "--short", "stash@{0}"), timeout=30).stdout.strip()
        say(f"your uncommitted {SKILL_PATH} changes are saved in git stash {saved} (`git stash list` in {t.settings.local_repo})")
    repo.run(git.git("checkout", previous_tag, "--", SKILL_PATH), timeout=60)
    report = reinstall.run(t, force=True)
    failed = [r for r in report.steps if r.status is Status.FAIL]
    if failed:
        raise CheckFailed(f"Hermes revert: {failed[0].id} failed: {failed[0].reason}", failed[0].next_step)
    return f"{SKILL_PATH} as of {previous_tag} installed and registered" + (f"; local changes in stash {saved}" if saved else "")

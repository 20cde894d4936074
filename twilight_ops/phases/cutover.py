"""`inv cutover`: the whole runbook in order, resumable from the journal, against the T+ clock.

    run(t, options, ui) -> CutoverReport

Order (runbook §1): preflight → tag-push → deploy → smoke → hermes-reinstall → agent-smoke →
decide → closeout, or rollback.  One Target (one SSH connection) for the whole run; the deploy
lock is held from the first phase to the last (deploy and rollback inside re-enter it).

Every phase is a journal step `cutover:<phase>` (ok | red | failed) around the phase's own
steps.  `--resume` skips the phases whose step is ok and re-runs the others; each phase is
itself resumable (its side effects are `once` steps that a re-run skips or verifies: no second
tag, no second snapshot, a deploy cut off mid-way resumes its attempt).  After a red phase the
run goes straight to the decision point (the runbook rolls back at T+00:15 without waiting for
the agent checks).  Once a decision has been reached, --resume returns to the decision point.

The decision (decide.py) is re-read from the journal's evidence, never carried in memory;
GO asks before closeout and ROLLBACK asks before the rollback, unless --yes; --auto-rollback
rolls back on ROLLBACK without asking.  Who confirmed, and how, goes into the journal.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from .. import decide as decision_mod
from .. import lock, runbook
from ..clock import iso, now_utc
from ..errors import BadInput, CheckFailed, TwilightError, Unreachable, mark_step, step_of
from ..journal import cut_off
from ..runbook import CutoverState, Phases, Steps, invocation, tplus
from ..screen import WAIT_OVER
from ..target import Target


@dataclasses.dataclass(frozen=True)
class Options:
    yes: bool = False
    auto_rollback: bool = False
    resume: bool = False


class View(Protocol):
    """How each phase's result is shown, and the report written: tasks/cutover.py passes the rich
    one in (a phase module never imports render)."""
    def preflight(self, report: Any) -> None: ...
    def deploy(self, report: Any) -> None: ...
    def deploy_failed(self, error: Any) -> None: ...
    def smoke(self, verdict: Any) -> None: ...
    def hermes(self, report: Any) -> None: ...
    def agent(self, report: Any) -> None: ...
    def decision(self, decision: decision_mod.Decision) -> None: ...
    def rollback(self, report: Any) -> None: ...
    def closeout(self, report: Any) -> None: ...
    def write_report(self, t: Target, journal: Any) -> Path: ...


@dataclasses.dataclass
class Ui:
    """How the run talks to the operator: phase output goes to `console` (through `view`), progress to `say`."""
    console: Any
    say: Callable[[str], None]
    ask: Callable[[str], bool]          # True when the operator typed yes (only on a terminal)
    interactive: bool
    view: View
    progress: Callable[[str], None] = lambda line: None    # waits (CI, registry): throttled or a status line
    confirm_start: Callable[[], None] = lambda: None       # the plan, the version typed back (a new cutover only)
    heading: Callable[[str], None] | None = None          # a phase's clock line (bold); say when None

    def head(self, line: str) -> None:
        (self.heading or self.say)(line)


@dataclasses.dataclass(frozen=True)
class CutoverReport:
    version: str
    outcome: str          # closed-out | rolled-back | fix-forward | incomplete | awaiting-confirmation | stopped
    decision: dict[str, Any]
    report_path: str
    exit_code: int

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Stop(TwilightError):
    """The run stopped before the decision (a NO-GO preflight, a failed tag-push): resume later.
    `evidence` goes into the phase's journal step (and so into the report)."""
    exit_code = 1

    def __init__(self, message: str, hint: str = "", **evidence: Any):
        super().__init__(message, hint)
        self.evidence = evidence


# ---------------------------------------------------------------- how to go on

def resume_line(version: str, runtime_file: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The exact command that continues this cutover: the run's own invocation (its INVOKE_TWILIGHT_*
    settings from `environ`, `-f FILE` when it had one: runbook.invocation), so it aims at the same target."""
    return f"{invocation(runtime_file, environ or {})} cutover --version {version} --resume"


def resume_for(t: Target) -> str:
    """resume_line for this run (its `-f FILE` and its INVOKE_TWILIGHT_* env)."""
    return resume_line(t.version, t.runtime_file, os.environ)


def interrupted_line(e: BaseException, resume: str) -> str:
    """What Ctrl-C prints: which step it stopped, and the resume line."""
    step = step_of(e)
    during = f" during {step}" if step else ""
    return f"interrupted{during}: the journal shows how far it got; resume with: {resume}"


def lost_on_the_way(e: Unreachable, resume: str) -> Unreachable:
    """A part that could not be reached mid-cutover: the same error, naming the step in flight
    and ending with the resume line."""
    step = step_of(e)
    message = f"{e.message}; step in flight: {step}" if step else e.message
    hint = f"{e.hint}, then resume with: {resume}" if e.hint else f"resume with: {resume}"
    return type(e)(message, hint)


# ---------------------------------------------------------------- the T+ clock

def minutes_since(started_at: str, now: str) -> float:
    import datetime as dt

    return (dt.datetime.fromisoformat(now) - dt.datetime.fromisoformat(started_at)).total_seconds() / 60


def elapsed(minutes: float) -> str:
    """The real time since the cutover's start as `T+mm:ss` (minutes past 59 keep counting: T+75:03)."""
    s = max(0, int(minutes * 60))
    return f"T+{s // 60:02d}:{s % 60:02d}"


def clock_line(t: Target, phase: str, started_at: str) -> str:
    """A phase's heading: the real elapsed time, the phase, the runbook's slot and budget, and how far
    the run is from the runbook's clock: `T+03:12  deploy  (slot T+00:05, budget 10 min; 2 min ahead …)`."""
    p = runbook.phase(phase)
    assert p is not None, phase
    at = p.at
    now = minutes_since(started_at, iso(now_utc()))
    budget = t.settings.budgets[p.budget]
    late = now - at
    where = ("on the runbook's clock" if abs(late) < 1 else
             f"{late:.0f} min behind the runbook" if late > 0 else f"{-late:.0f} min ahead of the runbook")
    return f"{elapsed(now)}  {phase}  (slot {tplus(at)}, budget {budget} min; {where})"


# ---------------------------------------------------------------- journal bookkeeping

def state(journal) -> CutoverState:
    return runbook.cutover_state(journal.facts)


def phase_done(journal, phase: str) -> bool:
    step = journal.last(Steps.cutover(phase))
    return step is not None and step.outcome == "ok"


def begin(t: Target, phase: str) -> None:
    from ..journal import Step

    journal = t.journal()
    journal.steps.append(Step(name=Steps.cutover(phase), started_at=iso(now_utc())))
    t.journals.save(journal)


def end(t: Target, phase: str, outcome: str, note: str = "", *, mirror: bool = True, **evidence: Any) -> None:
    """Close the phase's step (the run's one journal: the phase added its own steps to it) and bring
    the tvps mirror up to date: one append per phase (mirror=False when an error is on its way out:
    the batch's end sends it, and a dead link cannot replace that error)."""
    journal = t.journal()
    step = journal.last(Steps.cutover(phase))
    if step is None or step.outcome != "running":
        return
    step.outcome, step.note, step.ended_at = outcome, note[:300], iso(now_utc())
    step.evidence.update(evidence)
    t.journals.save(journal, mirror=mirror)


def update_state(t: Target, changes: CutoverState) -> CutoverState:
    journal = t.journal()
    st = CutoverState(**state(journal))
    st.update(changes)
    journal.facts[runbook.Fact.CUTOVER] = st
    t.journals.save(journal)
    return st


def check_start(journal, options: Options, version: str, runtime_file: str | None = None,
                environ: Mapping[str, str] | None = None) -> str:
    """'start' | 'resume' | 'finished' — or BadInput when the options do not fit the journal (pure;
    `runtime_file` and `environ` only shape the printed command)."""
    st = state(journal)
    if st.get("finished_at"):
        return "finished"
    if st and not options.resume:
        raise BadInput(f"a cutover of {version} is in progress since {st.get('started_at')} (last phase: {last_phase(journal)})",
                       f"resume it: {resume_line(version, runtime_file, environ)}")
    if not st and options.resume:
        raise BadInput(f"no cutover of {version} to resume (its journal has none)",
                       f"start one: {resume_line(version, runtime_file, environ).removesuffix(' --resume')}")
    return "resume" if st else "start"


def last_phase(journal) -> str:
    return next((p for p in (Steps.cutover_phase(s.name) for s in reversed(journal.steps)) if p is not None), "start")


def held_by_another(t: Target, journal) -> None:
    """A cutover in progress whose lock another live run holds: LockHeld naming that run (PID, host,
    since, phase) before any pointer at --resume (which would only hit the lock)."""
    st = state(journal)
    if not st or st.get("finished_at"):
        return
    current = lock.read_holder(t.ssh, t.layout)
    if current is None:
        return
    me = lock.new_holder(t.settings.operator, t.version, "cutover")
    seen = lock.liveness(current, me, lock.proc_start(current.client_pid) if current.client_pid else None)
    refused = lock.busy(current, seen, f"a cutover of {t.version} is in progress since {st.get('started_at')} "
                                       f"(last phase: {last_phase(journal)})",
                        resume_for(t))
    if refused is not None:
        raise refused


# ---------------------------------------------------------------- the phases

def _preflight(t: Target, ui: Ui) -> str:
    from . import preflight

    report = preflight.run(t)
    ui.view.preflight(report)
    if not report.go:
        raise Stop("preflight: NO-GO (runbook §0: do not start)",
                   f"resolve the FAIL rows, then: {resume_for(t)}",
                   checks=[c.to_json() for c in report.results])
    return "ok"


def _tag_push(t: Target, ui: Ui) -> str:
    from . import tag_push

    try:
        r = tag_push.run(t, None, progress=ui.progress)
    except CheckFailed as e:
        raise Stop(f"tag-push: {e.message}", f"{e.hint}; then: {resume_for(t)}") from None
    finally:
        ui.say(WAIT_OVER)        # the CI wait's live line ends before the result is printed
    ui.console.print(r.sentence(), markup=False)
    return "ok"


def _deploy(t: Target, ui: Ui) -> str:
    from . import deploy

    try:
        report = deploy.run(t, say=ui.say)        # its health wait's lines are screen.Waiting: one line in place
    except deploy.DeployFailed as e:          # it was tried and failed: the decision rolls back
        ui.view.deploy_failed(e)
        ui.console.print(f"deploy failed: {e.message}", markup=False)
        return "red"
    except CheckFailed as e:                  # refused before anything changed (e.g. rolled back today)
        raise Stop(f"deploy refused: {e.message}", e.hint or f"then: {resume_for(t)}") from None
    except deploy.DeployUnreachable as e:     # a part did not answer: no evidence about the release; resumable
        first = (e.hint or "").split("when it answers again:")[0]       # "nothing to roll back; " when nothing changed
        again = Unreachable(e.message, f"{first}wait until it answers again")   # inv cutover adds the resume line
        mark_step(again, step_of(e) or Steps.cutover(Phases.DEPLOY))
        raise again from None
    ui.view.deploy(report)
    return "ok"


def _smoke(t: Target, ui: Ui) -> str:
    from . import smoke

    result = smoke.live(t, t.settings.smoke_code, "w4")
    ui.view.smoke(result.verdict)
    return "ok" if result.verdict.green else "red"


def _hermes(t: Target, ui: Ui) -> str:
    from ..results import exit_code
    from . import hermes

    report = hermes.run(t)
    ui.view.hermes(report)
    if exit_code(report.results) != 0:
        raise Stop("hermes-reinstall failed (the skill is not verified)",
                   f"fix the failing step, then: {resume_for(t)}")
    return "ok"


def _agent(t: Target, ui: Ui) -> str:
    from . import agent_smoke

    ui.progress(agent_smoke.WAITING)
    try:
        report = agent_smoke.run(t)
    finally:
        ui.say(WAIT_OVER)
    ui.view.agent(report)
    return "ok" if report.green else "red"


RUNNERS: dict[str, Callable[[Target, Ui], str]] = {
    Phases.PREFLIGHT: _preflight, Phases.TAG_PUSH: _tag_push, Phases.DEPLOY: _deploy, Phases.SMOKE: _smoke,
    Phases.HERMES: _hermes, Phases.AGENT: _agent}


def run_phase(t: Target, phase: str, ui: Ui, started_at: str) -> str:
    ui.head(clock_line(t, phase, started_at))
    try:
        begin(t, phase)
        outcome = RUNNERS[phase](t, ui)
    except Stop as e:
        end(t, phase, "red", e.message, **e.evidence)
        raise
    except BaseException as e:      # a lost connection, Ctrl-C: the step says so; --resume re-runs it
        mark_step(e, Steps.cutover(phase))
        end(t, phase, cut_off(e), e.line() if isinstance(e, TwilightError) else f"interrupted: {type(e).__name__}",
            mirror=False)
        raise
    end(t, phase, outcome)
    return outcome


def run_phases(t: Target, ui: Ui, started_at: str) -> None:
    for phase in runbook.CUTOVER_PHASES:
        if phase_done(t.journal(), phase):
            ui.say(f"{phase}: done earlier (journal), skipped")
            continue
        if run_phase(t, phase, ui, started_at) == "red":
            ui.say(f"{phase} is red: straight to the decision point (the runbook rolls back without waiting)")
            return


# ---------------------------------------------------------------- the decision point and after

def decide_now(t: Target) -> decision_mod.Decision:
    journal = t.journal()
    in_cutover = bool(runbook.cutover_state(journal.facts).get("started_at"))   # its resume confirms the decision
    decision = decision_mod.decide(decision_mod.gather(journal, t.prefix), t.version, t.prefix, in_cutover)
    with t.journals.step(journal, Steps.DECIDE) as step:
        step.evidence.update(decision.to_json())
        step.note = decision.verdict
    t.audit(Steps.DECIDE, decision.verdict.lower(), decision.reason[:300])
    return decision


def confirm(ui: Ui, options: Options, question: str, auto: bool = False) -> str:
    """How the decision was confirmed: '--yes', '--auto-rollback', 'typed yes'; '' when it was not."""
    if auto:
        return "--auto-rollback"
    if options.yes:
        return "--yes"
    if ui.interactive and ui.ask(question):
        return "typed yes"
    return ""


def record_decision(t: Target, decision, how: str) -> None:
    """The decision and who confirmed it.  A reached decision (GO, ROLLBACK, FIX-FORWARD) is where
    --resume returns; INCOMPLETE is not one: --resume re-runs the phases that are not ok."""
    record = runbook.DecisionRecord(verdict=decision.verdict, reason=decision.reason, at=iso(now_utc()),
                                    confirmed_by=t.settings.operator if how else "", how=how or "not confirmed")
    changes = CutoverState(decision=record)
    if decision.verdict != decision_mod.INCOMPLETE:
        changes["decided_at"] = iso(now_utc())
    update_state(t, changes)


def rollback_now(t: Target, decision, ui: Ui) -> None:
    """`inv rollback`'s own path (rollback.drive), with the decision's trigger as the reason."""
    from . import rollback

    try:
        report = rollback.drive(t, reason=f"cutover decision ROLLBACK: {decision.trigger}", say=ui.say)
    except BadInput as e:         # refused before anything changed (local skill changes, no pin)
        raise CheckFailed(f"not rolled back: {e.message}",
                          f"fix it, then: {resume_for(t)} --yes "
                          f"(or inv rollback --version {t.version} --force)") from None
    finally:
        ui.say(WAIT_OVER)        # its steps' live line ends before the summary is printed
    ui.view.rollback(report)


def closeout_now(t: Target, ui: Ui) -> None:
    from . import closeout

    ui.view.closeout(closeout.run(t, say=ui.say, again=f"{resume_for(t)} --yes"))


def unconfirmed(t: Target, ui: Ui) -> None:
    """A ROLLBACK answered "no": the broken release is still serving, said in red (how long it has been live,
    its red flags); `inv status` shows it until it is acted on."""
    from .. import pending

    journal = t.journal()
    p = pending.of(t.version, journal.facts, journal.steps)
    if p is not None:
        ui.console.print(p.warning(t.settings.host, iso(now_utc())), style="bold red", markup=False, highlight=False)


def finish(t: Target, ui: Ui, outcome: str, decision: dict, code: int) -> CutoverReport:
    if outcome in ("closed-out", "rolled-back", "fix-forward"):
        update_state(t, CutoverState(finished_at=iso(now_utc()), outcome=outcome))
    else:
        update_state(t, CutoverState(outcome=outcome))
    path = ui.view.write_report(t, t.journal())
    t.audit("cutover", outcome, f"report {path}")
    return CutoverReport(t.version, outcome, decision, str(path), code)


def run(t: Target, options: Options, ui: Ui) -> CutoverReport:
    journal = t.journal()
    held_by_another(t, journal)
    how = check_start(journal, options, t.version, t.runtime_file, os.environ)
    if how == "start":
        ui.confirm_start()
    if how == "finished":
        st = state(journal)
        path = ui.view.write_report(t, journal)
        ui.console.print(f"the cutover of {t.version} finished at {st.get('finished_at')} ({st.get('outcome')}): "
                         "nothing to do", markup=False)          # the summary below names the report, once
        return CutoverReport(t.version, str(st.get("outcome")), dict(st.get("decision") or {}), str(path),
                             0 if st.get("outcome") == "closed-out" else 1)
    holder = lock.new_holder(t.settings.operator, t.version, "cutover")
    with lock.held_for_change(t.ssh, t.layout, holder) as taken_over, t.journals.batch():
        # nothing is written before the lock is ours; then the journal is read again, as it is now
        # (a run that held the lock until a moment ago may have started or finished this cutover)
        how = check_start(t.journal(fresh=True), options, t.version, t.runtime_file, os.environ)
        if how == "finished":
            raise BadInput(f"the cutover of {t.version} finished just before this run took the deploy lock",
                           f"see it: inv report {t.version}")
        if taken_over is not None:
            ui.say(f"took the deploy lock over from your interrupted run (PID {taken_over.client_pid})")
        if how == "start":
            st = update_state(t, CutoverState(started_at=iso(now_utc()), operator=t.settings.operator,
                                              options={"yes": options.yes, "auto_rollback": options.auto_rollback}))
            t.audit("cutover-start", "started", f"auto_rollback={options.auto_rollback}")
        else:
            st = update_state(t, CutoverState(resumed=[*state(t.journal()).get("resumed", []), iso(now_utc())]))
            t.audit("cutover-resume", "started", "")
            ui.say(f"resuming the cutover of {t.version} started {st['started_at']}")
        started_at = st["started_at"]
        if not st.get("decided_at"):
            try:
                run_phases(t, ui, started_at)
            except Stop as e:
                ui.console.print(f"stopped: {e.line()}", markup=False)
                return finish(t, ui, "stopped", {"stopped": e.message}, 1)
        ui.head(clock_line(t, Phases.DECIDE, started_at))
        decision = decide_now(t)
        ui.view.decision(decision)
        dj = decision.to_json()
        if decision.verdict == decision_mod.GO:
            confirmed = confirm(ui, options, "GO: close out the cutover (T+00:55)")
            record_decision(t, decision, confirmed)
            if not confirmed:
                ui.console.print(f"not closed out yet (no confirmation); to close out: {decision.next_step}", markup=False)
                ui.console.print("if you said no because something is wrong, roll back: "
                                 + runbook.next_step(t.prefix, "rollback", "--version", t.version,
                                                     reason="GO not confirmed: <why>"),
                                 markup=False, highlight=False)
                return finish(t, ui, "awaiting-confirmation", dj, 1)
            ui.head(clock_line(t, Phases.CLOSEOUT, started_at))
            closeout_now(t, ui)
            return finish(t, ui, "closed-out", dj, 0)
        if decision.verdict == decision_mod.ROLLBACK:
            question = "ROLLBACK: roll back now (runbook §2)"
            if ui.interactive and not (options.yes or options.auto_rollback):
                from .rollback import preview_plan

                question = f"data plan (§2.3): {preview_plan(t)}\n{question}"      # the evidence before the question
            confirmed = confirm(ui, options, question, auto=options.auto_rollback)
            record_decision(t, decision, confirmed)
            if not confirmed:
                unconfirmed(t, ui)
                ui.console.print(f"not rolled back; to roll back: {decision.next_step}", markup=False)
                return finish(t, ui, "awaiting-confirmation", dj, 1)
            ui.head(clock_line(t, Phases.ROLLBACK, started_at))
            rollback_now(t, decision, ui)
            return finish(t, ui, "rolled-back", dj, 1)
        record_decision(t, decision, "")
        if decision.verdict == decision_mod.FIX_FORWARD:
            return finish(t, ui, "fix-forward", dj, 1)
        return finish(t, ui, "incomplete", dj, 1)

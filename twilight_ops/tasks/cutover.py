"""inv cutover (the whole runbook, resumable), inv decide (T+00:50), inv report V."""
from __future__ import annotations

import sys

from invoke import task
from invoke.exceptions import Exit

from ..errors import BadInput, Unreachable, step_of
from ..output import console, dry_run, err_console, operation, print_json, print_plan, progress_lines


class RichView:
    """phases.cutover.View: each phase's result as its own task shows it (without the "next:" hint:
    inv cutover runs the next phase itself), and the Markdown report written."""

    def __init__(self, console):
        self.console = console

    def preflight(self, report) -> None:
        from ..render.preflight import render

        render(report, self.console, next_hint=False)

    def deploy(self, report) -> None:
        from ..render.deploy import render

        render(report, self.console, next_hint=False)

    def deploy_failed(self, error) -> None:
        from ..render.deploy import render_failure

        render_failure(error, self.console)

    def smoke(self, verdict) -> None:
        from ..render.smoke import render

        render(verdict, self.console)

    def hermes(self, report) -> None:
        from ..render.agent_smoke import render_reinstall

        render_reinstall(report, self.console, next_hint=False)

    def agent(self, report) -> None:
        from ..render.agent_smoke import render

        render(report, self.console)

    def decision(self, decision) -> None:
        from ..render.decide import render

        render(decision, self.console)

    def rollback(self, report) -> None:
        from ..render.rollback import render

        render(report, self.console)

    def closeout(self, report) -> None:
        from ..render.closeout import render

        render(report, self.console)

    def write_report(self, t, journal):
        from ..render.report import write

        return write(t, journal)


def _ask(question: str) -> bool:
    from ..confirm import ask

    return (ask(f"{question}? type 'yes' to go on: ") or "").strip() == "yes"


@task(auto_shortflags=False, help={
    "version": "the release tag to cut over to (default: the cutover in progress, else config release, "
               "v0.3.0-w4-cutover)",
    "auto_rollback": "on a ROLLBACK decision roll back without asking (the runbook's §2, budget 30 min)",
    "yes": "do not ask: neither the version typed back at the start nor the decision (GO: close out; ROLLBACK: roll back)",
    "resume": "continue an interrupted or stopped cutover from its journal (nothing done is repeated)",
    "json": "print the result as one JSON object at the end",
})
@operation
def cutover(c, version="", auto_rollback=False, yes=False, resume=False, json=False):
    """The runbook in order: preflight, tag-push, deploy, smoke, hermes-reinstall, agent-smoke, decide, closeout or rollback."""
    from ..clock import iso, now_utc
    from ..phases import cutover as phase
    from ..render import summary
    from ..screen import Waiting
    from ..target import Target

    t = Target.for_release(c, version)
    version = t.version
    if dry_run(c):
        print_plan(f"cutover {version}", [
            f"preflight --version {version}: the seven §0 checks, then the T+00:00 snapshot and digest (NO-GO stops here)",
            f"tag-push --version {version}: tag the cutover commit, push, wait for CI to publish the image",
            f"deploy --version {version}: pull, persist, up -d, health gate (a failure goes to the decision)",
            "smoke: the T+00:15 /price check (a red flag goes straight to the decision)",
            "hermes-reinstall: install-skill.sh, restart Hermes, verify the skill",
            "agent-smoke: the four T+00:35 checks at API and agent level",
            "decide: GO / ROLLBACK / FIX-FORWARD / INCOMPLETE from the journal's evidence; asks unless --yes"
            + (" (--auto-rollback: a ROLLBACK runs without asking)" if auto_rollback else ""),
            "closeout (GO) or rollback (ROLLBACK); then the Markdown report (path printed)",
            "the deploy lock is held throughout; every phase is a journal step: --resume continues from it"])
        return
    interactive = sys.stdin.isatty()
    out = err_console if json else console          # --json: stdout holds the one JSON object only
    say = progress_lines()

    def confirm_start() -> None:          # before the first change of a new cutover: the plan, the version typed back
        from .. import confirm
        from ..phases import plan as change

        confirm.version_back(change.gather(t, "cutover").lines(), version, yes, say,
                             when_not_a_terminal=confirm.GO_ON)     # CI/scripts: as before (the decision waits)

    ui = phase.Ui(console=out, say=say, ask=_ask, interactive=interactive, view=RichView(out),
                  progress=lambda line: say(Waiting(line)), heading=say.heading, confirm_start=confirm_start)
    again = phase.resume_for(t)
    with t, say:
        try:
            report = phase.run(t, phase.Options(yes=yes, auto_rollback=auto_rollback, resume=resume), ui)
        except KeyboardInterrupt as e:
            err_console.print(phase.interrupted_line(e, again), markup=False)
            raise Exit(code=130) from None
        except Unreachable as e:       # a lost link mid-cutover: which step, and how to go on
            if step_of(e) is None and not resume:
                raise
            raise phase.lost_on_the_way(e, again) from None
        facts = dict(t.journal().facts)
    if json:
        print_json(report.to_json())
    out.print()
    summary.render(report, facts, t.settings.budgets["cutover"], iso(now_utc()), out)
    if report.exit_code:
        raise Exit(code=report.exit_code)


@task(auto_shortflags=False, help={
    "version": "the cutover whose journal holds the evidence (default: the cutover in progress, else config release)",
    "json": "print one JSON object: the inputs and the decision",
})
@operation
def decide(c, version="", json=False):
    """T+00:50: GO / ROLLBACK / FIX-FORWARD / INCOMPLETE from the journal's evidence (deploy, smoke, Hermes, agent)."""
    from .. import decide as decision_mod
    from ..phases.cutover import decide_now
    from ..render.decide import render
    from ..target import Target

    t = Target.for_release(c, version)
    if dry_run(c):
        print_plan("decide", [f"read the journal of {t.version} (local copy and tvps mirror); print each input and the decision"])
        return
    with t:
        decision = decide_now(t)
    if json:
        print_json(decision.to_json())
    else:
        render(decision, console)
    if decision.verdict != decision_mod.GO:
        raise Exit(code=1)


@task(auto_shortflags=False, help={
    "version": "the cutover, e.g. v0.3.0-w4-cutover",
    "path_only": "print only the report's path",
    "raw": "print the Markdown file as it is (the default when stdout is not a terminal)",
})
@operation
def report(c, version, path_only=False, raw=False):
    """The cutover's post-mortem (Markdown, to paste into docs/status), rewritten from the journal; rendered on a terminal."""
    from .. import validate
    from ..render import report as view
    from ..target import Target

    validate.version(version)
    t = Target.from_context(c, version=version)
    if dry_run(c):
        print_plan("report", [f"read the journal of {version}; write {view.report_path(t, version)}; print it"])
        return
    with t:
        journal = t.journals.load(version)
        if journal is None:
            raise BadInput(f"no journal of {version} (local copy or tvps mirror)", "check the version: inv status lists journals")
        path = view.write(t, journal)
    if path_only:
        pass
    elif raw or not console.is_terminal:
        sys.stdout.write(path.read_text(encoding="utf-8"))
    else:
        view.show(path.read_text(encoding="utf-8"), console)
    err_console.print(f"report: {path}", markup=False)

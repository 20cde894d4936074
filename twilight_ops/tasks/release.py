"""The release phases: deploy (T+00:05)."""
from __future__ import annotations

from invoke import task
from invoke.exceptions import Exit

from ..errors import BadInput
from ..output import console, dry_run, err_console, operation, print_json, print_plan, progress_lines


def _say(line: str) -> None:
    err_console.print(line, markup=False, highlight=False)


@task(auto_shortflags=False, help={
    "version": "the release tag to deploy, e.g. v0.3.0-w4-cutover",
    "yes": "do not ask to type the version back (the plan is still shown)",
    "force": "deploy even though this version was rolled back today (the runbook says: do not)",
    "plan": "print the remote commands in order without running any (also: inv --dry deploy …)",
    "json": "print the result as one JSON object",
})
@operation
def deploy(c, version="", yes=False, force=False, plan=False, json=False):
    """T+00:05: pull the version, persist it, up -d, health gate; on failure the logs and the rollback line."""
    from .. import validate
    from ..phases import deploy as phase
    from ..render import deploy as view
    from ..target import Target

    validate.version(version)               # deploy names its release: --version is required
    t = Target.for_release(c, version)       # and refused when it is not the cutover in progress
    if plan or dry_run(c):
        view.render_plan(phase.plan(t), console)
        return
    from .. import confirm
    from ..phases import plan as change

    with t, progress_lines() as say:
        phase.check_ready(t, t.journal(), force)        # the T+00:00 facts first: no question for a refusal
        confirm.version_back(change.gather(t, "deploy").lines(), version, yes, _say)
        try:
            report = phase.run(t, force=force, say=say)
        except phase.DeployFailed as e:
            say.settle()
            view.render_failure(e, console)
            raise
        except KeyboardInterrupt:
            err_console.print(f"interrupted: the journal shows how far the deploy got (inv decide: INCOMPLETE); "
                              f"continue with: {phase.continue_line(t)}", markup=False)
            raise Exit(code=130) from None
    if json:
        print_json(report.to_json())
    else:
        view.render(report, console)


@task(auto_shortflags=False, help={
    "version": "the release tag, e.g. v0.3.0-w4-cutover",
    "commit": "tag this commit (default: the journal's cutover commit from preflight, else origin/main)",
    "yes": "do not ask to type the version back (the plan is still shown; without a terminal nothing is asked)",
    "json": "print the result as one JSON object",
})
@operation
def tag_push(c, version="", commit="", yes=False, json=False):
    """T+00:05 in Terminal A: tag the cutover commit, push it, wait (with progress) until CI publishes the image."""
    from .. import validate
    from ..phases import tag_push as phase
    from ..target import Target

    validate.version(version)
    if commit and not phase.git_sha(commit):
        raise BadInput(f"--commit {commit!r} is not a commit id", "give 7 to 40 lower-case hex digits")
    t = Target.for_release(c, version)       # refused when it is not the cutover in progress
    if dry_run(c):
        print_plan(f"tag-push {version}", phase.plan(t, commit or None))
        return
    from .. import confirm
    from ..phases import plan as change
    from ..screen import Waiting

    with t:
        confirm.version_back(change.gather(t, "tag-push", commit or None).lines(), version, yes, _say,
                             when_not_a_terminal=confirm.GO_ON)        # CI and scripts: as before, no question
        with progress_lines() as say:
            say(Waiting(f"waiting for {version} to be published"))
            report = phase.run(t, commit or None, progress=lambda line: say(Waiting(line)))
    if json:
        print_json(report.to_json())
    else:
        console.print(report.sentence(), markup=False)
        console.print(f"next: inv deploy --version {report.version}", markup=False)


@task(auto_shortflags=False, help={
    "version": "the cutover to roll back (whose journal holds the T+00:00 facts); default: the running or locked one",
    "to": "go back to this version or digest instead of the journal's T+00:00 digest",
    "restore_db": "put the T+00:00 DuckDB snapshot back whatever the data plan says (runbook §2.3; the current file is kept)",
    "keep_db": "never restore the DuckDB snapshot, even if the data plan says v0.2.0 cannot read the warehouse",
    "reason": "the trigger, one line (runbook §2: 5xx > 5%, close_raw null, value parse error, judgment)",
    "yes": "do not ask for confirmation",
    "force": "break another operator's lock; stash uncommitted skill changes instead of refusing",
    "json": "print the result as one JSON object",
})
@operation
def rollback(c, version="", to="", restore_db=False, keep_db=False, reason="", yes=False, force=False, json=False):
    """§2: revert tvps to the T+00:00 digest, revert the Hermes skill, the DuckDB file if the data plan says so; verify legacy."""
    from .. import validate
    from ..confirm import yes as ask_yes
    from ..phases import rollback as phase
    from ..render import rollback as view
    from ..target import Target

    if version:
        validate.version(version)
    reason = validate.one_line(reason or "operator judgment", "--reason")
    t = Target.from_context(c, version=version or None)
    if dry_run(c):
        view.render_plan(phase.plan(t, restore_db), console)
        return
    with t, progress_lines() as say:
        report = phase.drive(t, reason=reason, to=to or None, restore_db=restore_db, keep_db=keep_db, force=force,
                             say=say,
                             confirm=lambda pin: ask_yes(f"roll {t.settings.host} back to {t.settings.image_repo}:{pin.value}", yes))
    if json:
        print_json(report.to_json())
    else:
        view.render(report, console)

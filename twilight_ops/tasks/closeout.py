"""T+00:55 close-out: the status line, its commit and push, the forward-baseline."""
from __future__ import annotations

from invoke import task

from ..output import console, dry_run, err_console, operation, print_json, print_plan


@task(auto_shortflags=False, help={
    "version": "the cutover whose journal shows the GO (default: the cutover in progress, else config release)",
    "force": "close out even though the journal shows no GO (a warning is printed and recorded)",
    "json": "print the result as one JSON object",
})
@operation
def closeout(c, version="", force=False, json=False):
    """T+00:55: add the runbook's line to docs/status/index.md, commit that path alone, push; record the forward-baseline."""
    from ..phases import closeout as phase
    from ..render import closeout as view
    from ..target import Target

    t = Target.for_release(c, version)
    if dry_run(c):
        print_plan("closeout", phase.plan(t, force))
        return
    with t:
        report = phase.run(t, force=force, say=lambda line: err_console.print(line, markup=False, highlight=False),
                           again=t.command("closeout" + (f" --version {version}" if version else "")))
    if json:
        print_json(report.to_json())
    else:
        view.render(report, console)

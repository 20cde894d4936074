"""inv hermes-reinstall (T+00:25) and inv agent-smoke (T+00:35)."""
from __future__ import annotations

from invoke import task

from ..output import console, dry_run, finish, operation, print_json, print_plan


@task(name="hermes-reinstall", help={
    "force": "re-run install-skill.sh and the restart even if the journal says they succeeded",
    "json": "print one JSON object instead of a table",
    "version": "journal under this release tag (default: the cutover in progress, else config release)",
})
@operation
def hermes_reinstall(c, force=False, json=False, version=""):
    """Install the stock-research skill, restart Hermes if needed, verify it is enabled and its files match the repo."""
    from ..phases import hermes as phase
    from ..render.agent_smoke import render_reinstall
    from ..target import Target

    t = Target.for_release(c, version)
    if dry_run(c):
        print_plan("hermes-reinstall", phase.plan(t.settings))
        return
    with t:
        report = phase.run(t, force=force)
    if json:
        print_json(report.to_json())
    else:
        render_reinstall(report, console)
    finish(report.results)


@task(name="agent-smoke", help={
    "json": 'print one JSON object: {"checks": [...], "verdict": "green"|"red"}',
    "version": "journal under this release tag (default: the cutover in progress, else config release)",
})
@operation
def agent_smoke(c, json=False, version=""):
    """The four T+00:35 checks at API and agent level; exit 0 green, 1 on any red flag."""
    from ..phases import agent_smoke as phase
    from ..render.agent_smoke import render
    from ..target import Target

    from ..output import progress_lines
    from ..screen import Waiting

    with Target.for_release(c, version) as t, progress_lines() as say:
        say(Waiting(phase.WAITING))            # the checks take a minute or two: one live line, not silence
        report = phase.run(t)
    if json:
        print_json(report.to_json())
    else:
        render(report, console)
    finish(report.results)

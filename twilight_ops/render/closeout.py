"""`inv closeout` output: what was done to the status page, the commit, the forward-baseline."""
from __future__ import annotations

from typing import Any


def render(report: Any, console: Any) -> None:
    from ..sanitize import printable

    def say(text: str) -> None:
        console.print(printable(text), markup=False, highlight=False)

    if report.forced:
        say(f"warning: closed out with --force although {report.forced}")
    if report.outcome == "already":
        say(f"already closed out: the status line is on origin/{report.branch} "
            f"(commit {report.commit[:12]}); nothing to do")
    else:
        say(f"closed out {report.version} on {report.branch}: status line {report.committed}, {report.pushed}")
    say(f"  line:   {report.line}")
    say(f"  commit: {report.commit}")
    if report.how == "verified":
        say("  (an earlier run was cut off after its push: found done, nothing repeated)")
    fb = report.forward_baseline
    say(f"forward-baseline moved at {fb.get('at', '?')}: {fb.get('note', '')}")

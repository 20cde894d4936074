"""`inv preflight` output: the seven §0 rows, then the T+00:00 rows, then go / no-go."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..runbook import PREFLIGHT_TITLES as TITLES
from .checks import table

if TYPE_CHECKING:     # types only: render imports no phase at run time
    from ..phases.preflight import PreflightReport


def render(report: PreflightReport, console: Any, *, next_hint: bool = True) -> None:
    """next_hint=False inside `inv cutover`, which runs the next phase itself."""
    from rich.text import Text

    console.print(table(f"§0 prerequisites for {report.version} (cutover commit {report.commit[:12]})",
                        report.checks, TITLES))
    if report.t0:
        console.print(table("T+00:00 pre-flight snapshot", report.t0, TITLES))
    if report.go and report.recorded:
        console.print(Text("verdict: GO — the T+00:00 facts are in the journal"
                           + (f"; next: inv tag-push --version {report.version}" if next_hint else ""), style="bold green"))
    elif report.go:        # --no-snapshot or --dry: the checks passed, but nothing was recorded
        console.print(Text("verdict: GO on the seven checks — no snapshot taken and no T+00:00 facts recorded; "
                           f"before tag-push run: inv preflight --version {report.version}", style="bold yellow"))
    else:
        console.print(Text("verdict: NO-GO — resolve the FAIL rows first (runbook §0: do not start); nothing on tvps changed"
                           if not report.t0 else "verdict: NO-GO — see the T+00:00 rows", style="bold red"))

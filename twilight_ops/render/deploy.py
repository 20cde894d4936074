"""`inv deploy` output: the plan, the result, or the failure's evidence."""
from __future__ import annotations

from typing import Any, Sequence

from ..sanitize import printable

LOG_LINES_SHOWN = 40


def render_plan(steps: Sequence[Any], console: Any) -> None:
    console.print("deploy plan (nothing is run; paths under ~ are the remote account's home):", markup=False)
    for n, s in enumerate(steps, 1):
        console.print(f"{n:>2}. {s.name:<8} {s.command}", markup=False, highlight=False)
        if s.depends_on_live_output:
            console.print(f"    ↳ depends on live output: {s.depends_on_live_output}", markup=False, highlight=False)


def render(report: Any, console: Any, *, next_hint: bool = True) -> None:
    """next_hint=False inside `inv cutover`, which runs the next phase itself."""
    if report.outcome == "already-running":
        console.print(f"{report.version} already runs healthy (restart count 0, {report.digest}): nothing to do",
                      markup=False)
        return
    console.print(f"deployed {report.version}: healthy after {report.healthy_after_s:.1f} s, restart count 0, "
                  f"digest {report.digest}", markup=False)      # the remote command count: --json and the journal
    if report.previous_env:
        console.print(f"the previous compose .env is kept at {report.previous_env}", markup=False)
    if next_hint:
        console.print("next: inv smoke   (T+00:15)", markup=False)


def render_failure(e: Any, console: Any) -> None:
    """The cause first (the backend log's last error lines), then the log's tail and the healthcheck log."""
    from ..health import cause

    lines = e.logs.rstrip().splitlines()
    for line in cause(e.logs):
        console.print("cause: " + printable(line), markup=False, highlight=False)
    if lines:
        tail = lines[-LOG_LINES_SHOWN:]
        console.print(f"backend logs (last {len(tail)} of {len(lines)} lines; all 200 are in the journal step):", markup=False)
        for line in tail:
            console.print("  " + printable(line), markup=False, highlight=False)
    if not lines and not e.health_log:
        return          # the failure came before anything started (a pull): nothing to show
    if e.health_log:
        console.print("healthcheck log:", markup=False)
        for line in e.health_log[-10:]:
            console.print("  " + printable(line), markup=False, highlight=False)
    else:
        console.print("healthcheck log: empty (no probe ran before the container stopped)", markup=False)

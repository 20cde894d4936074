"""`inv agent-smoke` and `inv hermes-reinstall` output (rich; remote text is never markup)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..results import Status
from ..runbook import AGENT_MEANINGS, AGENT_TITLES, HERMES_TITLES
from .checks import STYLE, printable, table

if TYPE_CHECKING:     # types only: render imports no phase at run time
    from ..phases.agent_smoke import AgentSmokeReport


def render(report: AgentSmokeReport, console: Any) -> None:
    from rich.text import Text

    from ..screen import Column
    from ..screen import table as screen_table

    title = Text(printable(f"T+00:35 agent smoke · expected market state {report.expected_state} · "
                           f"calendar: {report.calendar}"))     # the calendar's reason is remote text
    cols = [Column("check", max_width=24), Column("level", no_wrap=True), Column("status", no_wrap=True), Column("evidence"),
            Column("red flag: the runbook's meaning")]          # left out when no row has a red flag
    rows = []
    for r in report.rows:
        res = r.result
        meaning = "\n".join(f"{c}: {AGENT_MEANINGS.get(c, '')}" for c in r.red_flags)
        rows.append([Text(AGENT_TITLES.get(res.id, res.id)), Text(r.level), Text(res.status.value, style=STYLE[res.status]),
                     Text(printable(res.reason)), Text(meaning, style="red" if meaning else "")])
    tab = screen_table(title, cols, rows)
    console.print(tab)
    if report.green:
        console.print(Text("verdict: GREEN — all four checks pass; T+00:50: continue to the close-out (T+00:55)",
                           style="bold green"))
    else:
        unreachable = all(r.result.status is not Status.FAIL for r in report.rows)
        console.print(Text("verdict: INCOMPLETE — the API or the agent could not be reached" if unreachable else
                           "verdict: RED — T+00:50: any red flag and no <5-min forward fix: execute the rollback (runbook §2)",
                           style="bold yellow" if unreachable else "bold red"))


def render_reinstall(report, console: Any, *, next_hint: bool = True) -> None:
    """next_hint=False inside `inv cutover`, which runs the next phase itself."""
    from rich.text import Text

    console.print(table(f"T+00:25 Hermes reinstall · skill {report.skill}", report.steps, HERMES_TITLES))
    for r in report.steps:
        out = str(r.evidence.get("output_tail") or "")
        if r.status is Status.FAIL and out:
            console.print(Text(f"{r.id}: last lines of its output:", style="bold"))
            for line in out.splitlines():
                console.print(Text("  " + printable(line)))
    ok = all(r.ok for r in report.steps)
    console.print(Text(("verdict: OK — next: T+00:35 `inv agent-smoke`" if next_hint else "verdict: OK") if ok else
                       "verdict: FAILED — fix the named step, then re-run `inv hermes-reinstall`",
                       style="bold green" if ok else "bold red"))

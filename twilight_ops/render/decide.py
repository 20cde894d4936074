"""`inv decide` output: each input, then the decision with the runbook's reason and the next step."""
from __future__ import annotations

from typing import Any

from ..decide import FIX_FORWARD, GO, INCOMPLETE, ROLLBACK, Decision
from ..sanitize import printable

STATE_STYLE = {"green": "bold green", "red": "bold red", "fix-forward": "bold yellow", "missing": "yellow"}
VERDICT_STYLE = {GO: "bold green", ROLLBACK: "bold red", FIX_FORWARD: "bold yellow", INCOMPLETE: "bold yellow"}


def run_note(run: str) -> str:
    """A missing row's note: the command that produces it, or why none is needed (runbook.next_step)."""
    return printable(run) if run.startswith("not needed") else f"run: {printable(run)}"


def render(decision: Decision, console: Any) -> None:
    from rich.table import Table
    from rich.text import Text

    tab = Table(title="T+00:50 decision point: the evidence", title_justify="left")
    tab.add_column("input")
    tab.add_column("state")
    tab.add_column("journal says", overflow="fold")
    tab.add_column("recorded", overflow="fold")
    for i in decision.inputs:
        summary = printable(i.summary) + (f"  ({run_note(i.run)})" if i.state == "missing" and i.run else "")
        tab.add_row(Text(i.title), Text(i.state, style=STATE_STYLE.get(i.state, "")), Text(summary), Text(i.at or "-"))
    console.print(tab)
    console.print(Text(f"decision: {decision.verdict} — {printable(decision.reason)}",
                       style=VERDICT_STYLE.get(decision.verdict, "")))
    console.print(Text(f"next: {printable(decision.next_step)}"))

"""`inv status` output."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:     # types only: render imports no phase at run time
    from ..phases.status import StatusReport


def render(report: StatusReport, console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from ..sanitize import printable

    def cell(value: Any) -> Text:          # remote data (compose, docker): never markup
        return Text(printable(str(value)))

    table = Table(title=Text(f"compose services on {report.host}"), title_justify="left")
    for col in ("service", "state", "health", "restarts", "version"):
        table.add_column(col)
    table.add_column("repo digest", overflow="fold")
    for s in report.services:
        table.add_row(cell(s.service), cell(s.state), cell(s.health), cell("?" if s.restart_count is None else s.restart_count),
                      cell(s.version or s.image), cell(s.repo_digest or "-"))
    if not report.services:
        table.add_row("(none)", "-", "-", "-", "-", "-")
    console.print(table)

    console.print(f"/price envelope: [bold]{escape(report.envelope)}[/] ({escape(printable(report.envelope_detail))})")
    console.print(printable(f"deploy lock: {report.lock.describe() if report.lock else 'free'}"), markup=False)
    console.print(printable(f"journals on tvps: {', '.join(report.journals) if report.journals else 'none'}"), markup=False)
    if report.pending:
        p = report.pending
        console.print(printable(f"pending decision: {p['verdict']} of {p['version']} (decided {p['decided_at']}, "
                                f"not confirmed)"), style="bold red", markup=False, highlight=False)
        console.print(printable(f"  {p['line']}"), style="red", markup=False, highlight=False)
        for flag in p.get("red_flags") or []:
            console.print(printable(f"  red flag: {flag}"), markup=False, highlight=False)
        if p.get("data_plan"):
            console.print(printable(f"  data plan (§2.3): {p['data_plan']}"), markup=False, highlight=False)
        console.print(printable(f"  act on it: {p['command']}"), markup=False, highlight=False)

"""`inv status` output."""
from __future__ import annotations

from typing import Any

from ..phases.status import StatusReport


def render(report: StatusReport, console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"compose services on {report.host}", title_justify="left")
    for col in ("service", "state", "health", "restarts", "version"):
        table.add_column(col)
    table.add_column("repo digest", overflow="fold")
    for s in report.services:
        table.add_row(s.service, s.state, s.health, "?" if s.restart_count is None else str(s.restart_count),
                      s.version or s.image, s.repo_digest or "-")
    if not report.services:
        table.add_row("(none)", "-", "-", "-", "-", "-")
    console.print(table)
    from ..sanitize import printable

    console.print(f"/price envelope: [bold]{escape(report.envelope)}[/] ({escape(printable(report.envelope_detail))})")
    console.print(f"deploy lock: {report.lock.describe() if report.lock else 'free'}", markup=False)
    console.print(f"journals on tvps: {', '.join(report.journals) if report.journals else 'none'}", markup=False)

"""A table of CheckResults (preflight rows, agent-smoke checks): one row per check."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..results import CheckResult, Status
from ..sanitize import printable

STYLE = {Status.PASS: "bold green", Status.FAIL: "bold red", Status.SKIP: "dim", Status.UNREACHABLE: "bold yellow"}


def table(title: str, rows: Sequence[CheckResult], titles: Mapping[str, str]) -> Any:
    from rich.table import Table
    from rich.text import Text

    tab = Table(title=Text(printable(title)), title_justify="left", show_lines=False)
    tab.add_column("check")
    tab.add_column("status")
    tab.add_column("evidence", overflow="fold")
    fixes = any(r.status is not Status.PASS and r.next_step for r in rows)
    if fixes:
        tab.add_column("fix", overflow="fold")
    for r in rows:
        cells = [Text(printable(titles.get(r.id, r.id))), Text(r.status.value, style=STYLE[r.status]), Text(printable(r.reason))]
        if fixes:
            cells.append(Text(printable(r.next_step) if r.status is not Status.PASS else ""))
        tab.add_row(*cells)
    return tab

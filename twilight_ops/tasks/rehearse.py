"""inv rehearse: the twin up, a green cutover, a rollback drill, the fault matrix, a summary, the twin down."""
from __future__ import annotations

from invoke import task
from invoke.exceptions import Exit

from ..output import console, err_console, operation


@task(auto_shortflags=False, iterable=["only"], help={
    "dir": "where the twin lives (default /var/tmp/twilight-ops/rehearse)",
    "only": "run only this scenario (repeatable); `inv rehearse --list` shows them",
    "list": "list the scenarios and what each expects",
    "keep_up": "leave the twin running afterwards (inspect it with inv -f DIR/invoke.yaml status)",
})
@operation
def rehearse(c, dir="/var/tmp/twilight-ops/rehearse", only=None, list=False, keep_up=False):
    """The main job against the local twin: green cutover, rollback drill, every red flag's decision; exit 0 if all match."""
    from pathlib import Path

    from ..errors import BadInput
    from ..twin import build
    from ..twin import rehearse as rh

    if list:
        for sc in rh.SCENARIOS.values():
            console.print(f"{sc.name:<26} {sc.expected:<28} {sc.about}", markup=False)
        return
    names = [*(only or [])] or [*rh.SCENARIOS]
    unknown = [n for n in names if n not in rh.SCENARIOS]
    if unknown:
        raise BadInput(f"--only {unknown[0]!r} is not a scenario", "known: " + ", ".join(rh.SCENARIOS))
    base = Path(dir).expanduser().resolve()
    say = lambda line: err_console.print(line, markup=False, highlight=False)   # noqa: E731
    build.up(base, say=say)
    try:
        rows = rh.matrix(base, names, say)
    finally:
        if not keep_up:
            build.down(base, say=lambda line: None)
    from rich.table import Table
    from rich.text import Text

    tab = Table(title=f"rehearsal of {rh.V} on the twin ({base})", title_justify="left")
    tab.add_column("scenario", no_wrap=True)
    for col in ("expected", "got", "time", "match"):
        tab.add_column(col, overflow="fold")
    for r in rows:
        tab.add_row(Text(r.scenario), Text(r.expected), Text(r.got + (f" ({r.note})" if r.note else "")),
                    Text(f"{r.seconds:.0f} s"), Text("yes" if r.ok else "NO", style="bold green" if r.ok else "bold red"))
    console.print(tab)
    bad = [r for r in rows if not r.ok]
    console.print(f"{len(rows) - len(bad)} of {len(rows)} rows match" + (f"; logs: {bad[0].log}" if bad else ""), markup=False)
    if bad:
        raise Exit(code=1)

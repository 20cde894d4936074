"""Render an Assessment for a tired operator: one table, one line per watch round."""
from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..monitor.metrics import NO_DATA_HINT, Assessment, Band, Metrics
from ..sanitize import printable

BAND_STYLE = {Band.HEALTHY: "green", Band.WATCH: "yellow", Band.INVESTIGATE: "bold red", Band.NA: "dim"}
CROSSED = "◆ crossed into INVESTIGATE"


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f} %"


def _ms(v: float | None) -> str:
    return "—" if v is None else f"{v:.0f} ms"


def meaning(metric: str, a: Assessment) -> str:
    """The runbook §3 reading of a band, with the configured numbers."""
    th, m, band = a.thresholds, a.metrics, a.bands[metric]
    if metric == "err_pct":
        return {
            Band.HEALTHY: f"below the v0.2.0 baseline (< {th.err_pct_healthy:g} %)",
            Band.WATCH: f"between {th.err_pct_healthy:g} % and {th.err_pct_investigate:g} %: keep watching",
            Band.INVESTIGATE: f"above {th.err_pct_investigate:g} %: check `docker compose logs backend --tail=200`, then §4",
            Band.NA: "no /price calls in the window",
        }[band]
    if metric == "p95_ms":
        return {
            Band.HEALTHY: f"below {th.p95_healthy_ms:g} ms",
            Band.WATCH: f"between {th.p95_healthy_ms:g} and {th.p95_investigate_ms:g} ms: keep watching",
            Band.INVESTIGATE: f"above {th.p95_investigate_ms:g} ms: providers or composer slow",
            Band.NA: "no latencies in the window",
        }[band]
    lo, hi = th.akshare_share_healthy_min, th.akshare_share_healthy_max
    if band is Band.NA:
        return "market_state not recorded (older schema)" if m.market_state is None else "no OPEN rows in the window"
    return {
        Band.HEALTHY: f"within {lo:g}–{hi:g} % during OPEN",
        Band.WATCH: f"outside {lo:g}–{hi:g} %: fallback exercised more (or less) than baseline",
        Band.INVESTIGATE: "falls to 0 %: akshare provider broken",
    }[band]


def read_line(m: Metrics) -> str:
    if m.read_via == "copy":
        return f"read from a consistent copy taken at {m.copied_at} (the backend holds the database lock)"
    if m.read_via == "local-file":
        return "read from a local file, read-only"
    return "read directly, read-only"


def _band_cell(band: Band) -> Text:
    return Text(band.value, style=BAND_STYLE[band])


def report_table(a: Assessment) -> Table:
    m = a.metrics
    table = Table(title=Text(printable(f"/price monitoring — last {m.window_hours:g} h (UTC {m.window_start_utc} .. "
                                       f"{m.window_end_utc})")), title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("band")
    table.add_column("meaning")
    table.add_row("calls", f"{m.total}", "", f"{m.errors} with an error" + (f"; newest {m.newest_utc}" if m.newest_utc else "")
                  + (f"; {m.own.said()}" if m.own is not None else ""))
    table.add_row("err_pct", _pct(m.err_pct), _band_cell(a.bands["err_pct"]), meaning("err_pct", a))
    table.add_row("p95 latency", _ms(m.p95_ms), _band_cell(a.bands["p95_ms"]), meaning("p95_ms", a))
    table.add_row("akshare-spot share (OPEN)", _pct(m.akshare_spot_share_open_pct), _band_cell(a.bands["akshare_share"]),
                  meaning("akshare_share", a))
    return table


def distribution_table(m: Metrics) -> Table:
    table = Table(title="distributions", title_justify="left", show_header=True)
    table.add_column("what")
    table.add_column("value")
    table.add_column("n", justify="right")
    table.add_column("share", justify="right")
    for s in m.served_by:        # values from the audit log: Text, never markup
        table.add_row("served_by", Text(printable(str(s.served_by))), str(s.n), _pct(s.share_pct))
    for st in m.market_state or ():
        table.add_row("market_state", Text(printable(str(st.market_state))), str(st.n),
                      _pct(100.0 * st.n / m.total if m.total else None))
    for c in m.source_chain_len or ():
        table.add_row("source_chain length", str(c.len), str(c.n), _pct(100.0 * c.n / m.total if m.total else None))
    return table


def report(a: Assessment) -> RenderableType:
    """Everything `inv monitor` prints: tables, verdict, how it was read, notes."""
    m = a.metrics
    parts: list[RenderableType] = [report_table(a)]
    if m.total:
        parts.append(distribution_table(m))
    style = {"investigate": "bold red", "no_data": "bold yellow"}.get(a.verdict, "bold green")
    parts.append(Text.assemble(("verdict: ", "bold"), (a.verdict.upper().replace("_", " "), style)))
    if a.verdict == "no_data":
        parts.append(Text(NO_DATA_HINT, style="yellow"))
    parts.append(Text(read_line(m), style="dim"))
    parts.extend(Text(f"note: {printable(n)}", style="dim") for n in m.notes)
    return Group(*parts)


def render_report(console: Console, a: Assessment) -> None:
    console.print(report(a))


def _trend(prev: float | None, cur: float | None) -> str:
    if prev is None or cur is None:
        return " "
    return "▲" if cur > prev else "▼" if cur < prev else "="


def round_line(prev: Assessment | None, cur: Assessment, n: int) -> str:
    """One watch round: `#3 09:31:00Z n=712 err 0.42% ▲ p95 388ms ▼ ak 71% healthy`."""
    m = cur.metrics
    p = prev.metrics if prev else None
    clock = m.window_end_utc[11:19] + "Z" if len(m.window_end_utc) >= 19 else m.window_end_utc
    err = "—" if m.err_pct is None else f"{m.err_pct:.2f}%"
    p95 = "—" if m.p95_ms is None else f"{m.p95_ms:.0f}ms"
    ak = "—" if m.akshare_spot_share_open_pct is None else f"{m.akshare_spot_share_open_pct:.0f}%"
    line = (
        f"#{n} {clock} n={m.total}{f' (own {m.own.left_out} left out)' if m.own is not None and m.own.left_out else ''} "
        f"err {err} {_trend(p.err_pct if p else None, m.err_pct)} "
        f"p95 {p95} {_trend(p.p95_ms if p else None, m.p95_ms)} "
        f"ak {ak} {cur.verdict}"
    )
    if cur.verdict == "investigate" and (prev is None or prev.verdict != "investigate"):
        worst = ", ".join(k for k, b in cur.bands.items() if b is Band.INVESTIGATE)
        line += f"  {CROSSED} ({worst})"
    if m.read_via == "copy":
        line += "  [copy]"
    return line

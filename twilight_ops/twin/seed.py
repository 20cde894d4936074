"""Seed provider_audit_log rows into a DuckDB file (tests, bench, the twin's backend).

Self-contained (stdlib + duckdb) so it also runs inside the twin container.

    seed_rows(con_or_path, rows)   explicit AuditRow values (known answers)
    seed_rows(con_or_path, spec)   AuditSpec: n rows generated in ONE INSERT … SELECT
                                   over range(n) — 10M rows in seconds.

Generated rows are deterministic for a given spec: every random draw is
hash(i*16 + k + seed*2^36) scaled to [0, 1), which is stable whatever the thread count
(setseed()+random() is only reproducible single-threaded). Rows are evenly
spaced in time over (end_utc - span, end_utc].
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
from typing import Any, Iterable, Literal, Mapping, Sequence, Union

import duckdb

TABLE = "provider_audit_log"
TsType = Literal["TIMESTAMP", "TIMESTAMPTZ"]
# uniform [0, 1), draw k (< 16) of row i. One BIGINT per (seed, i, k) hashed once:
# hash(i, seed, k) combines its arguments too weakly (draws correlate at r≈0.6).
UNIT = "(hash(i * 16 + {k} + $seed * 68719476736) >> 11)::DOUBLE / 9007199254740992.0"


@dataclasses.dataclass(frozen=True)
class TableShape:
    ts_type: TsType = "TIMESTAMP"
    market_state: bool = True
    source_chain: bool = True


@dataclasses.dataclass(frozen=True)
class AuditRow:
    ts: dt.datetime                      # aware (naive = UTC)
    served_by: str | None = "tushare-daily"
    latency_ms: float | None = 100.0
    error: str | None = None
    status: int = 200
    ts_code: str = "600519.SH"
    market_state: str | None = "closed"
    source_chain: Sequence[str] | None = ("tushare-daily",)


@dataclasses.dataclass(frozen=True)
class AuditSpec:
    """n rows over (end_utc - span, end_utc] with the given mix."""

    n: int
    end_utc: dt.datetime
    span: dt.timedelta = dt.timedelta(hours=1)
    error_rate: float = 0.0                     # share of rows with error/status set
    error_status: int = 502
    error_text: str = "ChainExhausted: akshare-spot, tushare-daily failed"
    latency_ms: tuple[float, float] = (50.0, 350.0)  # uniform; p95 ≈ lo + 0.95 (hi - lo)
    market_states: Mapping[str, float] = dataclasses.field(default_factory=lambda: {"open": 1.0})
    akshare_share_open: float = 0.7             # of OPEN rows without error, served by akshare-spot
    codes: Sequence[str] = ("600519.SH", "000001.SZ", "300750.SZ")
    shape: TableShape = TableShape()
    seed: int = 42


def create_table(con: duckdb.DuckDBPyConnection, shape: TableShape = TableShape()) -> None:
    cols = [f"ts {shape.ts_type}", "ts_code VARCHAR", "served_by VARCHAR"]
    if shape.source_chain:
        cols.append("source_chain VARCHAR[]")
    if shape.market_state:
        cols.append("market_state VARCHAR")
    cols += ["latency_ms DOUBLE", "status INTEGER", "error VARCHAR"]
    con.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} ({', '.join(cols)})")


def existing_shape(con: duckdb.DuckDBPyConnection) -> TableShape | None:
    rows = dict(con.execute(
        "SELECT lower(column_name), upper(data_type) FROM information_schema.columns "
        "WHERE lower(table_name) = $t AND table_schema = current_schema()", {"t": TABLE}).fetchall())
    if not rows:
        return None
    ts_type: TsType = "TIMESTAMPTZ" if rows.get("ts") == "TIMESTAMP WITH TIME ZONE" else "TIMESTAMP"
    return TableShape(ts_type, "market_state" in rows, "source_chain" in rows)


def _utc_literal(ts: dt.datetime, ts_type: TsType) -> str:
    if ts.tzinfo is not None:
        ts = ts.astimezone(dt.timezone.utc).replace(tzinfo=None)
    text = ts.isoformat(sep=" ", timespec="microseconds")
    return text + "+00:00" if ts_type == "TIMESTAMPTZ" else text


def _insert_rows(con: duckdb.DuckDBPyConnection, rows: Sequence[AuditRow], shape: TableShape) -> int:
    cols = ["ts", "ts_code", "served_by", "latency_ms", "status", "error"]
    marks = [f"CAST(? AS {shape.ts_type})", "?", "?", "?", "?", "?"]
    if shape.market_state:
        cols.append("market_state")
        marks.append("?")
    if shape.source_chain:
        cols.append("source_chain")
        marks.append("CAST(? AS VARCHAR[])")
    values = []
    for r in rows:
        v: list[Any] = [_utc_literal(r.ts, shape.ts_type), r.ts_code, r.served_by, r.latency_ms, r.status, r.error]
        if shape.market_state:
            v.append(r.market_state)
        if shape.source_chain:
            v.append(None if r.source_chain is None else list(r.source_chain))
        values.append(v)
    if values:
        con.executemany(f"INSERT INTO {TABLE} ({', '.join(cols)}) VALUES ({', '.join(marks)})", values)
    return len(values)


def _insert_spec(con: duckdb.DuckDBPyConnection, spec: AuditSpec, shape: TableShape) -> int:
    if spec.n < 0 or not 0 <= spec.error_rate <= 1 or not 0 <= spec.akshare_share_open <= 1:
        raise ValueError("n >= 0, error_rate and akshare_share_open in [0, 1]")
    states = [(s, float(w)) for s, w in spec.market_states.items() if w > 0]
    if not states or not spec.codes:
        raise ValueError("market_states needs a positive weight and codes a value")
    weight = sum(w for _, w in states)
    params: dict[str, Any] = {
        "seed": spec.seed,
        "n": spec.n,
        "end": _utc_literal(spec.end_utc, "TIMESTAMP"),
        "span_us": int(spec.span.total_seconds() * 1_000_000),
        "err": spec.error_rate,
        "ak": spec.akshare_share_open,
        "lat_lo": spec.latency_ms[0],
        "lat_w": spec.latency_ms[1] - spec.latency_ms[0],
        "codes": list(spec.codes),
        "err_status": spec.error_status,
        "err_text": spec.error_text,
    }
    # market_state: cumulative weights; names and bounds are parameters
    cases, acc = [], 0.0
    for j, (state, w) in enumerate(states[:-1]):
        acc += w / weight
        params[f"st{j}"], params[f"cut{j}"] = state, acc
        cases.append(f"WHEN u_state < $cut{j} THEN $st{j}")
    params["st_last"] = states[-1][0]
    state_expr = f"CASE {' '.join(cases)} ELSE $st_last END" if cases else "$st_last"
    ts_expr = "CAST($end AS TIMESTAMP) - to_microseconds(CAST(floor($span_us * ($n - i - 0.5) / $n) AS BIGINT))"
    if shape.ts_type == "TIMESTAMPTZ":
        ts_expr = f"timezone('UTC', {ts_expr})"
    cols = ["ts", "ts_code", "served_by", "latency_ms", "status", "error"]
    exprs = [
        "ts",
        "list_extract(CAST($codes AS VARCHAR[]), 1 + CAST(hash(i * 16 + 5 + $seed * 68719476736) % len(CAST($codes AS VARCHAR[])) AS INTEGER))",
        "CASE WHEN failed THEN NULL WHEN state = 'open' AND u_ak < $ak THEN 'akshare-spot' ELSE 'tushare-daily' END",
        "$lat_lo + $lat_w * u_lat",
        "CASE WHEN failed THEN $err_status ELSE 200 END",
        "CASE WHEN failed THEN $err_text END",
    ]
    if shape.market_state:
        cols.append("market_state")
        exprs.append("state")
    if shape.source_chain:
        cols.append("source_chain")
        exprs.append(
            "CASE WHEN failed OR (state = 'open' AND u_ak >= $ak) THEN ['akshare-spot', 'tushare-daily']"
            " WHEN state = 'open' THEN ['akshare-spot'] ELSE ['tushare-daily'] END"
        )
    sql = f"""
        INSERT INTO {TABLE} ({', '.join(cols)})
        SELECT {', '.join(exprs)} FROM (
            SELECT i, {ts_expr} AS ts,
                   {UNIT.format(k=1)} < $err AS failed,
                   {UNIT.format(k=3)} AS u_lat,
                   {UNIT.format(k=4)} AS u_ak,
                   {state_expr} AS state
            FROM (SELECT range AS i, {UNIT.format(k=2)} AS u_state FROM range($n))
        )
    """
    con.execute(sql, params)
    return spec.n


def seed_rows(
    target: Union[duckdb.DuckDBPyConnection, str, "os.PathLike[str]"],
    data: Union[AuditSpec, Iterable[AuditRow]],
    *,
    shape: TableShape | None = None,
) -> int:
    """Create provider_audit_log if needed (shape: the spec's, else TIMESTAMP with
    every column) and insert the rows; returns how many were inserted."""
    own = not isinstance(target, duckdb.DuckDBPyConnection)
    con = target if isinstance(target, duckdb.DuckDBPyConnection) else duckdb.connect(os.fspath(target))
    try:
        want = shape or (data.shape if isinstance(data, AuditSpec) else TableShape())
        have = existing_shape(con)
        if have is None:
            create_table(con, want)
            have = want
        if isinstance(data, AuditSpec):
            return _insert_spec(con, data, have)
        return _insert_rows(con, list(data), have)
    finally:
        if own:
            con.close()

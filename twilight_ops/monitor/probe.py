"""Runbook §3 monitoring probe: one-pass aggregates over provider_audit_log.

SELF-CONTAINED (Python 3.11, stdlib + duckdb). `build_probe_script()` in
twilight_ops/monitor/script.py sends this file's text on stdin to
`docker compose exec -T backend python3 -`, with the PARAMS line below replaced
by the caller's parameters as one JSON string literal. Values never reach SQL
text: they are DuckDB parameters.

Output: exactly ONE JSON object on stdout, aggregates only; rows only when asked, bounded
(rows_limit > 0: the newest rows_limit (ts, ts_code) pairs of the window, for preflight's
no_traffic to leave out the tool's own calls; never any other column).  With `own` (the tool's
own calls, own_calls.to_wire, on the audit clock) the rows they made are left out of every
aggregate by own_calls.match, which build_probe_script ships along, and "own" says how many:
  success  {"probe": 1, "read_via", "copied_at", "window", "total", ...}  exit 0
  failure  {"error": "<one line>", "kind": "<kind>"}                     exit 2|3|1
    2  bad_params missing_file missing_table schema copy_dir no_duckdb not_duckdb
    3  torn_copy no_space copy_failed duckdb   (no trustworthy answer could be read)
    1  internal                       (a bug in this probe)

Window. Rows with  start < ts <= end, end = the caller's now_utc, whatever the
process TimeZone: the ts column type decides the bound (naive UTC literal for
TIMESTAMP, '+00:00' literal for TIMESTAMPTZ) and the session runs with
TimeZone='UTC'. now() is never used (under TZ=Asia/Shanghai the runbook's
`ts > now() - INTERVAL 1 HOUR` counts 0 of the rows of the last hour).

One pass. A single ungrouped aggregate with FILTER clauses and histogram()
(value -> count maps) computes every metric in one scan of the window and
returns one row whose size is bounded by the number of distinct values.
GROUPING SETS would also scan once but return one row per group per set, to be
stitched together by grouping() ids; a CTE read several times would
materialise the window. Neither buys anything here.

Locked file. The backend holds the file open read-write for its whole life, so
read_only=True fails with "Conflicting lock is held". Then the probe copies the
file (and its .wal) to a private temp dir and opens the copy read-write (the WAL
replays). A copy is trusted only when
  * the database file's inode, size, mtime_ns, ctime_ns and the SHA-256 of its
    three 4 KiB headers are identical before and after the copy: every DuckDB
    checkpoint rewrites a header (its iteration counter), so a checkpoint that
    completed during the copy is always seen, however coarse the mtime clock;
  * the WAL was not truncated or replaced during the copy (appends are fine: a
    WAL whose last commit is torn replays as a prefix of whole commits, and
    DuckDB refuses a WAL whose checkpoint iteration does not match the file);
  * the copy opens and answers the query without error.
Otherwise it retries (bounded, short exponential backoff) and finally reports
kind "torn_copy". The temp dir is removed in every case.
"""
from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from typing import Any, Callable

PARAMS: "dict[str, Any] | None" = None  # @@PARAMS@@ replaced by build_probe_script()

PROBE_VERSION = 1
TABLE = "provider_audit_log"
REQUIRED_COLUMNS = ("ts", "served_by", "latency_ms", "error")
MAX_ROWS = 10_000  # rows_limit's bound: (ts, ts_code) pairs are ~40 bytes each
MAX_OWN = 5_000    # own calls (twilight-ops's, from own_calls.py) the probe leaves out at most
HEADER_BYTES = 3 * 4096  # DuckDB main header + two database headers
EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_UNREADABLE = 0, 1, 2, 3
NAIVE_TS_TYPES = {"TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "DATETIME", "TIMESTAMP WITHOUT TIME ZONE"}
AWARE_TS_TYPES = {"TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"}


class ProbeError(Exception):
    def __init__(self, kind: str, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.exit_code = exit_code


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


# ---------------------------------------------------------------- parameters

def check_params(raw: Any) -> dict[str, Any]:
    """The injected PARAMS, validated; ProbeError(bad_params) otherwise."""

    def bad(why: str) -> ProbeError:
        return ProbeError("bad_params", f"probe parameters: {why}", EXIT_BAD_INPUT)

    if not isinstance(raw, dict):
        raise bad("missing; build the script with build_probe_script()")
    db_path = raw.get("db_path")
    if not isinstance(db_path, str) or not os.path.isabs(db_path):
        raise bad(f"db_path {db_path!r} is not an absolute path")
    hours = raw.get("hours")
    if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not math.isfinite(hours) or not 0 < hours <= 24 * 366:
        raise bad(f"hours {hours!r} is not a number of hours in (0, 8784]")
    try:
        now = dt.datetime.fromisoformat(str(raw.get("now_utc")))
    except ValueError:
        raise bad(f"now_utc {raw.get('now_utc')!r} is not an ISO timestamp") from None
    if now.tzinfo is None or now.utcoffset() is None:
        raise bad(f"now_utc {raw.get('now_utc')!r} has no UTC offset")
    copy_dir = raw.get("copy_dir")
    if copy_dir is not None and (not isinstance(copy_dir, str) or not os.path.isabs(copy_dir)):
        raise bad(f"copy_dir {copy_dir!r} is not an absolute path")
    codes = raw.get("liquid_codes", [])
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        raise bad("liquid_codes is not a list of strings")
    attempts = raw.get("copy_attempts", 5)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 20:
        raise bad(f"copy_attempts {attempts!r} is not a whole number from 1 to 20")
    backoff = raw.get("copy_backoff_s", 0.05)
    if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or not 0 <= backoff <= 5:
        raise bad(f"copy_backoff_s {backoff!r} is not a number of seconds in [0, 5]")
    rows_limit = raw.get("rows_limit", 0)
    if isinstance(rows_limit, bool) or not isinstance(rows_limit, int) or not 0 <= rows_limit <= MAX_ROWS:
        raise bad(f"rows_limit {rows_limit!r} is not a whole number from 0 to {MAX_ROWS}")
    top_n = raw.get("top_n", 50)
    if isinstance(top_n, bool) or not isinstance(top_n, int) or not 1 <= top_n <= 1000:
        raise bad(f"top_n {top_n!r} is not a whole number from 1 to 1000")
    own = raw.get("own", [])
    if not isinstance(own, list) or len(own) > MAX_OWN or not all(isinstance(c, dict) for c in own):
        raise bad(f"own is not a list of at most {MAX_OWN} calls")
    return {
        "db_path": db_path,
        "hours": float(hours),
        "now_utc": now.astimezone(dt.timezone.utc),
        "copy_dir": copy_dir,
        "local": bool(raw.get("local", False)),
        "liquid_codes": list(codes),
        "copy_attempts": attempts,
        "copy_backoff_s": float(backoff),
        "top_n": top_n,
        "rows_limit": rows_limit,
        "own": own,
    }


def window(now_utc: dt.datetime, hours: float) -> tuple[dt.datetime, dt.datetime]:
    end = now_utc.astimezone(dt.timezone.utc)
    return end - dt.timedelta(hours=hours), end


def bound_literal(at: dt.datetime, aware: bool) -> str:
    """'YYYY-MM-DD HH:MM:SS.ffffff' in UTC; with '+00:00' for a TIMESTAMPTZ column."""
    naive = at.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return naive + "+00:00" if aware else naive


def iso_utc(at: dt.datetime) -> str:
    return at.astimezone(dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------- the query

def table_columns(con: Any) -> dict[str, str]:
    rows = con.execute(
        "SELECT lower(column_name), upper(data_type) FROM information_schema.columns "
        "WHERE lower(table_name) = $table AND table_schema = current_schema() "
        "AND table_catalog = current_database() ORDER BY ordinal_position",
        {"table": TABLE},
    ).fetchall()
    return {name: dtype for name, dtype in rows}


def ts_cast(columns: dict[str, str]) -> str:
    dtype = columns["ts"]
    if dtype in AWARE_TS_TYPES:
        return "TIMESTAMPTZ"
    if dtype in NAIVE_TS_TYPES:
        return "TIMESTAMP"
    raise ProbeError("schema", f"{TABLE}.ts is {dtype}, not TIMESTAMP or TIMESTAMPTZ", EXIT_BAD_INPUT)


def plan_query(columns: dict[str, str], liquid_codes: list[str], start: dt.datetime, end: dt.datetime,
               without: "list[int] | None" = None) -> tuple[str, dict[str, Any], set[str], list[str]]:
    """(sql, parameters, optional metrics computed, notes) for the columns present.

    The SQL text is assembled only from fixed fragments chosen by which columns
    exist; every value (bounds, liquid codes) is a named parameter.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ProbeError("schema", f"{TABLE} has no column {', '.join(missing)}", EXIT_BAD_INPUT)
    cast = ts_cast(columns)
    notes: list[str] = []
    have: set[str] = set()
    select = [
        "count(*) AS total",
        "count(*) FILTER (WHERE error IS NOT NULL) AS errors",
        "quantile_cont(latency_ms, 0.95) AS p95_ms",
        "histogram(served_by) AS served_by",
        "count(*) FILTER (WHERE served_by IS NULL) AS served_by_null",
        "count(*) FILTER (WHERE error LIKE '%CanonicalUnitViolation%') AS unit_violation_errors",
        "strftime(max(ts), '%Y-%m-%dT%H:%M:%S.%fZ') AS newest_utc",
    ]
    params: dict[str, Any] = {"start": bound_literal(start, cast == "TIMESTAMPTZ"), "end": bound_literal(end, cast == "TIMESTAMPTZ")}
    is_open = "lower(market_state) = 'open'"
    if "market_state" in columns:
        have.add("market_state")
        select += [
            "histogram(market_state) AS market_state",
            "count(*) FILTER (WHERE market_state IS NULL) AS market_state_null",
            f"count(*) FILTER (WHERE {is_open}) AS open_total",
            f"count(*) FILTER (WHERE {is_open} AND served_by = 'akshare-spot') AS akshare_open",
        ]
    else:
        notes.append("market_state column missing (older schema): market_state distribution and akshare-spot share during OPEN not computed")
    chain_type = columns.get("source_chain")
    if chain_type is not None and chain_type.endswith("[]"):
        have.add("source_chain")
        select += [
            "histogram(len(source_chain)) AS chain_len",
            "count(*) FILTER (WHERE source_chain IS NULL) AS chain_len_null",
            "histogram(len(source_chain)) FILTER (WHERE error IS NOT NULL) AS chain_len_errors",
            "count(*) FILTER (WHERE source_chain IS NULL AND error IS NOT NULL) AS chain_len_errors_null",
        ]
    elif chain_type is None:
        notes.append("source_chain column missing (older schema): source_chain length distribution not computed")
    else:
        notes.append(f"source_chain is {chain_type}, not a list: source_chain length distribution not computed")
    if "status" in columns:
        have.add("status")
        select.append("histogram(status) AS status")
        if "market_state" in columns:
            have.add("status_open")
            select.append(f"histogram(status) FILTER (WHERE {is_open}) AS status_open")
            if "ts_code" in columns:
                have.add("liquid_502_open")
                select.append(f"count(*) FILTER (WHERE status = 502 AND {is_open} AND list_contains(CAST($liquid AS VARCHAR[]), ts_code)) AS liquid_502_open")
                params["liquid"] = liquid_codes
        if "ts_code" in columns:
            # the designed answer to a code listed nowhere (runbook T+00:35 check 4): the §2 guard
            # does not count these 502s as failing traffic
            have.add("not_liquid_502")
            select.append("count(*) FILTER (WHERE status = 502 AND NOT coalesce(list_contains(CAST($liquid AS VARCHAR[]), ts_code), false)) AS not_liquid_502")
            params["liquid"] = liquid_codes
    else:
        notes.append("status column missing: HTTP status distribution not computed")
    sql = (
        "SELECT " + ", ".join(select) + f" FROM {TABLE} "
        f"WHERE ts > CAST($start AS {cast}) AND ts <= CAST($end AS {cast})"
    )
    if without:         # the tool's own calls (own_rows): left out of every metric
        sql += " AND NOT list_contains(CAST($without AS BIGINT[]), rowid)"
        params["without"] = without
    return sql, params, have, notes


def run_query(con: Any, p: dict[str, Any]) -> dict[str, Any]:
    """Aggregates for the window over an open connection (direct or copy)."""
    con.execute("SET TimeZone = 'UTC'")
    columns = table_columns(con)
    if not columns:
        raise ProbeError("missing_table", f"{p['db_path']} has no table {TABLE}", EXIT_BAD_INPUT)
    start, end = window(p["now_utc"], p["hours"])
    own: "dict[str, Any] | None" = None
    without: list[int] = []
    if p.get("own"):
        if "ts_code" in columns:
            without, by_kind = own_rows(con, columns, p["own"], start, end)
            own = {"left_out": len(without), "by_kind": by_kind, "recorded": len(p["own"])}
        else:
            own = {"left_out": 0, "by_kind": {}, "recorded": len(p["own"]),
                   "note": "ts_code column missing: the tool's own calls could not be told apart"}
    sql, params, have, notes = plan_query(columns, p["liquid_codes"], start, end, without)
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    row = dict(zip(names, cursor.fetchone()))
    out = shape(row, have, notes, p, start, end, ts_cast(columns))
    if own is not None:
        out["own"] = own
    if p.get("rows_limit"):
        out["rows"] = window_rows(con, columns, p["rows_limit"], start, end, notes)
    return out


def own_rows(con: Any, columns: dict[str, str], calls: list[dict[str, Any]], start: dt.datetime,
             end: dt.datetime) -> tuple[list[int], dict[str, int]]:
    """The rowids of the window's rows that are the tool's own calls, by own_calls.match (shipped with
    this script: the rule preflight uses), and how many per kind.  Only rows inside the calls'
    span (± the slack) are read: (rowid, ts, ts_code), at most MAX_ROWS of them."""
    from twilight_ops.own_calls import SLACK_S, from_wire, match, parse_instant

    own = from_wire(calls)
    if not own:
        return [], {"api": 0, "agent": 0}
    slack = dt.timedelta(seconds=SLACK_S)
    lo, hi = max(start, min(c.start for c in own) - slack), min(end, max(c.end for c in own) + slack)
    if lo > hi:
        return [], {"api": 0, "agent": 0}
    cast = ts_cast(columns)
    aware = cast == "TIMESTAMPTZ"
    cursor = con.execute(
        f"SELECT rowid, strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ'), CAST(ts_code AS VARCHAR) FROM {TABLE} "
        f"WHERE ts > CAST($start AS {cast}) AND ts <= CAST($end AS {cast}) "
        f"AND ts >= CAST($lo AS {cast}) AND ts <= CAST($hi AS {cast}) ORDER BY ts LIMIT $limit",
        {"start": bound_literal(start, aware), "end": bound_literal(end, aware), "lo": bound_literal(lo, aware),
         "hi": bound_literal(hi, aware), "limit": MAX_ROWS},
    )
    found = cursor.fetchall()
    idx, by_kind = match([(parse_instant(ts), code) for _rowid, ts, code in found], own)
    return [int(found[k][0]) for k in idx], by_kind


def window_rows(con: Any, columns: dict[str, str], limit: int, start: dt.datetime, end: dt.datetime,
                notes: list[str]) -> "list[list[Any]] | None":
    """The newest `limit` rows of the window as [ts (ISO, UTC, 'Z'), ts_code]; None without a ts_code column."""
    if "ts_code" not in columns:
        notes.append("ts_code column missing: the window's rows cannot be told apart by code")
        return None
    cast = ts_cast(columns)
    aware = cast == "TIMESTAMPTZ"
    cursor = con.execute(
        f"SELECT strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ'), CAST(ts_code AS VARCHAR) FROM {TABLE} "
        f"WHERE ts > CAST($start AS {cast}) AND ts <= CAST($end AS {cast}) ORDER BY ts DESC LIMIT $limit",
        {"start": bound_literal(start, aware), "end": bound_literal(end, aware), "limit": limit},
    )
    return [[ts, code] for ts, code in cursor.fetchall()]


# ---------------------------------------------------------------- result shape

def finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def counts(hist: dict | None, nulls: int, top_n: int, what: str, notes: list[str]) -> list[tuple[Any, int]]:
    """histogram() map + NULL count -> [(value, n)] by n desc, NULL last, capped at top_n."""
    pairs = [(k, int(v)) for k, v in (hist or {}).items()]
    pairs.sort(key=lambda kv: (-kv[1], str(kv[0])))
    if nulls:
        pairs.append((None, int(nulls)))
    if len(pairs) > top_n:
        notes.append(f"{what} has {len(pairs)} distinct values; showing the {top_n} most frequent")
        pairs = pairs[:top_n]
    return pairs


def pct(n: int, total: int) -> float | None:
    return 100.0 * n / total if total else None


def shape(row: dict[str, Any], have: set[str], notes: list[str], p: dict[str, Any], start: dt.datetime, end: dt.datetime, ts_type: str) -> dict[str, Any]:
    total = int(row["total"])
    errors = int(row["errors"])
    top = p["top_n"]
    p95 = finite(row["p95_ms"])
    if total == 0:
        notes.insert(0, f"no rows in the window ({iso_utc(start)} .. {iso_utc(end)})")
    elif p95 is None:
        notes.append("latency_ms is NULL on every row in the window: p95 not computed")
    out: dict[str, Any] = {
        "probe": PROBE_VERSION,
        "read_via": None,
        "copied_at": None,
        "window": {"hours": p["hours"], "start_utc": iso_utc(start), "end_utc": iso_utc(end)},
        "ts_type": ts_type,
        "total": total,
        "errors": errors,
        "err_pct": pct(errors, total),
        "p95_ms": p95,
        "newest_utc": row["newest_utc"],
        "served_by": [
            {"served_by": k, "n": n, "share_pct": pct(n, total)}
            for k, n in counts(row["served_by"], row["served_by_null"], top, "served_by", notes)
        ],
        "open_total": None,
        "akshare_spot_share_open_pct": None,
        "market_state": None,
        "source_chain_len": None,
        "source_chain_len_errors": None,
        "status": None,
        "status_open": None,
        "liquid_502_open": None,
        "not_liquid_502": None,
        "unit_violation_errors": int(row["unit_violation_errors"]),
        "notes": notes,
    }
    if "market_state" in have:
        open_total = int(row["open_total"])
        out["open_total"] = open_total
        out["akshare_spot_share_open_pct"] = pct(int(row["akshare_open"]), open_total)
        if total and not open_total:
            notes.append("no rows with market_state 'open' in the window: akshare-spot share during OPEN not computed")
        out["market_state"] = [
            {"market_state": k, "n": n}
            for k, n in counts(row["market_state"], row["market_state_null"], top, "market_state", notes)
        ]
    if "source_chain" in have:
        by_len = lambda hist, nulls: sorted(  # noqa: E731
            counts(hist, nulls, top, "source_chain length", notes), key=lambda kv: (kv[0] is None, kv[0] or 0)
        )
        out["source_chain_len"] = [{"len": k, "n": n} for k, n in by_len(row["chain_len"], row["chain_len_null"])]
        out["source_chain_len_errors"] = [
            {"len": k, "n": n} for k, n in by_len(row["chain_len_errors"], row["chain_len_errors_null"])
        ]
    if "status" in have:
        out["status"] = [{"status": k, "n": n} for k, n in counts(row["status"], 0, top, "status", notes)]
    if "status_open" in have:
        out["status_open"] = [{"status": k, "n": n} for k, n in counts(row["status_open"], 0, top, "status", notes)]
    if "liquid_502_open" in have:
        out["liquid_502_open"] = int(row["liquid_502_open"])
    if "not_liquid_502" in have:
        out["not_liquid_502"] = int(row["not_liquid_502"])
    return out


# ---------------------------------------------------------------- reading

def connect(duckdb: Any, path: str, read_only: bool, on_connect: Callable[[Any], Any] | None = None) -> Any:
    """A connection that never prints: DuckDB's progress bar goes to stdout
    after 2 s and would corrupt the one JSON object.  on_connect(con): the in-process caller's
    handle on it (to interrupt a query past its timeout)."""
    con = duckdb.connect(path, read_only=read_only)
    try:
        if on_connect is not None:
            on_connect(con)
        con.execute("SET enable_progress_bar = false")
    except BaseException:
        con.close()
        raise
    return con


def is_lock_conflict(exc: BaseException) -> bool:
    text = str(exc)
    return "Conflicting lock" in text or "Could not set lock" in text


def db_fingerprint(path: str) -> tuple[int, int, int, int, str] | None:
    """(inode, size, mtime_ns, ctime_ns, sha256 of the headers); None if absent."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            head = f.read(HEADER_BYTES)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, hashlib.sha256(head).hexdigest())


def wal_state(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size)


def copy_once(src: str, dest: str, copy_file: Callable[[str, str], Any]) -> str | None:
    """Copy src (+ .wal) to dest (+ .wal). None if consistent, else why not."""
    for stale in (dest, dest + ".wal"):
        if os.path.exists(stale):
            os.remove(stale)
    db_before, wal_before = db_fingerprint(src), wal_state(src + ".wal")
    if db_before is None:
        raise ProbeError("missing_file", f"no DuckDB file at {src} (it disappeared)", EXIT_BAD_INPUT)
    copy_file(src, dest)
    try:
        copy_file(src + ".wal", dest + ".wal")
    except FileNotFoundError:
        pass
    db_after, wal_after = db_fingerprint(src), wal_state(src + ".wal")
    if db_after != db_before:
        return "the database file changed during the copy (a checkpoint ran)"
    if os.path.getsize(dest) != db_before[1]:
        return "the copy is shorter than the database file"
    if wal_before is not None and (wal_after is None or wal_after[0] != wal_before[0] or wal_after[1] < wal_before[1]):
        return "the WAL was truncated or replaced during the copy"
    return None


def check_room(src: str, parent: str) -> None:
    need = sum(os.path.getsize(f) for f in (src, src + ".wal") if os.path.exists(f))
    try:
        free = shutil.disk_usage(parent).free
    except OSError as e:
        raise ProbeError("copy_dir", f"cannot use copy dir {parent}: {one_line(e)}", EXIT_BAD_INPUT) from None
    if free < need * 1.1 + 16 * 2**20:
        raise ProbeError(
            "no_space",
            f"the database is locked and a copy needs {need / 2**20:.0f} MiB; {parent} has {free / 2**20:.0f} MiB free",
            EXIT_UNREADABLE,
        )


def read_from_copy(duckdb: Any, p: dict[str, Any], sleep: Callable[[float], Any], copy_file: Callable[[str, str], Any],
                   on_connect: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    src = p["db_path"]
    parent = p["copy_dir"] or tempfile.gettempdir()
    check_room(src, parent)
    try:
        tmp = tempfile.mkdtemp(prefix="twilight-probe-", dir=parent)
    except OSError as e:
        raise ProbeError("copy_dir", f"cannot create a temp dir in {parent}: {one_line(e)}", EXIT_BAD_INPUT) from None
    dest = os.path.join(tmp, "copy.duckdb")
    reason = ""
    try:
        for attempt in range(1, p["copy_attempts"] + 1):
            if attempt > 1:
                sleep(p["copy_backoff_s"] * 2 ** (attempt - 2))
            try:
                why = copy_once(src, dest, copy_file)
            except OSError as e:
                kind = "no_space" if e.errno == errno.ENOSPC else "copy_failed"
                raise ProbeError(kind, f"cannot copy {src} into {parent}: {one_line(e)}", EXIT_UNREADABLE) from None
            if why is not None:
                reason = why
                continue
            copied_at = dt.datetime.now(dt.timezone.utc)
            try:
                con = connect(duckdb, dest, read_only=False, on_connect=on_connect)
            except duckdb.Error as e:
                reason = f"the copy did not open: {one_line(e)}"
                continue
            try:
                out = run_query(con, p)
            except duckdb.Error as e:
                reason = f"the copy failed the query: {one_line(e)}"
                continue
            finally:
                con.close()
            out["read_via"] = "copy"
            out["copied_at"] = iso_utc(copied_at)
            out["copy_attempts"] = attempt
            return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    raise ProbeError(
        "torn_copy",
        f"no consistent copy of {src} after {p['copy_attempts']} attempts (last: {reason})",
        EXIT_UNREADABLE,
    )


def probe(raw_params: Any, *, sleep: Callable[[float], Any] = time.sleep, copy_file: Callable[[str, str], Any] = shutil.copyfile,
          on_connect: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """The §3 aggregates as a JSON-ready dict; ProbeError for every ordinary failure."""
    p = check_params(raw_params)
    try:
        import duckdb
    except ImportError:
        raise ProbeError("no_duckdb", f"python {sys.version.split()[0]} here has no duckdb module", EXIT_BAD_INPUT) from None
    started = time.monotonic()
    path = p["db_path"]
    if not os.path.isfile(path):
        raise ProbeError("missing_file", f"no DuckDB file at {path}", EXIT_BAD_INPUT)
    try:
        con = connect(duckdb, path, read_only=True, on_connect=on_connect)
    except duckdb.Error as e:
        if not is_lock_conflict(e):
            if p["local"]:  # --db names a local file the operator chose: bad input, not "cannot reach"
                raise ProbeError("not_duckdb", f"--db {path} cannot be opened as a DuckDB file: {one_line(e)}",
                                 EXIT_BAD_INPUT) from None
            raise ProbeError("duckdb", f"cannot open {path}: {one_line(e)}", EXIT_UNREADABLE) from None
        out = read_from_copy(duckdb, p, sleep, copy_file, on_connect)
    else:
        try:
            out = run_query(con, p)
        except duckdb.Error as e:
            raise ProbeError("duckdb", f"query on {path} failed: {one_line(e)}", EXIT_UNREADABLE) from None
        finally:
            con.close()
        out["read_via"] = "local-file" if p["local"] else "direct"
    out["elapsed_ms"] = round((time.monotonic() - started) * 1000.0, 1)
    return out


def main(raw_params: Any, out: Any = None, **probe_kwargs: Any) -> int:
    """Print exactly one JSON object; return the exit code."""
    stream = out if out is not None else sys.stdout
    try:
        result: dict[str, Any] = probe(raw_params, **probe_kwargs)
        code = EXIT_OK
    except ProbeError as e:
        result, code = {"error": e.message, "kind": e.kind}, e.exit_code
    except Exception as e:  # a bug here: still one JSON line, never a traceback
        result, code = {"error": f"{type(e).__name__}: {one_line(e)}", "kind": "internal"}, EXIT_INTERNAL
    stream.write(json.dumps(result, separators=(",", ":"), allow_nan=False) + "\n")
    stream.flush()
    return code


if __name__ == "__main__":
    sys.exit(main(PARAMS))

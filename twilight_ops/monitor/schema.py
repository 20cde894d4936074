"""§2.3's evidence, run INSIDE a one-off container of the backend image (shipped with probe.py as
one bundle: monitor/bundle.py), while the backend may hold the warehouse open.

    evidence  {"db_path", "snapshot", "since", "copy_dir"|null, "attempts"}
              the warehouse (read through a consistent copy when it is locked: probe.copy_once)
              and the T+00:00 snapshot: each one's tables (columns and types, row counts),
              indexes and storage version, and per table the rows written since `since`
    export    {"replaced", "snapshot", "since", "dest_prefix"}
              from a replaced (moved aside) warehouse, the rows written since `since` into one
              Parquet file per table beside it (`<dest_prefix>.<table>.parquet`, never over an
              existing file), with their count, first and last ts, and a checksum of the rows

Rows "since": a table with a TIMESTAMP column `ts` → rows with ts >= since; a table the snapshot
does not have → all its rows; else the rows the snapshot does not hold (EXCEPT ALL) when the
columns line up, all rows when they do not.  Output: one JSON object; exit 0, 2 bad input, 3 failed.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Any

from twilight_ops.monitor.probe import (EXIT_BAD_INPUT, EXIT_OK, EXIT_UNREADABLE, ProbeError, connect, copy_once,
                                        is_lock_conflict, one_line)

MAGIC_AT = 8          # DuckDB file header: "DUCK" at byte 8, then the storage version (uint64, little endian)


def storage_version(path: str) -> int | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(MAGIC_AT + 12)
    except OSError:
        return None
    if head[MAGIC_AT:MAGIC_AT + 4] != b"DUCK":
        return None
    return int.from_bytes(head[MAGIC_AT + 4:MAGIC_AT + 12], "little")


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def tables_of(con: Any, catalog: str) -> dict[str, dict[str, Any]]:
    """{table: {"columns": [[name, type], ...], "rows": n, "ref": catalog.schema.table} of one database's base tables."""
    cols = con.execute("SELECT c.table_schema, c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
                       "JOIN information_schema.tables t USING (table_catalog, table_schema, table_name) "
                       "WHERE c.table_catalog = ? AND t.table_type = 'BASE TABLE' "
                       "ORDER BY c.table_schema, c.table_name, c.ordinal_position", [catalog]).fetchall()
    out: dict[str, dict[str, Any]] = {}
    for schema, table, column, type_ in cols:
        key = table if schema == "main" else f"{schema}.{table}"
        entry = out.setdefault(key, {"columns": [], "rows": 0, "ref": f"{q(catalog)}.{q(schema)}.{q(table)}"})
        entry["columns"].append([str(column), str(type_)])
    for t in out.values():
        t["rows"] = int(con.execute(f"SELECT count(*) FROM {t['ref']}").fetchone()[0])
    return out


def indexes_of(con: Any, catalog: str) -> list[list[str]]:
    rows = con.execute("SELECT table_name, index_name, coalesce(sql, '') FROM duckdb_indexes() WHERE database_name = ? "
                       "ORDER BY 1, 2", [catalog]).fetchall()
    return [[str(a), str(b), str(c)] for a, b, c in rows]


def since_rows(con: Any, now: dict[str, Any], then: dict[str, Any], since: str) -> dict[str, Any]:
    """Per table of `now`: {"rows", "first", "last", "how", "select"}: what was written after `since`
    (`select` reads exactly those rows; export uses it)."""
    out: dict[str, Any] = {}
    for name, t in now.items():
        ref, types = t["ref"], dict(t["columns"])
        if name not in then:
            select, how = f"SELECT * FROM {ref}", "new-table"
        elif types.get("ts", "").startswith("TIMESTAMP"):
            select, how = f"SELECT * FROM {ref} WHERE ts >= TIMESTAMP {lit(naive_utc(since))}", "ts"
        elif [ty for _, ty in t["columns"]] == [ty for _, ty in then[name]["columns"]]:
            select, how = f"SELECT * FROM {ref} EXCEPT ALL SELECT * FROM {then[name]['ref']}", "not-in-snapshot"
        else:
            select, how = f"SELECT * FROM {ref}", "all-rows"
        span = "min(ts), max(ts)" if "ts" in types else "NULL, NULL"
        row = con.execute(f"SELECT count(*), {span} FROM ({select})").fetchone()
        out[name] = {"rows": int(row[0]), "first": _iso(row[1]), "last": _iso(row[2]), "how": how, "select": select}
    return out


def _iso(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).isoformat()
    return None if value is None else str(value)


def naive_utc(since: str) -> str:
    """The audit log's ts is naive UTC: the cut-off in that form (ValueError unless it parses)."""
    at = dt.datetime.fromisoformat(since)
    if at.tzinfo is not None:
        at = at.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return at.isoformat(sep=" ")


def opened_with_snapshot(duckdb: Any, path: str, snapshot: str, read_only: bool = True) -> tuple[Any, str]:
    con = connect(duckdb, path, read_only=read_only)
    try:
        main = str(con.execute("SELECT current_database()").fetchone()[0])
        con.execute(f"ATTACH {lit(snapshot)} AS t0snap (READ_ONLY)")
    except BaseException:
        con.close()
        raise
    return con, main


def describe(duckdb: Any, path: str, snapshot: str, since: str, read_only: bool = True) -> dict[str, Any]:
    con, main = opened_with_snapshot(duckdb, path, snapshot, read_only)
    try:
        now, then = tables_of(con, main), tables_of(con, "t0snap")
        out = {"now": {"tables": now, "indexes": indexes_of(con, main)},
               "then": {"tables": then, "indexes": indexes_of(con, "t0snap")},
               "since": since_rows(con, now, then, since)}
    finally:
        con.close()
    for side in ("now", "then"):
        for t in out[side]["tables"].values():
            t.pop("ref", None)
    return out


def evidence(duckdb: Any, p: dict[str, Any]) -> dict[str, Any]:
    """The warehouse next to the snapshot; through a consistent copy when the backend holds it."""
    src, snap = p["db_path"], p["snapshot"]
    for path in (src, snap):
        if not os.path.isfile(path):
            raise ProbeError("missing_file", f"no DuckDB file at {path}", EXIT_BAD_INPUT)
    storage = {"now": storage_version(src), "then": storage_version(snap)}
    try:
        out = describe(duckdb, src, snap, p["since"])
        out["read_via"] = "direct"
    except duckdb.Error as e:
        if not is_lock_conflict(e):
            raise ProbeError("duckdb", f"cannot read {src} next to {snap}: {one_line(e)}", EXIT_UNREADABLE) from None
        tmp = tempfile.mkdtemp(prefix="twilight-schema-", dir=p.get("copy_dir") or None)
        try:
            dest, why = os.path.join(tmp, "warehouse.duckdb"), "never tried"
            for attempt in range(int(p.get("attempts", 5))):
                if attempt:
                    time.sleep(0.05 * 2 ** attempt)
                why = copy_once(src, dest, shutil.copyfile) or ""
                if not why:
                    break
            if why:
                raise ProbeError("torn_copy", f"no consistent copy of {src}: {why}", EXIT_UNREADABLE)
            out = describe(duckdb, dest, snap, p["since"], read_only=False)     # replays a copied WAL
            out["read_via"] = "copy"
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    out["storage"] = storage
    return out


def export(duckdb: Any, p: dict[str, Any]) -> dict[str, Any]:
    """The rows a restore dropped (in the replaced file, written since T+00:00) to Parquet beside it."""
    replaced, snap, prefix = p["replaced"], p["snapshot"], p["dest_prefix"]
    con, main = opened_with_snapshot(duckdb, replaced, snap)
    files: list[dict[str, Any]] = []
    try:
        now, then = tables_of(con, main), tables_of(con, "t0snap")
        for name, rows in since_rows(con, now, then, p["since"]).items():
            if not rows["rows"]:
                continue
            dest = f"{prefix}.{name}.parquet"
            if os.path.lexists(dest):
                files.append({"table": name, "path": dest, "rows": rows["rows"], "kept": "already there"})
                continue
            tmp = f"{dest}.writing"
            con.execute(f"COPY ({rows['select']}) TO {lit(tmp)} (FORMAT PARQUET)")
            os.link(tmp, dest)                   # never over a file that appeared meanwhile
            os.unlink(tmp)
            files.append({"table": name, "path": dest, "rows": rows["rows"], "first": rows["first"],
                          "last": rows["last"], "how": rows["how"]})
    finally:
        con.close()
    return {"files": files, "rows": sum(f["rows"] for f in files)}


def main(p: dict[str, Any], out: Any = None) -> int:
    stream = out if out is not None else sys.stdout
    try:
        import duckdb
    except ImportError:
        result, code = {"ok": False, "error": "no duckdb module here", "kind": "no_duckdb"}, EXIT_BAD_INPUT
    else:
        try:
            naive_utc(str(p.get("since")))
            result = {"ok": True, **(export(duckdb, p) if p.get("mode") == "export" else evidence(duckdb, p))}
            code = EXIT_OK
        except ProbeError as e:
            result, code = {"ok": False, "error": e.message, "kind": e.kind}, e.exit_code
        except ValueError as e:
            result, code = {"ok": False, "error": f"bad parameter: {one_line(e)}", "kind": "bad_input"}, EXIT_BAD_INPUT
        except (OSError, duckdb.Error) as e:
            result, code = {"ok": False, "error": one_line(e), "kind": "failed"}, EXIT_UNREADABLE
    stream.write(json.dumps(result, separators=(",", ":"), default=str) + "\n")
    stream.flush()
    return code

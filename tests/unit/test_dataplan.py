"""Issue 24: §2.3 from evidence.  The evidence script runs here on real DuckDB files (the same bundle
the one-off container on tvps runs); the plan and the decision are pure."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import duckdb
import pytest

from twilight_ops import dataplan
from twilight_ops.phases.data import script

SINCE = "2026-12-07T01:30:00+00:00"


def run(mode: str, params: dict) -> dict:
    r = subprocess.run([sys.executable, "-"], input=script(mode, params), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.splitlines()[-1])


@pytest.fixture
def warehouse(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE provider_audit_log (ts TIMESTAMP NOT NULL, ts_code VARCHAR, served_by VARCHAR, latency_ms DOUBLE)")
    con.execute("INSERT INTO provider_audit_log VALUES ('2026-12-07 01:00:00', '600519.SH', 'tushare', 1.0)")
    con.execute("CHECKPOINT")
    con.close()
    shutil.copyfile(db, tmp_path / "warehouse.duckdb.pre-w4")
    return db


def written_after(db, *ddl: str) -> None:
    con = duckdb.connect(str(db))
    for stmt in ddl:
        con.execute(stmt)
    con.execute("INSERT INTO provider_audit_log VALUES ('2026-12-07 02:00:00', '600519.SH', 'b', 2.0), "
                "('2026-12-07 02:05:00', '000001.SZ', 'b', 3.0)")
    con.close()


def evidence(db) -> dict:
    return run("evidence", {"db_path": str(db), "snapshot": str(db) + ".pre-w4", "since": SINCE, "copy_dir": None, "attempts": 5})


def test_schema_unchanged_keeps_the_warehouse_and_counts_the_rows(warehouse):
    written_after(warehouse)
    p = dataplan.plan(evidence(warehouse), SINCE)
    assert not p.changed and p.rows_at_risk == 2
    assert p.line().startswith("schema unchanged since T+00:00") and "keep the warehouse" in p.line()
    assert dataplan.choose(p, restore_db=False, keep_db=False) == dataplan.KEEP
    assert dataplan.choose(p, restore_db=True, keep_db=False) == dataplan.RESTORE


def test_a_renamed_column_and_a_new_table_are_named_with_the_rows_a_restore_drops(warehouse):
    written_after(warehouse, "ALTER TABLE provider_audit_log RENAME COLUMN served_by TO provider",
                  "CREATE TABLE price_units (ts_code VARCHAR, unit VARCHAR)", "INSERT INTO price_units VALUES ('x', 'CNY')")
    p = dataplan.plan(evidence(warehouse), SINCE)
    assert p.changed and p.rows_at_risk == 3 and dict(p.per_table) == {"provider_audit_log": 2, "price_units": 1}
    line = p.line()
    assert "`provider_audit_log` column `served_by` renamed to `provider`" in line and "`price_units` is a new table" in line
    assert "a restore would drop 3 rows written since T+00:00 (first 2026-12-07T02:00:00+00:00, last 2026-12-07T02:05:00+00:00)" in line
    assert dataplan.choose(p, False, False) == dataplan.VERIFY
    assert dataplan.after_verify(p, legacy_ok=True, keep_db=False) == dataplan.KEEP
    assert dataplan.after_verify(p, legacy_ok=False, keep_db=False) == dataplan.RESTORE
    assert dataplan.after_verify(p, legacy_ok=False, keep_db=True) == dataplan.REFUSED


def test_the_evidence_reads_a_warehouse_another_process_holds_open(warehouse):
    holder = duckdb.connect(str(warehouse))              # the backend's read-write handle
    try:
        holder.execute("ALTER TABLE provider_audit_log ADD COLUMN units VARCHAR")
        ev = evidence(warehouse)
    finally:
        holder.close()
    assert ev["read_via"] == "copy"
    assert [c.what for c in dataplan.changes(ev)] == ["column-added"]


def test_the_export_holds_exactly_the_rows_since_the_snapshot(warehouse, tmp_path):
    written_after(warehouse, "ALTER TABLE provider_audit_log RENAME COLUMN served_by TO provider")
    replaced = tmp_path / "failed-w4"
    warehouse.rename(replaced)
    out = run("export", {"replaced": str(replaced), "snapshot": str(warehouse) + ".pre-w4", "since": SINCE,
                         "dest_prefix": str(replaced) + ".since-t0"})
    assert out["rows"] == 2 and [f["table"] for f in out["files"]] == ["provider_audit_log"]
    path = out["files"][0]["path"]
    con = duckdb.connect()
    got = con.execute(f"SELECT count(*), sum(hash(ts, ts_code, provider, latency_ms)) FROM '{path}'").fetchone()
    want = duckdb.connect(str(replaced), read_only=True).execute(
        "SELECT count(*), sum(hash(ts, ts_code, provider, latency_ms)) FROM provider_audit_log "
        "WHERE ts >= TIMESTAMP '2026-12-07 01:30:00'").fetchone()
    assert got == want and got[0] == 2
    again = run("export", {"replaced": str(replaced), "snapshot": str(warehouse) + ".pre-w4", "since": SINCE,
                           "dest_prefix": str(replaced) + ".since-t0"})
    assert again["files"][0]["kept"] == "already there"              # never written over


def test_bad_since_is_exit_2_and_one_json_line(warehouse):
    r = subprocess.run([sys.executable, "-"], input=script("evidence", {"db_path": str(warehouse), "snapshot": str(warehouse),
                                                                      "since": "yesterday", "copy_dir": None}),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and json.loads(r.stdout)["kind"] == "bad_input"

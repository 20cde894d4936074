"""Issue 24 through the twin: §2.3 decided from evidence.

- schema-regressed (W4 renames a column v0.2.0 selects, then a red flag): the cutover's rollback reads
  the data plan, rolls the image back, sees v0.2.0 fail to start, restores the T+00:00 snapshot and
  exports the rows written since T+00:00 from the replaced file: the Parquet holds exactly those rows
  (count and a checksum against a query on the replaced file);
- schema-additive (W4 adds a table v0.2.0 ignores): image only, the warehouse kept;
- after a W4 deploy that regressed the schema: `inv rollback --keep-db` ends red with the data plan and
  the exact command that restores; then `inv rollback --restore-db` killed (-9) during its restore
  resumes without a second restore and without losing the replaced file.
"""
from __future__ import annotations

import os
import posixpath
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests import journals
from tests.conftest import REPO, inv
from twilight_ops.twin import rehearse, release_faults
from twilight_ops.twin.state import load_or_new

pytestmark = pytest.mark.twin

V = rehearse.V


@pytest.fixture
def fresh(twin, twin_settings):
    rehearse.reset(twin, twin_settings)
    yield twin
    rehearse.reset(twin, twin_settings)


def data_dir(twin) -> Path:
    return twin.remote_root / "data"


def kept_files(twin) -> list[Path]:
    return sorted(p for p in data_dir(twin).glob("warehouse.duckdb.failed-*") if not p.name.endswith((".parquet", ".wal")))


def test_schema_regressed_restores_and_exports_exactly_the_rows_since_t0(fresh, twin_settings, tmp_path):
    sc = rehearse.SCENARIOS["schema-regressed"]
    row = rehearse.run_scenario(fresh.base, sc, tmp_path)
    assert row.ok, f"{row.got} ({row.note}); log:\n" + open(row.log, encoding="utf-8").read()[-6000:]
    j = journals.local(twin_settings, V)
    plan = j["facts"]["data_plan"]
    assert plan["changed"] and plan["done"] == "restored"
    assert "column `served_by` renamed to `provider`" in plan["line"]
    kept = data_dir(fresh) / posixpath.basename(j["facts"]["db_restore"]["failed"])
    assert kept_files(fresh) == [kept]                       # the replaced file, kept
    export = [s for s in j["steps"] if s["name"].endswith(":db-export")][-1]["evidence"]["files"]
    assert [f["table"] for f in export] == ["provider_audit_log"]
    parquet = data_dir(fresh) / posixpath.basename(export[0]["path"])
    since = j["facts"]["snapshot"]["taken_at"]
    cut = since.replace("T", " ").split("+")[0]
    con = duckdb.connect()
    got = con.execute(f"SELECT count(*), sum(hash(ts, ts_code, provider, latency_ms, status)) FROM '{parquet}'").fetchone()
    want = duckdb.connect(str(kept), read_only=True).execute(
        "SELECT count(*), sum(hash(ts, ts_code, provider, latency_ms, status)) FROM provider_audit_log "
        f"WHERE ts >= TIMESTAMP '{cut}'").fetchone()
    assert got == want and got[0] >= 1 and got[0] == export[0]["rows"]
    cols = [r[0] for r in duckdb.connect(str(data_dir(fresh) / "warehouse.duckdb.pre-w4"), read_only=True).execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'provider_audit_log'").fetchall()]
    assert "served_by" in cols
    report = (twin_settings.state_dir / "reports" / twin_settings.host / f"{V}.md").read_text()
    assert "data plan" in report.lower() and "restored" in report


def test_schema_additive_rolls_the_image_back_and_keeps_the_warehouse(fresh, twin_settings, tmp_path):
    sc = rehearse.SCENARIOS["schema-additive"]
    row = rehearse.run_scenario(fresh.base, sc, tmp_path)
    assert row.ok, f"{row.got} ({row.note}); log:\n" + open(row.log, encoding="utf-8").read()[-6000:]
    j = journals.local(twin_settings, V)
    assert j["facts"]["data_plan"]["done"] == "kept" and "`price_units` is a new table" in j["facts"]["data_plan"]["line"]
    assert not [s for s in j["steps"] if s["name"].endswith((":db-restore", ":db-export"))]
    assert kept_files(fresh) == []


def test_keep_db_ends_red_with_the_plan_then_a_killed_restore_resumes_once(fresh, twin_settings):
    st = load_or_new(fresh.base)
    release_faults.apply(st, "schema-regressed", V)
    cfg = fresh.invoke_yaml
    for args in (("preflight", "--version", V), ("tag-push", "--version", V), ("deploy", "--version", V, "--yes")):
        r = inv(*args, cfg=cfg, timeout=600)
        assert r.returncode == 0, (args, r.stdout[-2000:], r.stderr[-3000:])

    red = inv("rollback", "--version", V, "--yes", "--keep-db", "--reason", "schema test", cfg=cfg, timeout=600)
    assert red.returncode == 1, red.stdout + red.stderr
    line = [x for x in red.stderr.splitlines() if x.startswith("error:")][-1]
    assert "--keep-db forbids the restore" in line and "column `served_by` renamed to `provider`" in line
    assert f"rollback --version {V} --restore-db" in line and "Traceback" not in red.stderr
    assert kept_files(fresh) == []                                  # nothing restored, nothing moved

    argv = [str(Path(sys.executable).with_name("inv")), "-f", str(cfg), "rollback", "--version", V, "--yes",
            "--restore-db", "--reason", "schema test"]
    local = journals.local_path(twin_settings, V)
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    killed = False
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if rehearse.running_step(rehearse.read_journal(local), "rollback#") and \
                    str(rehearse.running_step(rehearse.read_journal(local), "rollback#")).endswith(":db-restore"):
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None and not killed:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert killed, "the rollback never reached its restore"

    again = inv("rollback", "--version", V, "--yes", "--restore-db", "--reason", "schema test", cfg=cfg, timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    j = journals.local(twin_settings, V)
    restores = [s for s in j["steps"] if s["name"].endswith(":db-restore")]
    assert restores[-1]["outcome"] == "ok"
    assert len(kept_files(fresh)) == 1                              # one replaced file: no second restore
    assert kept_files(fresh)[0].name == posixpath.basename(j["facts"]["db_restore"]["failed"])
    smoke = inv("smoke", "--version", V, "--expect", "legacy", "--json", cfg=cfg)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr

"""The T+00:00 snapshot script on real DuckDB files, run by a real python3 as it is in the
container: a consistent copy while another process holds the file read-write, verified,
never overwritten, reused on a second run."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap

import duckdb
import pytest

from twilight_ops.local import LocalExecutor
from twilight_ops.phases.snapshot import snapshot_script


def run_script(db, dest, margin=0):
    r = LocalExecutor().run([sys.executable, "-"], stdin=snapshot_script(str(db), str(dest), margin), check=False, timeout=120)
    return r.exited, json.loads(r.stdout.strip().splitlines()[-1])


def make_db(path, rows=1000):
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE provider_audit_log AS SELECT range AS id, 'akshare-spot' AS served_by FROM range(?)", [rows])
    con.execute("CREATE TABLE trade_cal AS SELECT range AS d FROM range(10)")
    con.close()


HOLDER = textwrap.dedent('''
    import duckdb, sys, time
    con = duckdb.connect(sys.argv[1])
    con.execute("SET checkpoint_threshold = '1GB'")     # keep recent writes in the WAL
    con.execute("INSERT INTO provider_audit_log SELECT 100000 + range, 'tushare-daily' FROM range(500)")
    print("ready", flush=True)
    sys.stdin.read()                                    # hold the lock until the test closes stdin
''')


def test_snapshot_of_a_file_another_process_holds_open(tmp_path):
    db, dest = tmp_path / "warehouse.duckdb", tmp_path / "warehouse.duckdb.pre-w4"
    make_db(db)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(duckdb.IOException):         # the runbook's direct read cannot open it
            duckdb.connect(str(db), read_only=True)
        code, out = run_script(db, dest)
    finally:
        holder.stdin.close()
        holder.wait(30)
    assert code == 0 and out["ok"] and not out["reused"]
    assert out["tables"] == {"provider_audit_log": 1500, "trade_cal": 10}     # the WAL's rows folded in
    assert out["sha256"] == hashlib.sha256(dest.read_bytes()).hexdigest()
    assert not (tmp_path / "warehouse.duckdb.pre-w4.wal").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".twilight-snapshot-")] == []
    con = duckdb.connect(str(dest), read_only=True)
    assert con.execute("SELECT count(*) FROM provider_audit_log").fetchone()[0] == 1500
    con.close()


def test_a_snapshot_is_never_overwritten(tmp_path):
    db, dest = tmp_path / "warehouse.duckdb", tmp_path / "warehouse.duckdb.pre-w4"
    make_db(db)
    _, first = run_script(db, dest)
    before = dest.read_bytes()
    con = duckdb.connect(str(db))
    con.execute("INSERT INTO trade_cal SELECT range FROM range(5)")
    con.close()
    code, second = run_script(db, dest)
    assert code == 0 and second["reused"] and second["sha256"] == first["sha256"]
    assert second["tables"]["trade_cal"] == 10 and dest.read_bytes() == before


def test_no_room_is_refused_before_any_copy(tmp_path):
    db, dest = tmp_path / "warehouse.duckdb", tmp_path / "warehouse.duckdb.pre-w4"
    make_db(db)
    code, out = run_script(db, dest, margin=2**60)
    assert code == 3 and out["kind"] == "no_space" and "MiB free" in out["error"] and not dest.exists()


def test_a_missing_database_is_one_line(tmp_path):
    code, out = run_script(tmp_path / "nope.duckdb", tmp_path / "snap")
    assert code == 2 and out["kind"] == "missing_file"


def test_the_snapshot_gets_the_databases_owner_group_and_mode(tmp_path):
    """Issue 15 §2: run as root (as in the container) the snapshot is not root:root 0640 but
    the warehouse's owner, group and mode, so the operator can read it."""
    import os
    import stat

    db, dest = tmp_path / "warehouse.duckdb", tmp_path / "warehouse.duckdb.pre-w4"
    make_db(db)
    os.chmod(db, 0o604)
    as_root = os.geteuid() == 0
    if as_root:
        os.chown(db, 12345, 23456)
    code, out = run_script(db, dest)
    st, got = os.stat(db), os.stat(dest)
    assert code == 0 and out["owner"]["as_database"] is True
    assert stat.S_IMODE(got.st_mode) == 0o604 and out["owner"]["mode"] == "0o604"
    assert (got.st_uid, got.st_gid) == (st.st_uid, st.st_gid)
    if as_root:
        assert (got.st_uid, got.st_gid) == (12345, 23456)


def test_the_bundle_ships_real_modules_that_import_each_other(tmp_path):
    """monitor/bundle.py: modules of a package that does not exist where the script runs import each
    other by their ordinary absolute names (as snapshot.py imports probe.py in the container)."""
    from twilight_ops.monitor.bundle import bundle

    script = bundle([("nowhere_pkg.sub.a", "import dataclasses\n@dataclasses.dataclass\nclass P:\n    x: int = 1\n"),
                     ("nowhere_pkg.sub.b", "from nowhere_pkg.sub.a import P\ndef f():\n    return P().x + 41\n")],
                    "from nowhere_pkg.sub.b import f\nprint(f())\n")
    r = subprocess.run([sys.executable, "-I", "-"], input=script, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "42", r.stderr


"""The §3 probe on real DuckDB files: known answers, edge cases, a locked file.

Every probe run here is the real script (build_probe_script) in a real
subprocess, except the torn-copy tests, which call probe.main in-process with a
copy function that makes a real writer process checkpoint mid-copy.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from twilight_ops.errors import BadInput
from twilight_ops.monitor import probe
from twilight_ops.monitor.metrics import parse_probe_output
from twilight_ops.monitor.script import ProbeParams, build_probe_script, run_in_process, run_local
from twilight_ops.twin.seed import AuditRow, TableShape, seed_rows

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 5, 12, 3, 30, tzinfo=UTC)          # 11:30 in Shanghai
LIQUID = ("600519.SH",)
AK, TU = "akshare-spot", "tushare-daily"


def at(h: int, m: int, s: int = 0, us: int = 0, day: int = 12) -> dt.datetime:
    return dt.datetime(2026, 5, day, h, m, s, us, tzinfo=UTC)


# In the window (02:30, 03:30] UTC: 5 rows, 1 error.
IN_WINDOW = [
    AuditRow(at(3, 29), AK, 100.0, market_state="open", source_chain=(AK,)),
    AuditRow(at(3, 20), AK, 200.0, market_state="open", source_chain=(AK,)),
    AuditRow(at(3, 10), TU, 300.0, market_state="open", source_chain=(AK, TU)),
    AuditRow(at(2, 50), None, 900.0, error="ChainExhausted: akshare-spot, tushare-daily", status=502,
             ts_code="600519.SH", market_state="open", source_chain=(AK, TU)),
    AuditRow(at(2, 31), TU, 400.0, market_state="closing", source_chain=(TU,)),
]
# Outside it. The first two are the bounds; the others are where naive UTC read as
# Shanghai time (8 h ahead) or an aware/naive mix-up would land inside the window.
OUTSIDE = [
    AuditRow(at(2, 30), TU, 5000.0, error="edge", status=500, market_state="closing"),
    AuditRow(at(3, 30, 0, 1), TU, 5000.0, error="edge", status=500, market_state="closing"),
    AuditRow(at(10, 45), TU, 5000.0, error="decoy", status=500, market_state="closed"),
    AuditRow(at(11, 15), TU, 5000.0, error="decoy", status=500, market_state="closed"),
    AuditRow(at(19, 0, day=11), TU, 5000.0, error="decoy", status=500, market_state="closed"),
]
KNOWN = {
    "total": 5,
    "errors": 1,
    "err_pct": 20.0,
    "p95_ms": 800.0,  # quantile_cont over 100,200,300,400,900: 400 + 0.8 * 500
    "served_by": [
        {"served_by": AK, "n": 2, "share_pct": 40.0},
        {"served_by": TU, "n": 2, "share_pct": 40.0},
        {"served_by": None, "n": 1, "share_pct": 20.0},
    ],
    "open_total": 4,
    "akshare_spot_share_open_pct": 50.0,
    "market_state": [{"market_state": "open", "n": 4}, {"market_state": "closing", "n": 1}],
    "source_chain_len": [{"len": 1, "n": 3}, {"len": 2, "n": 2}],
    "source_chain_len_errors": [{"len": 2, "n": 1}],
    "status": [{"status": 200, "n": 4}, {"status": 502, "n": 1}],
    "status_open": [{"status": 200, "n": 3}, {"status": 502, "n": 1}],
    "liquid_502_open": 1,
    "unit_violation_errors": 0,
    "newest_utc": "2026-05-12T03:29:00.000000Z",
    "notes": [],
}


def make_db(path: Path, ts_type: str = "TIMESTAMP", rows=IN_WINDOW + OUTSIDE, **shape) -> Path:
    seed_rows(path, rows, shape=TableShape(ts_type, **shape))  # type: ignore[arg-type]
    return path


def run_script(params: ProbeParams, env: dict | None = None) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-"], input=build_probe_script(params), capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})
    return proc.returncode, proc.stdout, proc.stderr


def local(path: Path, hours: float = 1, now: dt.datetime = NOW, **kw) -> ProbeParams:
    return ProbeParams(str(path), hours, now, local=True, liquid_codes=LIQUID, **kw)


# ---------------------------------------------------------------- known answers

@pytest.mark.parametrize("tz", ["Asia/Shanghai", "UTC"])
@pytest.mark.parametrize("ts_type", ["TIMESTAMP", "TIMESTAMPTZ"])
def test_known_answer_whatever_the_timezone(tmp_path, monkeypatch, tz, ts_type):
    db = make_db(tmp_path / "w.duckdb", ts_type)
    monkeypatch.setenv("TZ", tz)
    out = run_local(db, 1, NOW, liquid_codes=LIQUID)
    assert {k: out[k] for k in KNOWN} == KNOWN
    assert out["read_via"] == "local-file" and out["copied_at"] is None
    assert out["ts_type"] == ts_type
    assert out["window"] == {"hours": 1.0, "start_utc": "2026-05-12T02:30:00.000000Z", "end_utc": "2026-05-12T03:30:00.000000Z"}


def test_the_timezone_trap_is_real_here(tmp_path):
    """Guards the test above: under TZ=Asia/Shanghai the runbook's own query is wrong."""
    db = make_db(tmp_path / "w.duckdb")
    code = (
        "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True);"
        "print(con.execute(\"SELECT current_setting('TimeZone'), count(*) FROM provider_audit_log"
        " WHERE ts > TIMESTAMPTZ '2026-05-12 03:30:00+00' - INTERVAL 1 HOUR\").fetchone())"
    )
    out = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True, check=True,
                         env={**os.environ, "TZ": "Asia/Shanghai"}).stdout
    assert "Asia/Shanghai" in out and "5)" not in out


def test_direct_read_reports_direct(tmp_path):
    db = make_db(tmp_path / "w.duckdb")
    code, out, err = run_script(ProbeParams(str(db), 1, NOW, liquid_codes=LIQUID))
    assert code == 0 and err == ""
    result = json.loads(out)
    assert result["read_via"] == "direct" and result["total"] == 5
    assert out.count("\n") == 1  # exactly one JSON object, one line


def test_probe_connections_never_print_a_progress_bar(tmp_path):
    """DuckDB prints a progress bar on stdout after 2 s: it would corrupt the JSON."""
    db = make_db(tmp_path / "w.duckdb")
    con = probe.connect(duckdb, str(db), read_only=True)
    try:
        assert con.execute("SELECT current_setting('enable_progress_bar')").fetchone()[0] is False
    finally:
        con.close()


def test_parse_real_probe_output(tmp_path):
    db = make_db(tmp_path / "w.duckdb")
    _, out, _ = run_script(local(db))
    m = parse_probe_output(out)
    assert (m.total, m.errors, m.p95_ms, m.akshare_spot_share_open_pct) == (5, 1, 800.0, 50.0)
    assert m.read_via == "local-file" and m.liquid_502_open == 1


# ---------------------------------------------------------------- ordinary cases, no traceback

def test_empty_window(tmp_path):
    db = make_db(tmp_path / "w.duckdb")
    out = run_local(db, 1, NOW + dt.timedelta(days=30))
    assert out["total"] == 0 and out["errors"] == 0
    assert out["err_pct"] is None and out["p95_ms"] is None and out["akshare_spot_share_open_pct"] is None
    assert out["served_by"] == [] and out["market_state"] == [] and out["source_chain_len"] == []
    assert out["notes"][0].startswith("no rows in the window")


def test_no_open_rows_skips_akshare_share(tmp_path):
    db = make_db(tmp_path / "w.duckdb", rows=[r for r in IN_WINDOW if r.market_state != "open"])
    out = run_local(db, 1, NOW)
    assert out["total"] == 1 and out["open_total"] == 0 and out["akshare_spot_share_open_pct"] is None
    assert any("no rows with market_state 'open'" in n for n in out["notes"])


def test_missing_optional_columns(tmp_path):
    db = make_db(tmp_path / "w.duckdb", market_state=False, source_chain=False)
    code, out, err = run_script(local(db))
    result = json.loads(out)
    assert code == 0 and err == ""
    assert result["total"] == 5 and result["p95_ms"] == 800.0
    assert result["market_state"] is None and result["akshare_spot_share_open_pct"] is None
    assert result["source_chain_len"] is None and result["status_open"] is None and result["liquid_502_open"] is None
    assert any(n.startswith("market_state column missing") for n in result["notes"])
    assert any(n.startswith("source_chain column missing") for n in result["notes"])


@pytest.mark.parametrize(
    "setup, kind, code",
    [
        ("missing_file", "missing_file", 2),
        ("missing_table", "missing_table", 2),
        ("missing_column", "schema", 2),
        ("ts_is_text", "schema", 2),
    ],
)
def test_errors_are_one_json_object(tmp_path, setup, kind, code):
    db = tmp_path / "w.duckdb"
    if setup != "missing_file":
        con = duckdb.connect(str(db))
        if setup == "missing_column":
            con.execute("CREATE TABLE provider_audit_log (ts TIMESTAMP, served_by VARCHAR, error VARCHAR)")
        elif setup == "ts_is_text":
            con.execute("CREATE TABLE provider_audit_log (ts VARCHAR, served_by VARCHAR, latency_ms DOUBLE, error VARCHAR)")
        con.close()
    exited, out, err = run_script(local(db))
    assert (exited, err) == (code, "")
    assert json.loads(out)["kind"] == kind and set(json.loads(out)) == {"error", "kind"}
    if kind != "schema":
        with pytest.raises(BadInput):
            run_local(db, 1, NOW)


def test_unbuilt_script_says_bad_params(tmp_path):
    proc = subprocess.run([sys.executable, str(Path(probe.__file__))], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr == ""
    assert json.loads(proc.stdout)["kind"] == "bad_params"


def test_params_travel_as_data_not_code(tmp_path):
    """A hostile path stays a value: no SQL or Python injection."""
    weird = tmp_path / "it's \"odd\"; DROP TABLE x; --.duckdb"
    make_db(weird)
    out = run_local(weird, 1, NOW, liquid_codes=LIQUID)
    assert out["total"] == 5
    script = build_probe_script(local(weird))
    assert script.count("PARAMS = json.loads(") == 1


# ---------------------------------------------------------------- a locked file

WRITER = r"""
import os, sys, time, duckdb
db, ts_type, mode = sys.argv[1], sys.argv[2], sys.argv[3]
con = duckdb.connect(db)
con.execute("SET checkpoint_threshold = '1GB'")   # checkpoint only when told
def insert(ts):
    con.execute("INSERT INTO provider_audit_log (ts, served_by, latency_ms, status, error) "
                f"VALUES (CAST(? AS {ts_type}), 'writer', 1, 200, NULL)", [ts])
OLD, NEW = "2001-01-01 00:00:00+00:00", "2026-05-12 03:00:00+00:00"   # outside / inside the window
if ts_type == "TIMESTAMP":
    OLD, NEW = OLD[:-6], NEW[:-6]
print("ready", flush=True)
if mode.startswith("busy"):        # insert + CHECKPOINT every 10, until killed
    count_file = db + ".committed"  # busy-new: rows committed so far, published after each commit
    i = 0
    while True:
        insert(NEW if mode == "busy-new" else OLD)
        i += 1
        with open(count_file + ".tmp", "w") as f:
            f.write(str(i))
        os.replace(count_file + ".tmp", count_file)
        if i % 10 == 0:
            con.execute("CHECKPOINT")
        time.sleep(0.001)
for line in sys.stdin:             # "old" | "new" | "checkpoint" (old + CHECKPOINT); one reply each
    cmd = line.strip()
    insert(NEW if cmd == "new" else OLD)
    if cmd == "checkpoint":
        con.execute("CHECKPOINT")
    print("ok", flush=True)
"""


class Writer:
    """A real process holding the database open read-write."""

    def __init__(self, db: Path, ts_type: str, mode: str):
        self.db = db
        self.proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), ts_type, mode], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def command(self, cmd: str) -> None:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"

    def committed(self) -> int:
        try:
            return int(Path(str(self.db) + ".committed").read_text())
        except FileNotFoundError:
            return 0

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture
def writer_factory():
    started: list[Writer] = []

    def start(db: Path, ts_type: str = "TIMESTAMP", mode: str = "busy-old") -> Writer:
        w = Writer(db, ts_type, mode)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


@pytest.mark.parametrize("ts_type", ["TIMESTAMP", "TIMESTAMPTZ"])
def test_locked_file_is_read_from_a_consistent_copy(tmp_path, writer_factory, ts_type):
    db = make_db(tmp_path / "w.duckdb", ts_type)
    copies = tmp_path / "copies"
    copies.mkdir()
    writer_factory(db, ts_type, "busy-old")
    for _ in range(2):
        out = run_local(db, 1, NOW, liquid_codes=LIQUID, copy_dir=str(copies))
        assert out["read_via"] == "copy"
        assert {k: out[k] for k in KNOWN} == KNOWN
        assert out["copied_at"].endswith("Z") and 1 <= out["copy_attempts"] <= 5
    assert list(copies.iterdir()) == []  # every temp copy removed


def test_copy_under_load_is_a_consistent_snapshot(tmp_path, writer_factory):
    """While a writer commits in-window rows and checkpoints every 10, every
    answer lies between the commits before and after the probe: never a copy
    that lost the WAL or mixed two checkpoints (a naive copy fails this ~2 %)."""
    db = make_db(tmp_path / "w.duckdb")
    w = writer_factory(db, "TIMESTAMP", "busy-new")
    params = local(db).to_wire()
    for _ in range(15):
        before = w.committed()
        buf = io.StringIO()
        assert probe.main(params, out=buf) == 0
        after = w.committed()
        result = json.loads(buf.getvalue())
        assert result["read_via"] == "copy"
        assert 5 + before <= result["total"] <= 5 + after


def test_wal_rows_are_in_the_copy(tmp_path, writer_factory):
    db = make_db(tmp_path / "w.duckdb")
    w = writer_factory(db, "TIMESTAMP", "commands")
    for _ in range(3):
        w.command("new")                          # committed, only in the WAL
    assert os.path.getsize(str(db) + ".wal") > 0
    out = run_local(db, 1, NOW)
    assert out["read_via"] == "copy" and out["total"] == 5 + 3


class CheckpointDuringCopy:
    """copy_file that lets the writer insert + CHECKPOINT right after copying the db file."""

    def __init__(self, writer: Writer, times: int):
        self.writer, self.left, self.calls = writer, times, 0

    def __call__(self, src: str, dest: str) -> None:
        import shutil

        shutil.copyfile(src, dest)
        self.calls += 1
        if not src.endswith(".wal") and self.left > 0:
            self.left -= 1
            self.writer.command("checkpoint")


def test_torn_copy_is_detected_and_retried(tmp_path, writer_factory):
    db = make_db(tmp_path / "w.duckdb")
    w = writer_factory(db, "TIMESTAMP", "commands")
    w.command("old")
    copier = CheckpointDuringCopy(w, times=1)
    buf = io.StringIO()
    code = probe.main(local(db).to_wire(), out=buf, sleep=lambda s: None, copy_file=copier)
    result = json.loads(buf.getvalue())
    assert code == 0 and result["read_via"] == "copy" and result["copy_attempts"] == 2
    assert {k: result[k] for k in KNOWN} == KNOWN


def test_copy_torn_every_time_is_never_reported_as_truth(tmp_path, writer_factory):
    db = make_db(tmp_path / "w.duckdb")
    copies = tmp_path / "copies"
    copies.mkdir()
    w = writer_factory(db, "TIMESTAMP", "commands")
    waits: list[float] = []
    buf = io.StringIO()
    code = probe.main(local(db, copy_dir=str(copies), copy_attempts=3).to_wire(), out=buf, sleep=waits.append,
                      copy_file=CheckpointDuringCopy(w, times=99))
    assert code == 3
    assert json.loads(buf.getvalue()) == {
        "error": f"no consistent copy of {db} after 3 attempts (last: the database file changed during the copy (a checkpoint ran))",
        "kind": "torn_copy",
    }
    assert waits == [0.05, 0.1]           # bounded, short exponential backoff
    assert list(copies.iterdir()) == []


def test_copy_once_accepts_wal_appends_but_not_a_checkpoint(tmp_path, writer_factory):
    db = make_db(tmp_path / "w.duckdb")
    w = writer_factory(db, "TIMESTAMP", "commands")
    w.command("old")
    dest = str(tmp_path / "copy.duckdb")

    def append_between(src: str, d: str) -> None:
        import shutil

        shutil.copyfile(src, d)
        if not src.endswith(".wal"):
            w.command("old")                        # WAL grows: still a consistent (earlier) state

    assert probe.copy_once(str(db), dest, append_between) is None
    assert probe.copy_once(str(db), dest, CheckpointDuringCopy(w, times=1)) is not None


def test_locked_file_with_a_missing_copy_dir(tmp_path, writer_factory):
    db = make_db(tmp_path / "w.duckdb")
    writer_factory(db, "TIMESTAMP", "commands")
    code, out, err = run_script(local(db, copy_dir=str(tmp_path / "no-such-dir")))
    assert (code, err) == (2, "") and json.loads(out)["kind"] == "copy_dir"


def test_locked_file_that_cannot_be_copied(tmp_path, writer_factory):
    db = make_db(tmp_path / "w.duckdb")
    writer_factory(db, "TIMESTAMP", "commands")

    def refuse(src: str, dest: str) -> None:
        raise PermissionError(13, "Permission denied", src)

    buf = io.StringIO()
    assert probe.main(local(db).to_wire(), out=buf, copy_file=refuse) == 3
    assert json.loads(buf.getvalue())["kind"] == "copy_failed"


# ---------------------------------------------------------------- the tool's own calls (issue 21 item 6)

def test_the_tools_own_calls_are_left_out_by_the_preflight_rule_and_counted(tmp_path):
    """Two own calls (the unknown-code probe answering 502, a live quote) and one client call of the same
    unknown code: the metrics are those of the five client rows; the probe says two were left out."""
    from twilight_ops import own_calls

    own_rows = [AuditRow(at(3, 25, 0, 300_000), None, 50.0, error="ChainExhausted", status=502, ts_code="999999.SH",
                         market_state="open", source_chain=(AK, TU)),
                AuditRow(at(3, 26, 0, 500_000), AK, 60.0, ts_code="600519.SH", market_state="open", source_chain=(AK,))]
    client = AuditRow(at(3, 0), None, 70.0, error="ChainExhausted", status=502, ts_code="999999.SH",
                      market_state="open", source_chain=(AK, TU))
    db = make_db(tmp_path / "w.duckdb", rows=IN_WINDOW + OUTSIDE + own_rows + [client])
    calls = [own_calls.OwnCall("api", at(3, 25), at(3, 25, 1), ("999999.SH",), 502),
             own_calls.OwnCall("api", at(3, 26), at(3, 26, 1), ("600519.SH",), 200),
             own_calls.OwnCall("api", at(3, 28), at(3, 28, 1), ("000001.SZ",), 200)]   # answered without a row
    params = local(db, own=tuple(own_calls.to_wire(calls)))
    script = build_probe_script(params)
    assert "_module('twilight_ops.own_calls'" in script          # the rule travels with the probe
    code, out, err = run_script(params)
    assert code == 0, err
    got = json.loads(out)
    assert got["own"] == {"left_out": 2, "by_kind": {"api": 2, "agent": 0}, "recorded": 3}
    assert got["total"] == 6 and got["errors"] == 2                 # the five + the client's 999999.SH
    m = parse_probe_output(out)
    assert m.own is not None and m.own.said() == "2 of twilight-ops's own calls left out"
    plain = json.loads(run_script(local(db))[1])
    assert plain["total"] == 8 and "own" not in plain               # nothing given, nothing left out


def test_own_calls_moved_onto_the_audit_clock_by_the_skew():
    from twilight_ops import own_calls

    call = own_calls.OwnCall("api", at(3, 25), at(3, 25, 1), ("999999.SH",), 502)
    (wire,) = own_calls.to_wire([call], shift_s=-600.0)             # tvps 10 min behind
    (back,) = own_calls.from_wire([wire])
    assert back.start == at(3, 15) and back.end == at(3, 15, 1) and back.codes == ("999999.SH",)


def test_a_probe_past_its_timeout_is_interrupted_and_said_once(tmp_path):
    """run_local runs the probe in this process (issue 22): past timeout_s the query is interrupted
    (DuckDB's interrupt()), CheckFailed names the timeout, and no probe thread is left running."""
    import threading

    from twilight_ops.errors import CheckFailed

    db = tmp_path / "big.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE provider_audit_log AS SELECT TIMESTAMP '2026-05-12 03:00:00' - INTERVAL (i % 86000) SECOND AS ts, "
                "CASE WHEN i % 3 = 0 THEN 'tushare' ELSE 'akshare-spot' END AS served_by, (i % 900)::DOUBLE AS latency_ms, "
                "CASE WHEN i % 97 = 0 THEN 'upstream 502' END AS error, printf('%06d.SH', i % 5000) AS ts_code "
                "FROM range(12000000) t(i)")
    con.close()
    with pytest.raises(CheckFailed) as err:
        run_local(db, 24, NOW, timeout_s=0.05)
    assert err.value.message == f"the monitor probe ran longer than 0.05 s on {db}"
    assert not any(t.name == "twilight-probe" for t in threading.enumerate())
    said = io.StringIO()
    with pytest.raises(CheckFailed):
        run_in_process(local(db, hours=24).to_wire(), 0.05, str(db), out=said)
    answer = json.loads(said.getvalue())                         # the query itself was stopped (or, on a slow
    assert (answer["kind"] == "duckdb" and "INTERRUPT" in answer["error"].upper()   # machine, never started)
            or answer == {"kind": "interrupted", "error": "stopped after 0.05 s"}), answer
    assert run_local(db, 1, NOW, timeout_s=120)["total"] > 0     # the same file, in time: an answer

"""The edges around the monitor core: probe results over SSH, diagnose output, the twin's
load generator and remote seeding script, and the `inv monitor --db` CLI — real DuckDB,
a real HTTP server, the real `inv`; no connection is mocked."""
from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from rich.console import Console

from monitor_samples import metrics
from twilight_ops import api
from twilight_ops.config import DEFAULTS, load_settings
from twilight_ops.diagnose import Observation, Evidence, diagnose
from twilight_ops.errors import BadInput, CheckFailed, Unreachable
from twilight_ops.render import diagnose as diagnose_render
from twilight_ops.monitor.metrics import StateCount
from twilight_ops.phases.diagnose import FRESHNESS_GAP_S, UNKNOWN_CODE, Call, Gathered, check, live_calls, to_diagnose_response
from twilight_ops.phases.monitor import interpret
from twilight_ops.results import exit_code
from twilight_ops.monitor.script import run_local
from twilight_ops.executor import Result
from twilight_ops.secret import Secret
from twilight_ops.twin import load as load_mod
from twilight_ops.twin import seed_remote
from twilight_ops.twin.seed import AuditSpec, seed_rows

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 6, 3, 2, 0, tzinfo=dt.timezone.utc)   # Wed 10:00 Asia/Shanghai
SETTINGS = load_settings(DEFAULTS)
EXEC = "docker compose -f /home/u/twilight/source/deploy/compose.yml exec -T backend python3 -"


@pytest.fixture(scope="module")
def probe_stdout(tmp_path_factory) -> str:
    """A real probe success object (the probe run on a seeded file)."""
    db = tmp_path_factory.mktemp("probe") / "wh.duckdb"
    seed_rows(db, AuditSpec(n=300, end_utc=NOW, span=dt.timedelta(minutes=30), error_rate=0.05))
    return json.dumps(run_local(db, 1, NOW))


# ---------------------------------------------------------------- interpret()

def test_interpret_a_probe_success(probe_stdout):
    m = interpret(Result(EXEC, 0, probe_stdout + "\n", ""))
    assert m.total == 300 and m.read_via == "local-file" and m.err_pct is not None


def test_interpret_a_probe_error_keeps_its_kind():
    out = '{"error":"/data/warehouse.duckdb has no table provider_audit_log","kind":"missing_table"}\n'
    with pytest.raises(BadInput) as e:
        interpret(Result(EXEC, 2, out, ""))
    assert "inv status" in e.value.line()
    with pytest.raises(Unreachable):
        interpret(Result(EXEC, 3, '{"error":"no consistent copy","kind":"torn_copy"}', ""))


def test_interpret_a_stopped_container():
    # `docker compose exec` against a stopped service, as captured from compose v2.40.3
    with pytest.raises(Unreachable) as e:
        interpret(Result(EXEC, 1, "", 'service "backend" is not running\n'))
    assert "not running" in e.value.line() and e.value.exit_code == 3


def test_interpret_a_session_that_died():
    with pytest.raises(Unreachable):
        interpret(Result(EXEC, -1, "", ""))


def test_interpret_no_python_in_the_image():
    err = ('OCI runtime exec failed: exec failed: unable to start container process: exec: "python3": '
           'executable file not found in $PATH: unknown\n')
    with pytest.raises(CheckFailed) as e:
        interpret(Result(EXEC, 126, "", err))
    assert "python3" in e.value.line()


def test_interpret_garbage_is_one_line():
    with pytest.raises(CheckFailed) as e:
        interpret(Result(EXEC, 1, "Traceback (most recent call last):\n  boom\n", "ValueError: x\n"))
    assert "\n" not in e.value.line()


# ---------------------------------------------------------------- live calls

def test_to_diagnose_response():
    ok = api.ApiResponse("u", 200, '{"close_raw": 1.0, "market_state": "open"}', 3.0)
    assert to_diagnose_response("600519.SH", ok) == Observation("600519.SH", 200, {"close_raw": 1.0, "market_state": "open"})
    text = api.ApiResponse("u", 500, "Internal Server Error", 3.0)
    assert to_diagnose_response("600519.SH", text) == Observation("600519.SH", 500, None)
    assert to_diagnose_response("600519.SH", api.ApiResponse("u", None, "", 3.0, "ConnectError: refused")) is None


def test_live_calls_liquid_twice_apart_then_unknown():
    seen, slept = [], []

    def get(settings, token, code, attempts=3):
        seen.append((code, token.reveal(), attempts))
        return api.ApiResponse(f"/price?code={code}", 200, json.dumps({"freshness_seconds": len(seen)}), 5.0)

    made = live_calls(SETTINGS, Secret("tok"), sleep=slept.append, get=get)
    assert [c for c, _, _ in seen] == [SETTINGS.liquid_codes[0], SETTINGS.liquid_codes[0], UNKNOWN_CODE]
    assert slept == [FRESHNESS_GAP_S] and FRESHNESS_GAP_S >= 1.0
    assert [call.purpose for call, _ in made] == ["liquid", "liquid, again for freshness", "unknown code"]
    assert "tok" not in repr([call.as_dict() for call, _ in made])


# ---------------------------------------------------------------- diagnose output

def gathered(evidence: Evidence, calls=(), notes=()) -> Gathered:
    calls = calls or (Call("600519.SH", "liquid", 200, 4.0), Call("600519.SH", "liquid", 200, 3.0),
                      Call(UNKNOWN_CODE, "unknown code", 502, 3.0))
    return Gathered(evidence, tuple(calls), 12, tuple(notes), 1.0)


def w4(**body):
    return Observation("600519.SH", 200, {"close_raw": 1.0, "close_qfq": 1.0, "freshness_seconds": 3, "market_state": "open", **body})


def test_diagnose_json_and_exit_for_a_symptom():
    ev = Evidence(metrics(), [w4(close_raw=None), w4(close_raw=None)], "", ("akshare-spot", "tushare-daily"))
    g = gathered(ev)
    found = diagnose(ev)
    out = diagnose_render.to_json(g, found)
    assert out["verdict"] == "symptoms" and [f["code"] for f in out["findings"]] == ["close_raw_null_qfq_set"]
    assert out["checks"]["close_raw_null_qfq_set"] == "found"
    assert out["checks"]["freshness_stuck_zero"] == "clear"
    assert out["checks"]["hermes_value_and_close_raw"].startswith("not evaluated")
    assert out["read_via"] == "direct" and out["backend_log_lines"] == 12
    assert exit_code([check(g, found)]) == 1
    json.dumps(out)


def test_diagnose_legacy_bodies_leave_w4_checks_not_evaluated():
    legacy = Observation("600519.SH", 200, {"code": "600519.SH", "metric": "close", "value": 1.0})
    ev = Evidence(metrics(), [legacy, legacy], "", ("akshare-spot", "tushare-daily"))
    checks = diagnose_render.outcomes(ev, diagnose(ev))
    assert checks["close_raw_null_qfq_set"].startswith("not evaluated")
    assert checks["freshness_stuck_zero"].startswith("not evaluated")
    assert checks["chain_exhausted_502"] == "clear"


def test_diagnose_without_audit_or_api():
    ev = Evidence(None, [], "", ("akshare-spot", "tushare-daily"))
    g = gathered(ev, calls=[Call("600519.SH", "liquid", None, 5000.0, "ConnectError: refused")])
    assert g.api_unreachable and exit_code([check(g, [])]) == 3
    checks = diagnose_render.outcomes(ev, [])
    assert all(v.startswith("not evaluated") for v in checks.values())


def test_diagnose_render_prints_cause_and_action():
    m = metrics(market_state=(StateCount("closing", 40),), open_total=0, akshare_spot_share_open_pct=None)
    ev = Evidence(m, [w4(freshness_seconds=0), w4(freshness_seconds=0)], "", ("akshare-spot", "tushare-daily"))
    console = Console(record=True, width=200)
    diagnose_render.render(console, gathered(ev), diagnose(ev))
    text = console.export_text()
    assert "SYMPTOM freshness_seconds always 0 across calls" in text
    assert "trade_cal seed is stale" in text and "likely cause:" in text and "action:" in text
    assert "verdict: 1 symptom found" in text and "agent-smoke phase" in text


# ---------------------------------------------------------------- load generator

def plan(**kw) -> load_mod.LoadPlan:
    return load_mod.LoadPlan(**{"seconds": 10, "rps": 20, "liquid_codes": ("600519.SH", "000001.SZ"), **kw})


def test_plan_is_bounded_deterministic_and_mixed():
    today = dt.date(2026, 6, 3)
    reqs = load_mod.plan_requests(plan(unknown_pct=10, history_pct=20), today)
    assert len(reqs) == 200 and reqs == load_mod.plan_requests(plan(unknown_pct=10, history_pct=20), today)
    kinds = {k: sum(r.kind == k for r in reqs) for k in ("liquid", "unknown", "history")}
    assert 5 <= kinds["unknown"] <= 40 and 20 <= kinds["history"] <= 60 and kinds["liquid"] > 100
    for r in reqs:
        if r.kind == "history":
            day = dt.date.fromisoformat(r.date)
            assert day.weekday() < 5 and 30 <= (today - day).days <= 404
        if r.kind == "unknown":
            assert r.code in load_mod.UNKNOWN_CODES
    assert load_mod.plan_requests(plan(seed=2), today) != load_mod.plan_requests(plan(seed=1), today)
    assert len(load_mod.plan_requests(plan(seconds=600, rps=200), today)) == load_mod.MAX_REQUESTS


@pytest.mark.parametrize("kw", [{"seconds": 0}, {"seconds": 601}, {"rps": 0}, {"rps": 1000},
                                {"unknown_pct": -1}, {"unknown_pct": 60, "history_pct": 50}, {"liquid_codes": ()}])
def test_plan_bounds_are_bad_input(kw):
    with pytest.raises(BadInput):
        plan(**kw).checked()


@pytest.mark.parametrize("base,ok", [("http://127.0.0.1:8000", True), ("http://localhost:1", True), ("http://[::1]:80", True),
                                     ("https://api.fsagent.cc", False), ("http://10.0.0.5:8000", False)])
def test_load_only_on_loopback(base, ok):
    if ok:
        assert load_mod.check_loopback(base) == base
    else:
        with pytest.raises(BadInput):
            load_mod.check_loopback(base)


def _backend_module():
    path = REPO / "twilight_ops" / "twin" / "backend" / "app.py"
    spec = importlib.util.spec_from_file_location("twin_backend_app_for_load", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_load_against_the_stand_in_backend(tmp_path):
    app = _backend_module()
    server = app.Server(("127.0.0.1", 0), app.Handler)
    server.app = app.App(app.Config("tok", "v0.3.0-w4-cutover", str(tmp_path / "x.duckdb"), 60.0, tmp_path), None)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        p = load_mod.LoadPlan(seconds=1, rps=40, liquid_codes=("600519.SH", "000001.SZ"), unknown_pct=20, history_pct=20)
        report = load_mod.run_load(base, Secret("tok"), p, dt.date.today())
    finally:
        server.shutdown()
        server.server_close()
    planned = load_mod.plan_requests(p, dt.date.today())
    assert report.planned == report.sent == 40 and report.stopped == "done" and report.transport_errors == 0
    assert report.by_kind["unknown"] == sum(r.kind == "unknown" for r in planned) == report.by_status.get("502", 0)
    assert report.by_status.get("200", 0) == 40 - report.by_kind["unknown"]
    assert 0.9 <= report.elapsed_s < 5
    assert "tok" not in report.line()


# ---------------------------------------------------------------- remote seeding script

def test_seed_script_runs_as_the_container_would(tmp_path):
    """The exact text sent to `compose run … python3 -`, run with this Python on a file."""
    db = tmp_path / "wh.duckdb"
    seed_rows(db, [])  # the backend's table exists before the seed (shape: TIMESTAMP, every column)
    spec = seed_remote.scenario_spec("errors", 1000, 30, NOW, ("600519.SH",))
    proc = subprocess.run([sys.executable, "-"], input=seed_remote.seed_script(spec, str(db)),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"inserted": 1000, "total": 1000}
    got = run_local(db, 1, NOW + dt.timedelta(seconds=5))
    assert got["total"] == 1000 and got["err_pct"] > 3


@pytest.mark.parametrize("args", [("nope", 10, 30), ("errors", 0, 30), ("errors", 10, 0), ("errors", 10**9, 30)])
def test_scenario_bounds(args):
    name, rows, minutes = args
    with pytest.raises(BadInput):
        seed_remote.scenario_spec(name, rows, minutes, NOW, ("600519.SH",))


# ---------------------------------------------------------------- `inv monitor --db` (no connection)

def inv(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    exe = str(Path(sys.executable).with_name("inv"))
    return subprocess.run([exe, *args], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def local_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("cli") / "audit.duckdb"
    end = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)
    seed_rows(db, AuditSpec(n=500, end_utc=end, span=dt.timedelta(minutes=20), error_rate=0.0, latency_ms=(650, 900)))
    return db


@pytest.mark.parametrize("tz", ["Asia/Shanghai", "UTC"])
def test_cli_db_json_is_the_issue_object(local_db, tz):
    r = inv("monitor", "--db", str(local_db), "--json", env={"TZ": tz})
    assert r.returncode == 1, r.stderr          # p95 ~890 ms: investigate
    out = json.loads(r.stdout)
    assert list(out)[:13] == ["window_hours", "read_via", "total", "errors", "err_pct", "p95_ms", "served_by",
                              "akshare_spot_share_open_pct", "market_state", "source_chain_len", "bands", "verdict",
                              "copied_at"]
    assert out["read_via"] == "local-file" and out["total"] == 500 and out["errors"] == 0
    assert out["bands"] == {"err_pct": "healthy", "p95_ms": "investigate", "akshare_share": "healthy"}
    assert out["verdict"] == "investigate"


def test_cli_db_table(local_db):
    r = inv("monitor", "--db", str(local_db))
    assert r.returncode == 1
    for word in ("metric", "value", "band", "meaning", "p95 latency", "investigate", "read from a local file"):
        assert word in r.stdout, word


def test_cli_db_watch_prints_one_line_per_round(local_db):
    r = inv("monitor", "--db", str(local_db), "--watch", "0.01", "--until", "0.0004")  # 0.6 s rounds for 1.44 s
    lines = [line for line in r.stdout.splitlines() if line.startswith("#")]
    rounds = int(re.search(r"after (\d+) rounds", r.stderr).group(1))   # how many a loaded machine managed
    assert r.returncode == 1 and len(lines) == rounds >= 1                # one line per round, whatever the speed
    assert "crossed into INVESTIGATE" in lines[0] and "crossed" not in "".join(lines[1:])
    assert "watch stopped (deadline)" in r.stderr and "first investigate: round 1" in r.stderr


def test_cli_db_bad_window_is_exit_2(local_db):
    r = inv("monitor", "--db", str(local_db), "--hours", "-3")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--hours" in r.stderr


def test_diagnose_is_not_clear_when_the_audit_or_the_logs_were_not_read():
    healthy = Evidence(metrics(), [w4(), w4()], "", ("akshare-spot", "tushare-daily"))
    assert exit_code([check(gathered(healthy), [])]) == 0
    no_audit = Evidence(None, [w4(), w4()], "", ("akshare-spot", "tushare-daily"))
    g = gathered(no_audit, notes=("audit log not read: no table",))
    assert g.incomplete and exit_code([check(g, [])]) == 1
    assert diagnose_render.to_json(g, [])["verdict"] == "incomplete"
    g = Gathered(healthy, gathered(healthy).calls, 0, ("backend logs not read: denied",), 1.0, logs_read=False)
    assert g.incomplete and exit_code([check(g, [])]) == 1



@pytest.fixture(scope="module")
def stale_db(tmp_path_factory) -> Path:
    """An AuditLog that stopped writing: 200 rows, the newest three hours old."""
    db = tmp_path_factory.mktemp("stale") / "audit.duckdb"
    end = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=3)
    seed_rows(db, AuditSpec(n=200, end_utc=end, span=dt.timedelta(minutes=20), error_rate=0.0, latency_ms=(50, 90)))
    return db


def test_cli_empty_window_is_no_data_exit_1_with_the_hint(stale_db):
    r = inv("monitor", "--db", str(stale_db), "--hours", "1")
    assert r.returncode == 1, r.stderr
    assert "NO DATA" in r.stdout and "HEALTHY" not in r.stdout
    assert "AuditLog is not writing" in r.stdout and "inv smoke" in r.stdout
    r = inv("monitor", "--db", str(stale_db), "--hours", "1", "--json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["total"] == 0 and out["verdict"] == "no_data"
    assert "inv smoke" in r.stderr

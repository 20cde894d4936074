"""Monitor benchmark: what `inv monitor` costs on a 10-million-row audit table.

    .venv/bin/python bench/monitor_bench.py [--rows N] [--reps R]

Builds (once; cached under bench/out/) a provider_audit_log of N rows spread
over 24 h, then in one run measures, median of R runs after one warm-up:
  * monitor end to end: run_local() — the probe in this process (a thread),
    DuckDB open, the one-pass query, JSON out, parse — for a 24 h window (every
    row) and a 1 h window;
  * the same aggregates as ONE bare DuckDB query in this process (open
    read-only, the probe's own SQL, fetch, close) on the same file;
  * the locked path: a process holds the file read-write, so the probe copies it;
  * bytes per round over SSH: the script sent on stdin + the JSON printed; and with the probe
    kept on tvps (issue 22): the command line + one stdin line + the JSON (the body once).
Prints a table and writes bench/out/monitor.json.
"""
from __future__ import annotations

import argparse
import copy
import datetime as dt
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from twilight_ops.monitor import probe  # noqa: E402
from twilight_ops.builders.compose import compose_exec_cached_python  # noqa: E402
from twilight_ops.builders.layout import layout  # noqa: E402
from twilight_ops.config import DEFAULTS, load_settings  # noqa: E402
from twilight_ops.executor import render  # noqa: E402
from twilight_ops.monitor.script import (ProbeParams, body_sha256, build_probe_script, cached_body, run_local,  # noqa: E402
                                         tail_line)
from twilight_ops.twin.seed import AuditSpec, seed_rows  # noqa: E402

OUT = ROOT / "bench" / "out"
NOW = dt.datetime(2026, 5, 12, 7, 0, tzinfo=dt.timezone.utc)
STATES = {"pre_open": 0.04, "open": 0.45, "lunch_break": 0.08, "closing": 0.03, "closed": 0.35, "closed_final": 0.05}


def spec(rows: int) -> AuditSpec:
    return AuditSpec(n=rows, end_utc=NOW, span=dt.timedelta(hours=24), error_rate=0.008, latency_ms=(40.0, 420.0),
                     market_states=STATES, akshare_share_open=0.75, seed=7)


def build(rows: int) -> tuple[Path, float | None]:
    s = spec(rows)
    key = hashlib.sha256(repr(s).encode()).hexdigest()[:10]
    path = OUT / f"audit-{rows}-{key}.duckdb"
    if path.exists():
        return path, None
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    started = time.perf_counter()
    seed_rows(tmp, s)
    took = time.perf_counter() - started
    os.replace(tmp, path)
    return path, took


def interleaved(cases: dict[str, Callable[[], Any]], reps: int) -> dict[str, tuple[float, float, Any]]:
    """Median and min seconds per case; one warm-up each, then the cases take
    turns within every repetition so background load hits them alike."""
    results = {name: fn() for name, fn in cases.items()}  # warm-up: page cache, imports
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(reps):
        for name, fn in cases.items():
            started = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - started)
    return {name: (statistics.median(t), min(t), results[name]) for name, t in times.items()}


def bare_query(path: Path, hours: float) -> dict[str, Any]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        start, end = probe.window(NOW, hours)
        sql, params, _, _ = probe.plan_query(probe.table_columns(con), ["600519.SH"], start, end)
        cur = con.execute(sql, params)
        return dict(zip([d[0] for d in cur.description], cur.fetchone()))
    finally:
        con.close()


class Holder:
    """A process holding the file read-write, as the backend does."""

    def __init__(self, path: Path):
        code = "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('ready', flush=True); sys.stdin.read()"
        self.proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the lock holder did not start")

    def __enter__(self) -> "Holder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=120)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()

    path, built_s = build(args.rows)
    size = path.stat().st_size
    rows: list[dict[str, Any]] = []

    def record(cases: dict[str, Callable[[], Any]]) -> dict[str, Any]:
        out = {}
        for case, (med, best, result) in interleaved(cases, args.reps).items():
            total = int(result["total"])
            rows.append({"case": case, "median_s": round(med, 4), "min_s": round(best, 4), "rows_in_window": total})
            out[case] = result
        return out

    def monitor(hours: float) -> Callable[[], dict[str, Any]]:
        return lambda: run_local(path, hours, NOW, liquid_codes=["600519.SH"])

    for hours in (24.0, 1.0):
        out = record({f"monitor run_local, {hours:g} h": monitor(hours),
                      f"bare DuckDB query, {hours:g} h": lambda: bare_query(path, hours)})
        assert out[f"monitor run_local, {hours:g} h"]["read_via"] == "local-file"
    with Holder(path):
        out = record({"monitor run_local, 24 h, file locked (copy)": monitor(24.0)})
        assert out["monitor run_local, 24 h, file locked (copy)"]["read_via"] == "copy"

    script = build_probe_script(ProbeParams("/data/warehouse.duckdb", 1.0, NOW, liquid_codes=("600519.SH",))).encode()
    full = build_probe_script(ProbeParams("/data/warehouse.duckdb", 1.0, NOW, liquid_codes=("600519.SH",)), compact=False).encode()
    answer = json.dumps(run_local(path, 24, NOW, liquid_codes=["600519.SH"]), separators=(",", ":")).encode()
    # the probe kept on tvps (phases/monitor.run_probe): a round sends its command line and one stdin line
    lay = layout(load_settings(copy.deepcopy(DEFAULTS)), "/home/deploy")
    kept_cmd = render(compose_exec_cached_python(lay, lay.probe_path(body_sha256()), body_sha256())).encode()
    kept_tail = tail_line(ProbeParams("/data/warehouse.duckdb", 1.0, NOW, liquid_codes=("600519.SH",))).encode()
    body = cached_body().encode()
    by_case = {r["case"]: r for r in rows}
    report = {
        "rows": args.rows,
        "file_bytes": size,
        "build_s": None if built_s is None else round(built_s, 2),
        "machine": {"python": platform.python_version(), "duckdb": duckdb.__version__, "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "cases": rows,
        "overhead_s_24h": round(by_case["monitor run_local, 24 h"]["median_s"] - by_case["bare DuckDB query, 24 h"]["median_s"], 4),
        "bytes_per_round": {"script_in": len(script), "script_in_uncompacted": len(full), "json_out": len(answer),
                            "total": len(script) + len(answer)},
        "bytes_per_round_kept": {"command": len(kept_cmd), "stdin": len(kept_tail), "json_out": len(answer),
                                 "total": len(kept_cmd) + len(kept_tail) + len(answer), "first_round_upload": len(body)},
    }
    (OUT / "monitor.json").write_text(json.dumps(report, indent=2) + "\n")

    print(f"provider_audit_log: {args.rows:,} rows over 24 h, {size / 2**20:.0f} MiB"
          + ("" if built_s is None else f" (built in {built_s:.1f} s)"))
    print(f"{'case':<46} {'median s':>9} {'min s':>8} {'rows in window':>15}")
    for r in rows:
        print(f"{r['case']:<46} {r['median_s']:>9.3f} {r['min_s']:>8.3f} {r['rows_in_window']:>15,}")
    b = report["bytes_per_round"]
    print(f"per round over SSH: script {b['script_in']:,} B in (uncompacted {b['script_in_uncompacted']:,}) "
          f"+ JSON {b['json_out']:,} B out = {b['total']:,} B")
    k = report["bytes_per_round_kept"]
    print(f"per round with the probe kept on tvps: command {k['command']:,} B + stdin {k['stdin']:,} B in + JSON "
          f"{k['json_out']:,} B out = {k['total']:,} B (the first round on a tvps without it uploads "
          f"{k['first_round_upload']:,} B once)")
    print(f"wrote {OUT / 'monitor.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

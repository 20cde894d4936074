"""Issue 15 §1: the tool's own /price calls — the record, the probe's bounded (ts, ts_code)
rows on real DuckDB files, and the pure matching preflight's no_traffic uses."""
from __future__ import annotations

import datetime as dt
import json
import os

import pytest

from twilight_ops import own_calls
from twilight_ops.config import DEFAULTS, load_settings
from twilight_ops.monitor.metrics import Metrics
from twilight_ops.monitor.script import run_local
from twilight_ops.own_calls import OwnCall, leave_out, parse_instant
from twilight_ops.phases.preflight import log_calls
from twilight_ops.twin.seed import AuditRow, TableShape, seed_rows

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 5, 12, 3, 30, tzinfo=UTC)


def at(m: int, s: float = 0) -> dt.datetime:
    return dt.datetime(2026, 5, 12, 3, m, tzinfo=UTC) + dt.timedelta(seconds=s)


def api(start: dt.datetime, code: str = "600519.SH", seconds: float = 0.2, attempts: int = 1) -> OwnCall:
    return OwnCall("api", start, start + dt.timedelta(seconds=seconds), (code,), 200, attempts)


# ---------------------------------------------------------------- the probe's rows, real DuckDB files

@pytest.mark.parametrize("ts_type", ["TIMESTAMP", "TIMESTAMPTZ"])
def test_the_probe_returns_the_windows_ts_and_code_newest_first(tmp_path, monkeypatch, ts_type):
    monkeypatch.setenv("TZ", "Asia/Shanghai")      # the window must not move with the process's zone
    rows = [AuditRow(at(29, 10.25), ts_code="600519.SH"), AuditRow(at(25), ts_code="000001.SZ"),
            AuditRow(at(21), ts_code="999999.SH", status=502, error="unknown", served_by=None),
            AuditRow(at(19, 59.9), ts_code="600519.SH"),                              # just before the window
            AuditRow(at(30, 0.5), ts_code="600519.SH")]                               # after now
    db = tmp_path / "w.duckdb"
    seed_rows(db, rows, shape=TableShape(ts_type))  # type: ignore[arg-type]
    out = run_local(db, 10 / 60, NOW, rows_limit=100)
    assert out["total"] == 3
    assert out["rows"] == [["2026-05-12T03:29:10.250000Z", "600519.SH"], ["2026-05-12T03:25:00.000000Z", "000001.SZ"],
                           ["2026-05-12T03:21:00.000000Z", "999999.SH"]]
    m = Metrics.from_probe(out)
    assert m.rows is not None and m.rows[0] == ("2026-05-12T03:29:10.250000Z", "600519.SH")
    assert parse_instant(m.rows[0][0]) == at(29, 10.25)


def test_the_rows_are_bounded_and_absent_unless_asked(tmp_path):
    db = tmp_path / "w.duckdb"
    seed_rows(db, [AuditRow(at(29) - dt.timedelta(seconds=i)) for i in range(50)])
    bounded = run_local(db, 1, NOW, rows_limit=7)
    assert bounded["total"] == 50 and len(bounded["rows"]) == 7 and bounded["rows"][0][0] == "2026-05-12T03:29:00.000000Z"
    plain = run_local(db, 1, NOW)
    assert "rows" not in plain and Metrics.from_probe(plain).rows is None


def test_without_a_ts_code_column_rows_is_none_with_a_note(tmp_path):
    import duckdb

    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE provider_audit_log (ts TIMESTAMP, served_by VARCHAR, latency_ms DOUBLE, error VARCHAR)")
    con.execute("INSERT INTO provider_audit_log VALUES ('2026-05-12 03:29:00', 'tushare-daily', 10, NULL)")
    con.close()
    out = run_local(db, 1, NOW, rows_limit=10)
    assert out["total"] == 1 and out["rows"] is None and any("ts_code column missing" in n for n in out["notes"])


# ---------------------------------------------------------------- the record

def test_the_record_appends_one_line_per_call_and_reads_the_window(tmp_path):
    s = load_settings(dict(DEFAULTS, state_dir=str(tmp_path)))
    own_calls.record_call(s, at(1), at(1, 0.3), "600519.SH", 200)
    own_calls.record_call(s, at(20), at(20, 0.3), "600519.SH", None, attempts=2)
    own_calls.record_prompt(s, at(22), at(23), ["999999.SH"], "unknown_code")
    path = own_calls.record_path(s)
    assert path == tmp_path / "own-calls" / "tvps.jsonl" and oct(path.stat().st_mode & 0o777) == "0o600"
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[1])["attempts"] == 2 and json.loads(lines[2])["kind"] == "agent"
    with path.open("a") as fh:
        fh.write('{"kind": "api", "start": "torn\n')    # a torn line is skipped, not fatal
    got = own_calls.read(s, at(19))
    assert [(c.kind, c.codes, c.attempts) for c in got] == [("api", ("600519.SH",), 2), ("agent", ("999999.SH",), 1)]
    assert got[0].start == at(20)


def test_an_unwritable_record_does_not_fail_the_call(tmp_path):
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state dir should be")
    s = load_settings(dict(DEFAULTS, state_dir=str(blocker)))
    own_calls.record_call(s, at(1), at(1, 0.3), "600519.SH", 200)      # nothing raised
    assert own_calls.read(s, at(0)) == []


def test_read_takes_only_the_tail_of_a_long_record(tmp_path):
    s = load_settings(dict(DEFAULTS, state_dir=str(tmp_path)))
    path = own_calls.record_path(s)
    path.parent.mkdir(parents=True)
    old = json.dumps(api(at(0)).to_json()) + "\n"
    path.write_text(old * (own_calls.TAIL_BYTES // len(old) + 10))
    own_calls.record_call(s, at(29), at(29, 0.1), "000001.SZ", 200)
    got = own_calls.read(s, at(28))
    assert [c.codes for c in got] == [("000001.SZ",)]
    assert os.path.getsize(path) > own_calls.TAIL_BYTES


# ---------------------------------------------------------------- matching (pure)

def test_one_row_per_attempt_within_the_call_window_and_slack():
    calls = [api(at(10)), api(at(20), attempts=2)]
    rows = [(at(10, 0.1), "600519.SH"),             # call 1
            (at(10, 0.15), "600519.SH"),            # a second row for a one-attempt call: traffic
            (at(20, 0.1), "600519.sh"),             # call 2, case does not matter
            (at(20, 2.1), "600519.SH"),             # call 2's second attempt: end 20.2 + 2 s slack
            (at(20, 2.3), "600519.SH"),             # past the slack: traffic
            (at(10, 0.1), "000001.SZ")]             # another code: traffic
    split = leave_out(rows, calls)
    assert split.left_out == 3 and split.by_kind == {"api": 3, "agent": 0}
    assert sorted(split.kept) == sorted([(at(10, 0.15), "600519.SH"), (at(20, 2.3), "600519.SH"), (at(10, 0.1), "000001.SZ")])


def test_the_slack_is_two_seconds_either_side():
    call = api(at(10), seconds=1.0)
    assert leave_out([(at(10, -2.0), "600519.SH")], [call]).left_out == 1
    assert leave_out([(at(10, -2.01), "600519.SH")], [call]).left_out == 0
    assert leave_out([(at(10, 3.0), "600519.SH")], [call]).left_out == 1
    assert leave_out([(at(10, 3.01), "600519.SH")], [call]).left_out == 0


def test_greedy_matching_gives_each_row_the_call_that_ends_first():
    """Two overlapping calls, two rows: both left out whatever order the calls were recorded in."""
    a, b = api(at(10), seconds=0.5), api(at(10, 1.0), seconds=0.5)
    rows = [(at(10, 1.2), "600519.SH"), (at(10, 2.4), "600519.SH")]
    assert leave_out(rows, [a, b]).left_out == 2 and leave_out(rows, [b, a]).left_out == 2


def test_an_agent_prompt_absorbs_every_row_for_its_codes_in_its_window():
    prompt = OwnCall("agent", at(5), at(6), ("600519.SH",), check="latest_quote")
    rows = [(at(5, 10), "600519.SH"), (at(5, 20), "600519"), (at(5, 30), "600519.SH"),
            (at(5, 40), "000001.SZ"), (at(7), "600519.SH")]
    split = leave_out(rows, [prompt])
    assert split.left_out == 3 and split.by_kind == {"api": 0, "agent": 3}
    assert split.kept == ((at(5, 40), "000001.SZ"), (at(7), "600519.SH"))


def test_rows_without_a_time_or_a_code_are_traffic():
    split = leave_out([(None, "600519.SH"), (at(10, 0.1), None)], [api(at(10))])
    assert split.left_out == 0 and len(split.kept) == 2


def test_docker_log_timestamps_and_codes():
    text = ("backend-1  | 2026-05-12T03:29:10.123456789Z 2026-05-12T03:29:10.120+00:00 HTTP 200 GET /price "
            "code=600519.SH state=open served_by=akshare-spot latency_ms=3.1\n"
            "backend-1  | 2026-05-12T03:29:11.000000000Z INFO something else\n"
            "backend-1  | HTTP 200 GET /price?code=000001.SZ\n")
    got = log_calls(text, offset_s=60)
    assert got == [(at(30, 10.123456), "600519.SH"), (None, "000001.SZ")]


@pytest.mark.parametrize("text,want", [
    ("2026-05-12T03:29:10.250000Z", at(29, 10.25)),
    ("2026-05-12T03:29:10.123456789Z", at(29, 10.123456)),
    ("2026-05-12T11:29:10+08:00", at(29, 10)),
    ("2026-05-12 03:29:10", at(29, 10)),
    ("yesterday", None), ("", None), (None, None),
])
def test_parse_instant(text, want):
    assert parse_instant(text) == want


def _match_by_scanning(rows, calls, slack_s=own_calls.SLACK_S):
    """The rule as first written (every api call tried for every row): match() must give the same."""
    api = sorted((c for c in calls if c.kind == "api"), key=lambda c: c.end)
    agent = [c for c in calls if c.kind == "agent"]
    room = [c.attempts for c in api]
    own, by_kind = [], {"api": 0, "agent": 0}
    far = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
    for k in sorted(range(len(rows)), key=lambda k: rows[k][0] or far):
        ts, code = rows[k]
        if ts is None:
            continue
        i = next((i for i, c in enumerate(api) if room[i] and c.matches_code(code) and c.covers(ts, slack_s)), None)
        if i is not None:
            room[i] -= 1
            by_kind["api"] += 1
            own.append(k)
        elif any(c.matches_code(code) and c.covers(ts, slack_s) for c in agent):
            by_kind["agent"] += 1
            own.append(k)
    return own, by_kind


@pytest.mark.parametrize("seed", range(40))
def test_match_gives_what_scanning_every_call_gives(seed):
    """match() skips calls that ended (+ slack) before a row and stops at calls that start after it
    (issue 22: 349 calls × 2,000 rows took ≈ 0.15 s of a monitor round); the answer is the same."""
    import random

    rnd = random.Random(seed)
    codes = ["600519.SH", "000001.SZ", "300750.SZ", " 600519.sh ", "999999.SH"]
    t0 = NOW - dt.timedelta(minutes=30)

    def at(s: float) -> dt.datetime:
        return t0 + dt.timedelta(seconds=s)

    calls = []
    for _ in range(rnd.randint(0, 60)):
        start = rnd.uniform(0, 600)
        kind = rnd.choice(["api", "api", "api", "agent"])
        calls.append(OwnCall(kind, at(start), at(start + rnd.choice([0.01, 0.3, 2.0, 40.0])),
                             tuple(rnd.sample(codes, rnd.randint(1, 2))), attempts=rnd.randint(1, 3)))
    rows = [(None if rnd.random() < 0.03 else at(rnd.uniform(-5, 610)), rnd.choice([*codes, None]))
            for _ in range(rnd.randint(0, 400))]
    assert own_calls.match(rows, calls) == _match_by_scanning(rows, calls)

"""Issue 3 offline: each red flag again through the real CLI, from saved /price bodies.

`inv smoke --from-file BODY --status N [--expect w4|legacy] [--json]` opens no
connection and writes no journal: the tests point the state dir at a temp dir and
check that nothing appears there.  `transport_error` has no file form (a saved
response always has a status); it is shown live in test_smoke_twin.py.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import inv

DATA = Path(__file__).resolve().parents[1] / "data" / "envelopes"
VERDICT_KEYS = {"verdict", "envelope", "status", "red_flags", "warnings"}


@pytest.fixture
def run(tmp_path):
    state = tmp_path / "state"

    def run(*args: str) -> subprocess.CompletedProcess:
        r = inv("smoke", *args, env={"INVOKE_TWILIGHT_STATE_DIR": str(state), "INVOKE_TWILIGHT_HOST": "no-such-host.invalid"})
        assert "Traceback" not in r.stderr, r.stderr
        assert not state.exists(), "--from-file wrote local state"
        return r

    return run


def verdict_of(r: subprocess.CompletedProcess) -> dict:
    obj, end = json.JSONDecoder().raw_decode(r.stdout.lstrip())
    assert r.stdout.lstrip()[end:].strip() == "", f"more than one JSON value on stdout: {r.stdout!r}"
    assert isinstance(obj, dict) and set(obj) == VERDICT_KEYS, obj
    assert r.stderr == ""
    return obj


# (file, status, expect) -> (envelope, red flag codes, pointer of the first flag, text in its message)
RED = [
    ("close_raw_null.json", 200, "w4", "w4", ["close_raw_missing"], "/close_raw", "Composer didn't return a Quote"),
    ("close_raw_absent.json", 200, "w4", "w4", ["close_raw_missing"], "/close_raw", "(runbook §4 row 1)"),
    ("qfq_without_raw.json", 200, "w4", "w4", ["close_raw_missing"], "/close_raw", "(runbook §4 row 1)"),
    ("legacy_ok.json", 200, "w4", "legacy", ["legacy_envelope"], "/value", "the pull didn't take"),
    ("mixed.json", 200, "w4", "mixed", ["mixed_envelope"], "/value", "neither contract"),
    ("internal_error_500.txt", 500, "w4", "unknown", ["http_5xx"], None, "Composer or AuditLog is failing"),
    ("canonical_unit_violation_500.json", 500, "w4", "unknown", ["http_5xx"], None, "fix forward"),
    ("canonical_unit_violation_500_error_field.json", 500, "w4", "unknown", ["http_5xx"], None, "fix forward"),
    ("chain_exhausted_502.json", 502, "w4", "unknown", ["http_5xx"], None, "rollback won't help"),
    ("unauthorized_401.json", 401, "w4", "unknown", ["unauthorized"], None, "not a rollback trigger"),
    ("unauthorized_401.json", 403, "w4", "unknown", ["unauthorized"], None, "HTTP 403"),
    ("bad_date.json", 200, "w4", "w4", ["schema_violation"], "/trade_date", "is not a 'date'"),
    ("bad_datetime.json", 200, "w4", "w4", ["schema_violation"], "/as_of", "is not a 'date-time'"),
    ("market_state_upper.json", 200, "w4", "w4", ["schema_violation"], "/market_state", "'CLOSED_FINAL' is not one of"),
    ("wrong_units.json", 200, "w4", "w4", ["schema_violation", "schema_violation"], "/units/amount", "'kyuan' was expected"),
    ("nan.json", 200, "w4", "unknown", ["schema_violation"], None, "NaN is not JSON"),
    ("not_json.txt", 200, "w4", "unknown", ["schema_violation"], None, "body is not JSON"),
    ("empty.txt", 200, "w4", "unknown", ["schema_violation"], None, "body is empty"),
    # after a rollback (runbook §2.4)
    ("w4_ok.json", 200, "legacy", "w4", ["w4_envelope"], "", "the server revert didn't take"),
    ("mixed.json", 200, "legacy", "mixed", ["mixed_envelope"], "/value", "neither v0.2.0 nor v0.3.0"),
    ("internal_error_500.txt", 503, "legacy", "unknown", ["http_5xx"], None, "rolling back further won't help"),
]


@pytest.mark.parametrize("name, status, expect, envelope, codes, pointer, says", RED,
                         ids=[f"{r[0]}-{r[1]}-{r[2]}" for r in RED])
def test_red_flag_from_file(run, name, status, expect, envelope, codes, pointer, says):
    r = run("--from-file", str(DATA / name), "--status", str(status), "--expect", expect, "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    v = verdict_of(r)
    assert (v["verdict"], v["envelope"], v["status"]) == ("red", envelope, status)
    assert [f["code"] for f in v["red_flags"]] == codes
    assert v["red_flags"][0]["pointer"] == pointer
    assert says in v["red_flags"][0]["message"]


GREEN = [
    ("w4_ok.json", "w4", "w4"),
    ("w4_runbook_sample.json", "w4", "w4"),
    ("w4_open_akshare.json", "w4", "w4"),
    ("w4_no_factor.json", "w4", "w4"),
    ("legacy_ok.json", "legacy", "legacy"),
]


@pytest.mark.parametrize("name, expect, envelope", GREEN)
def test_green_from_file(run, name, expect, envelope):
    r = run("--from-file", str(DATA / name), "--expect", expect, "--json")   # --status defaults to 200
    assert r.returncode == 0, r.stdout + r.stderr
    v = verdict_of(r)
    assert (v["verdict"], v["envelope"], v["status"], v["red_flags"]) == ("green", envelope, 200, [])


@pytest.mark.parametrize("name, status, expect, step", [
    ("w4_ok.json", 200, "w4", "CONTINUE — continue to T+00:25"),
    ("close_raw_null.json", 200, "w4", "ROLLBACK — execute the rollback now"),
    ("qfq_without_raw.json", 200, "w4", "INVESTIGATE — pull `docker compose logs backend --tail=200`"),
    ("canonical_unit_violation_500.json", 500, "w4", "FIX-FORWARD — do NOT roll back"),
    ("chain_exhausted_502.json", 502, "w4", "INVESTIGATE — check `docker compose logs backend --tail=200`"),
    ("unauthorized_401.json", 401, "w4", "INVESTIGATE — check ~/twilight/.tokens/operator-test"),
    ("legacy_ok.json", 200, "legacy", "CONTINUE — rollback verified"),
    ("w4_ok.json", 200, "legacy", "ROLLBACK — re-run the server revert"),
])
def test_human_output_names_the_next_step(run, name, status, expect, step):
    r = run("--from-file", str(DATA / name), "--status", str(status), "--expect", expect)
    assert r.returncode == (0 if step.startswith("CONTINUE") else 1), r.stdout + r.stderr
    assert f"NEXT STEP: {step}" in r.stdout
    assert r.stderr == ""


@pytest.mark.parametrize("args, says", [
    (["--from-file", str(DATA / "no-such-body.json")], "is not a readable file"),
    (["--from-file", str(DATA)], "is not a readable file"),
    (["--from-file", str(DATA / "w4_ok.json"), "--status", "99"], "--status 99 is not an HTTP status"),
    (["--from-file", str(DATA / "w4_ok.json"), "--status", "600"], "--status 600 is not an HTTP status"),
    (["--from-file", str(DATA / "w4_ok.json"), "--status", "abc"], "--status 'abc' is not a number"),
    (["--from-file", str(DATA / "w4_ok.json"), "--expect", "foo"], "--expect 'foo' is not w4 or legacy"),
])
def test_bad_input_is_exit_2_one_line(run, args, says):
    r = run(*args, "--json")
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and says in r.stderr, r.stderr

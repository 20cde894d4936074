"""The §2 guard through the twin (`inv monitor --guard`): W4 deployed as the rollback module
deploys it (published through the twin's CI, preflight, deploy), each test on a weekday no
audit row belongs to (the twin's clock, backend and tool together), so its window holds only
its own traffic: green rounds, 5xx above 5 %, close_raw null for N rounds, --auto-rollback
exactly once, and the bad-input forms."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, error_lines, inv
from tests.integration.test_monitor_twin import clear_faults_and_clock, clock_at, days, load, twin_task  # noqa: F401
from tests.integration.test_rollback_twin import W4, base, cutover, journal, svc  # noqa: F401
from tests import journals

pytestmark = pytest.mark.twin


@pytest.fixture(scope="module")
def deployed(base, twin_settings):
    """v0.3.0-w4-cutover running after preflight + deploy (base puts v0.2.0 back afterwards)."""
    cutover(base, twin_settings)
    return base


def guard(twin, *args: str, env: dict | None = None):
    r = inv("monitor", "--guard", *args, cfg=twin.invoke_yaml, env=env)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def rounds(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("guard #")]


def rollbacks(settings) -> list[str]:
    return [s["name"] for s in journal(settings)["steps"] if s["name"].startswith("rollback#") and ":" not in s["name"]
            and s["outcome"] == "ok"]


def test_auto_rollback_without_guard_is_bad_input(twin):
    for argv in (["monitor", "--auto-rollback"], ["monitor", "--watch", "1", "--auto-rollback"],
                 ["monitor", "--guard", "--db", "/nowhere.duckdb"], ["monitor", "--version", W4]):
        r = inv(*argv, cfg=twin.invoke_yaml)
        lines = error_lines(r.stderr)
        assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, (argv, r.stderr)
        assert "target:" not in r.stderr                 # nothing connected
    assert "--guard" in inv("monitor", "--auto-rollback", cfg=twin.invoke_yaml).stderr


def test_green_rounds_trip_nothing(deployed, ex, twin_settings, days):
    clock_at(next(days), 10)
    load("--seconds", "2", "--rps", "15", "--unknown-pct", "10")       # 502s for unknown codes: not counted
    # 3 s rounds for 10.8 s: several rounds even when a round is slow on a loaded machine (a round that
    # overruns its 3 s slot skips it, so a 3.6 s deadline gave 1 round under load, not the 2 asked for)
    r = guard(deployed, "--watch", "0.05", "--until", "0.003")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = rounds(r.stdout)
    assert len(lines) >= 2 and all(line.endswith("→ no trigger") for line in lines), r.stdout
    assert "5xx ok" in lines[0] and "close_raw ok: close_raw present (3 codes)" in lines[0]
    assert "W7 n/a: W7 diffs: n/a in v0.3.0" in lines[0]
    assert f"guard stopped (deadline) after {len(lines)} rounds" in r.stderr and "no trigger" in r.stderr
    assert svc(ex, twin_settings).version == W4


def test_the_guards_own_probes_are_left_out_each_round_and_ctrl_c_ends_it_with_130(deployed, days):
    """issue 21 item 6: the guard's call count grew with its own GET /price probes; Ctrl-C ended it with 0."""
    from tests.integration.test_monitor_twin import popen_watch

    clock_at(next(days), 10)
    sent = load("--seconds", "2", "--rps", "15", "--unknown-pct", "0")["sent"]
    proc = popen_watch(deployed, "--guard", "--watch", "0.05")
    try:
        lines = []
        while len(lines) < 3:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            if line.startswith("guard #"):
                lines.append(line.rstrip("\n"))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert f"5xx ok: 5xx 0.0% (0 of {sent} calls in 1 h)" in lines[0], lines[0]      # nothing of its own yet
    for n, line in enumerate(lines[1:], start=2):      # each round's 3 probes: left out, the count stays the load's
        assert f"(0 of {sent} calls in 1 h, {3 * (n - 1)} own left out)" in line, line
    assert proc.returncode == 130, err
    assert "guard stopped (interrupted)" in err and "Traceback" not in err


def test_5xx_above_5_percent_trips_with_the_rollback_line_and_rolls_nothing_back(deployed, ex, twin_settings, days):
    clock_at(next(days), 10)
    before = svc(ex, twin_settings).repo_digest
    twin_task("twin.fault", "--name", "http_500", "--rate", "0.2")
    report = load("--seconds", "3", "--rps", "20", "--unknown-pct", "0", "--history-pct", "0")
    assert report["sent"] == 60
    r = guard(deployed)                                               # no --watch: one round
    assert r.returncode == 1, r.stdout + r.stderr
    (line,) = rounds(r.stdout)
    assert "5xx TRIPPED" in line and line.endswith("→ TRIGGER: 5xx")
    assert "TRIGGER (runbook §2): /price returns 5xx on >5% of traffic" in r.stdout
    assert "evidence: status 200 ×48, 500 ×12 in 1 h" in r.stdout
    assert (f"rollback (runbook §2, budget 30 min): inv -f {deployed.invoke_yaml} rollback --version {W4} "
            f"--reason 'guard round 1: /price 5xx 20.0% > 5% (12 of 60 calls in 1 h)'") in r.stdout
    assert svc(ex, twin_settings).repo_digest == before
    assert "rolled_back" not in journal(twin_settings)["facts"]


def test_a_tvps_10_min_behind_shows_the_same_5xx_share_in_a_short_window(deployed, days):
    """Issue 23 §3: the guard's 6-minute window ends at tvps's now, so with tvps's clock 10 minutes
    behind it reads the same 5xx share as without the skew (it read 0 rows: "no audited calls")."""
    def round_line() -> str:
        twin_task("twin.fault", "--name", "http_500", "--rate", "0.2")
        report = load("--seconds", "3", "--rps", "20", "--unknown-pct", "0", "--history-pct", "0")
        assert report["sent"] == 60
        r = guard(deployed, "--hours", "0.1")
        assert r.returncode == 1, r.stdout + r.stderr
        (line,) = rounds(r.stdout)
        return line

    clock_at(next(days), 10)
    plain = round_line()
    clock_at(next(days), 10)
    twin_task("twin.clock", "--skew", "-600")
    skewed = round_line()
    assert "5xx TRIPPED" in plain and "(12 of 60 calls in 0.1 h)" in plain, plain
    assert "5xx TRIPPED" in skewed and "(12 of 60 calls in 0.1 h)" in skewed, skewed


def test_close_raw_null_trips_after_n_rounds_not_on_the_first(deployed, days):
    clock_at(next(days), 10)
    twin_task("twin.fault", "--name", "close_raw_null")
    r = guard(deployed, "--watch", "0.01", "--until", "0.01")          # 0.6 s rounds; stops at the trigger
    assert r.returncode == 1, r.stdout + r.stderr
    lines = rounds(r.stdout)
    assert len(lines) == 3, r.stdout                                   # guard_null_rounds 3
    assert "close_raw ok: close_raw null 1/3 rounds" in lines[0] and lines[0].endswith("→ no trigger")
    assert "close_raw null 2/3 rounds" in lines[1] and lines[1].endswith("→ no trigger")
    assert "close_raw TRIPPED" in lines[2] and lines[2].endswith("→ TRIGGER: close_raw")
    assert "close_raw null for 000001.SZ, 300750.SZ, 600519.SH in 3 consecutive rounds" in r.stdout
    assert "evidence: 600519.SH: HTTP 200 w4: close_raw is null" in r.stdout
    assert f"rollback --version {W4} --reason 'guard round 3: close_raw null" in r.stdout


@pytest.fixture
def journal_kept(twin_settings, ex):
    """The W4 journal (local copy and tvps mirror) put back as it was after the test."""
    from twilight_ops.builders.layout import layout

    local = journals.local_path(twin_settings, W4)
    mirror = layout(twin_settings, ex.home).journal_path(W4)
    saved = (local.read_bytes(), ex.read_file(mirror))
    yield
    local.write_bytes(saved[0])
    ex.write_file(mirror, saved[1], mode=0o600)


def test_a_hermes_value_parse_error_in_the_agent_smoke_answers_trips(deployed, journal_kept, days):
    from twilight_ops.twin.operator_side import set_hermes_fault

    clock_at(next(days), 16)                                           # after the close: agent-smoke skips its cache wait
    assert inv("hermes-reinstall", "--force", cfg=deployed.invoke_yaml).returncode == 0
    set_hermes_fault(deployed.hermes_home, "legacy_prompt")            # the old prompt template on a W4 body
    try:
        smoke = inv("agent-smoke", cfg=deployed.invoke_yaml)
        assert smoke.returncode == 1, smoke.stdout + smoke.stderr
    finally:
        set_hermes_fault(deployed.hermes_home, None)
    r = guard(deployed)
    assert r.returncode == 1, r.stdout + r.stderr
    (line,) = rounds(r.stdout)
    assert "hermes TRIPPED" in line and line.endswith("→ TRIGGER: hermes") and "close_raw ok" in line
    assert "TRIGGER (runbook §2): Hermes profile reports `value` parse error from any prompt" in r.stdout
    assert "evidence: agent-smoke at " in r.stdout and "reports a value parse error" in r.stdout


def test_auto_rollback_rolls_back_exactly_once_then_legacy_is_served(deployed, ex, twin_settings, days):
    # The twin's faults are not per version, so the trigger here is the 5xx share: http_500 on
    # every 5th reply of a container, and the rollback's verify call is the first /price call the
    # v0.2.0 container answers (close_raw_null would null v0.2.0's value too, unlike production).
    clock_at(next(days), 10)
    pre = journal(twin_settings)["facts"]["pre_digest"]
    done_before = rollbacks(twin_settings)
    twin_task("twin.fault", "--name", "http_500", "--rate", "0.2")
    load("--seconds", "2", "--rps", "15", "--unknown-pct", "0", "--history-pct", "0")
    r = guard(deployed, "--watch", "0.01", "--until", "0.01", "--auto-rollback")
    assert r.returncode == 1, r.stdout + r.stderr
    assert len(rounds(r.stdout)) == 1                                  # the guard stopped watching at the trigger
    assert "auto-rollback: guard round 1: /price 5xx 20.0% > 5% (6 of 30 calls in 1 h)" in r.stderr
    assert "auto-rollback done: rolled back to" in r.stderr
    assert svc(ex, twin_settings).repo_digest == pre
    j = journal(twin_settings)
    assert j["facts"]["rolled_back"]["trigger"] == "guard round 1: /price 5xx 20.0% > 5% (6 of 30 calls in 1 h)"
    guard_steps = [s for s in j["steps"] if s["name"].startswith("guard-rollback#")]
    assert [s["outcome"] for s in guard_steps] == ["ok"] and guard_steps[0]["evidence"]["to"].endswith(pre.split("@")[1])
    assert len(rollbacks(twin_settings)) == len(done_before) + 1
    assert any(s["name"].endswith(":health") and s["outcome"] == "ok" for s in j["steps"])   # rollback's own steps kept

    twin_task("twin.fault", "--clear")
    smoke = inv("smoke", "--expect", "legacy", "--json", cfg=deployed.invoke_yaml)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert json.loads(smoke.stdout)["envelope"] == "legacy"

    twin_task("twin.fault", "--name", "http_500")
    again = guard(deployed, "--auto-rollback", "--version", W4)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "the guard does not roll back again" in again.stderr and "trigger: guard round 1" in again.stderr
    assert rounds(again.stdout) == []
    assert len(rollbacks(twin_settings)) == len(done_before) + 1
    assert svc(ex, twin_settings).repo_digest == pre


def test_a_guard_killed_mid_rollback_is_finished_by_the_next_one_not_repeated(deployed, ex, twin_settings, days):
    cutover(deployed, twin_settings)                                   # W4 again: a new deploy attempt
    clock_at(next(days), 10)
    pre = journal(twin_settings)["facts"]["pre_digest"]
    done_before = rollbacks(twin_settings)
    twin_task("twin.fault", "--name", "http_500", "--rate", "0.2")
    load("--seconds", "2", "--rps", "15", "--unknown-pct", "0", "--history-pct", "0")
    argv = [os.path.join(os.path.dirname(sys.executable), "inv"), "-f", str(deployed.invoke_yaml), "monitor",
            "--guard", "--auto-rollback", "--version", W4]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    local = journals.local_path(twin_settings, W4)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:                # until the revert is under way (a condition, not a sleep)
        steps = [s["name"] for s in journals.read(local)["steps"]] if local.exists() else []
        if any(n.startswith("rollback#") and n.endswith((":pull", ":up")) for n in steps[-3:]):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    attempt = journal(twin_settings)["facts"]["deploy_attempt"]
    cut = [s for s in journal(twin_settings)["steps"] if s["name"] == f"guard-rollback#{attempt}"]
    assert [s["outcome"] for s in cut] == ["running"]

    r = guard(deployed, "--auto-rollback", "--version", W4)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "auto-rollback done" in r.stderr
    steps = [s for s in journal(twin_settings)["steps"] if s["name"] == f"guard-rollback#{attempt}"]
    assert [s["outcome"] for s in steps] == ["running", "ok"] and steps[1]["evidence"]["resumed_from"] == cut[0]["started_at"]
    assert len(rollbacks(twin_settings)) == len(done_before) + 1      # one rollback, finished, not two
    assert svc(ex, twin_settings).repo_digest == pre
